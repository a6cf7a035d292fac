"""The same weights and views give the same step on JAX and on TensorFlow.

Each recipe (SlimCLR with each base, past its slow start and with one update
per width; US3L with a drawn width and one update per width, and with
BYOL; DSPNet) takes one step on each backend from the same
initial weights (`tests/methods/_cross_backend.py`: TensorFlow in this
process, JAX in a child; on TensorFlow the scenarios about the compiled
step itself trace it, the others take it eagerly).
The per-width losses agree to 1e-5 (relative) and every weight after the
step (online, EMA encoders, BatchNorm statistics, MoCo's queue) to 1e-4.

A `.keras` file saved on one backend loads on the other with the same
outputs at every width (a recipe with a width list, a backbone with a range).
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import keras

from tests.methods._cross_backend import SAVED
from tests.methods._cross_backend import SCENARIOS
from tests.methods._cross_backend import run
from tests.methods._cross_backend import save_files
from tests.methods._cross_backend import saved_outputs

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

pytest.importorskip("jax")


def _run(backend, out_dir):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run(
        [sys.executable, "-m", "tests.methods._cross_backend", str(out_dir)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]


@pytest.fixture(scope="module")
def steps(tmp_path_factory):
    out_dir = tmp_path_factory.mktemp("cross_backend")
    # TensorFlow, the suite's backend, in this process (a child would be a
    # TensorFlow start more); it writes the initial weights first.
    assert keras.backend.backend() == "tensorflow"
    for name in SCENARIOS:
        run(name, str(out_dir))
    save_files(str(out_dir))
    _run("jax", out_dir)
    return out_dir


def _load(out_dir, name, backend):
    with np.load(os.path.join(out_dir, f"{name}_{backend}.npz")) as saved:
        return {key: saved[key] for key in saved.files}


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_one_step_is_the_same_on_both_backends(steps, name):
    tf_step = _load(steps, name, "tensorflow")
    jax_step = _load(steps, name, "jax")
    assert sorted(tf_step) == sorted(jax_step)
    logs = [k for k in tf_step if k.startswith("log:")]
    assert {"log:loss"} < set(logs)
    for key in logs:
        np.testing.assert_allclose(jax_step[key], tf_step[key], rtol=1e-5,
                                   atol=1e-7, err_msg=key)
    changed = 0
    with np.load(os.path.join(steps, f"{name}_init.npz")) as init:
        for key in (k for k in tf_step if k.startswith("weight:")):
            np.testing.assert_allclose(jax_step[key], tf_step[key],
                                       atol=1e-4, err_msg=key)
            index = int(key.split(":")[1])
            changed += not np.array_equal(tf_step[key], init[f"arr_{index}"])
    # The step trained: most weights moved.
    assert changed > len(logs)


@pytest.mark.parametrize("name", sorted(SAVED))
def test_keras_files_load_across_backends_with_equal_outputs(steps, name):
    widths = SAVED[name][1]
    saved_on_tf = _load(steps, name, "saved_on_tensorflow")
    loaded_on_jax = _load(steps, name, "loaded_on_jax")
    saved_on_jax = _load(steps, name, "saved_on_jax")
    loaded_on_tf = saved_outputs(keras.saving.load_model(
        os.path.join(steps, f"{name}_jax.keras")), widths)
    for width in widths:
        key = str(width)
        scale = np.abs(saved_on_tf[key]).max()
        assert scale > 1e-2  # real features, not BatchNorm-crushed zeros
        np.testing.assert_allclose(loaded_on_jax[key], saved_on_tf[key],
                                   rtol=1e-5, atol=1e-6 * scale, err_msg=key)
        np.testing.assert_allclose(loaded_on_tf[width], saved_on_jax[key],
                                   rtol=1e-5, atol=1e-6 * scale, err_msg=key)
    # Each width is its own network, not one output sliced.
    assert not np.allclose(saved_on_tf[str(widths[0])][:, :2],
                           saved_on_tf[str(widths[-1])][:, :2])
