"""`keras-slim pretrain` on JAX, run from the TensorFlow suite.

The JAX main job reads its data through `tf.data` and exports through a
TensorFlow worker, so its tests (`tests/jax/test_pretrain_run.py`) need
TensorFlow beside JAX: the JAX suite's environment has no TensorFlow and
skips them. This environment has both, so it runs that file on the JAX
backend in a child pytest and requires every test of it to pass.
"""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(
    __file__))))

pytest.importorskip("jax")


def test_the_jax_main_job_runs_resumes_and_exports(tmp_path):
    # One compilation cache for the child pytest and its own children: the
    # reference run compiles (initializers included), the killed run and its
    # resumption read the same programs instead of compiling them again.
    env = dict(os.environ, KERAS_BACKEND="jax",
               JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"),
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
         "-o", "addopts=", "tests/jax/test_pretrain_run.py"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout else ""
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert re.match(r"6 passed in ", summary), summary
