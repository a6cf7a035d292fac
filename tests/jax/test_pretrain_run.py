"""`keras-slim pretrain` on JAX: its run directory, a resume after SIGKILL,
`train.strategy`, and `keras-slim export` of the run.

The tiny run of the TensorFlow tests (`tests/runs/test_resume.py`):
SlimCLR-MoCo v2 on digits 8x8, ResNet-10 of base width 4, widths [1.0, 0.5],
batch 64, 256 images: 4 steps per epoch, 2 epochs, a checkpoint every step.

* The reference: one uninterrupted `pretrain` in this process; it also keeps
  every variable after its first step.
* `keras-slim pretrain` in a child process that SIGKILLs itself while it
  writes the checkpoint of step 3 (half the file written), then the same
  command again: it resumes at step 2, mid-epoch, and must end with the
  reference's checkpoint of step 8 (weights, EMA encoder, queue, step
  counters, optimizer slots, history).
* `train.strategy=mirrored` is `keras.distribution.DataParallel` over the 2
  host devices `tests/conftest.py` makes: its first step equals the
  reference's.
* `keras-slim export` of the reference run, from a JAX process: a
  TensorFlow worker writes and verifies the per-width `.tflite` files, whose
  outputs also match the JAX backbone's.

The input pipeline is `tf.data` and the export TFLite: both need TensorFlow.
The children share a JAX compilation cache (the killed run compiles the
step, its resumption reads it); under `tests/runs/test_jax_pretrain.py`
this process shares it too, initializers included.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

pytest.importorskip("tensorflow")

from keras_slim.config import dump_config  # noqa: E402
from keras_slim.config import load_config  # noqa: E402
from keras_slim.runs import RunDirectory  # noqa: E402
from keras_slim.runs import NonFiniteGuard  # noqa: E402
from keras_slim.runs import prepare  # noqa: E402
from keras_slim.runs import pretrain  # noqa: E402
from keras_slim.runs import train  # noqa: E402
from keras_slim.runs.run_checkpoint import read_checkpoint_state  # noqa: E402
from tests.runs._tiny_run import STEPS  # noqa: E402
from tests.runs._tiny_run import TINY  # noqa: E402
from tests.runs._tiny_run import checkpoint_arrays  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir,
                                    os.pardir))
TIMEOUT = 300

# `keras-slim pretrain` in a child; `kill_in_save` makes it SIGKILL itself
# half-way through writing the checkpoint of that step.
CHILD = textwrap.dedent(
    """
    import json, os, signal, sys
    spec = json.loads(sys.argv[1])
    import keras
    from keras_slim import cli
    from tests._gc import relax_gc
    relax_gc()

    if spec.get("kill_in_save"):
        save_weights = keras.Model.save_weights
        def killed_mid_write(self, path, *args, **kwargs):
            save_weights(self, path, *args, **kwargs)
            step = int(keras.ops.convert_to_numpy(self.ssl_step))
            if step == spec["kill_in_save"]:
                with open(path, "r+b") as f:
                    f.truncate(os.path.getsize(path) // 2)
                os.kill(os.getpid(), signal.SIGKILL)
        keras.Model.save_weights = killed_mid_write

    sys.exit(cli.main(["pretrain", "--config", spec["config"], "--no-eval",
                       f"output_dir={spec['run']}"]))
    """
)


class _FirstStep(keras.callbacks.Callback):
    """Keeps every variable after the first step; optionally stops there."""

    def __init__(self, stop=False):
        super().__init__()
        self.stop = stop
        self.variables = None

    def on_train_batch_end(self, batch, logs=None):
        if self.variables is None:
            self.variables = [(v.path, keras.ops.convert_to_numpy(v))
                              for v in self.model.variables]
        if self.stop:
            self.model.stop_training = True


def _child(tmp, run, **spec):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3",
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    # The TensorFlow suite's parent gives this process a cache too, so the
    # children also read what the reference compiled.
    env.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(tmp, "jax_cache"))
    spec.update(config=os.path.join(tmp, "tiny.yaml"), run=run)
    return subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(spec)], cwd=tmp, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        timeout=TIMEOUT)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jax_pretrain")
    with open(tmp / "tiny.yaml", "w") as f:  # the children's config
        f.write(dump_config(load_config(None, TINY)))
    config = load_config(None, TINY + [f"output_dir={tmp / 'reference'}"])
    first = _FirstStep()
    lines = []
    pretrain(config, evaluate=False, callbacks=[first], log=lines.append)
    return {"tmp": tmp, "config": config, "lines": lines,
            "run": RunDirectory(config.output_dir),
            "first_step": first.variables}


def test_pretrain_writes_its_run_directory(reference):
    tf = pytest.importorskip("tensorflow")
    run = reference["run"]
    for name in ("config.yaml", "backbone.keras", "history.json"):
        assert os.path.isfile(run.file(name)), name
    assert run.read_config() == reference["config"]
    assert f"saved {run.backbone_path}" in reference["lines"]
    state = read_checkpoint_state(run.checkpoint_dir)
    assert state["step"] == STEPS
    assert sorted(os.listdir(run.checkpoint_dir)) == [
        "state.json", f"step-{STEPS}.weights.h5"]
    history = run.read_json("history.json")
    assert [h["epoch"] for h in history] == [1, 2]
    assert all(np.isfinite(h["w0.5/loss"]) for h in history)
    # TensorBoard (Keras's callback writes with tf.summary on JAX too).
    events = [tf.compat.v1.Event.FromString(record.numpy())
              for name in os.listdir(os.path.join(run.logs_dir, "train"))
              for record in tf.data.TFRecordDataset(
                  os.path.join(run.logs_dir, "train", name))]
    logged = {(value.tag, event.step) for event in events
              for value in event.summary.value}
    assert {("epoch_loss", 0), ("epoch_loss", 1)} <= logged
    backbone = keras.saving.load_model(run.backbone_path, compile=False)
    assert list(backbone.widths.values) == [1.0, 0.5]


def test_killed_run_resumes_to_the_uninterrupted_weights(reference):
    tmp = str(reference["tmp"])
    run = os.path.join(tmp, "killed")
    killed = _child(tmp, run, kill_in_save=3)
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-3000:]
    files = os.listdir(os.path.join(run, "checkpoint"))
    # The kill hit step 3's save: state.json still names step 2, and the
    # half-written file is a hidden temporary beside it.
    assert read_checkpoint_state(os.path.join(run, "checkpoint"))[
        "step"] == 2
    assert "step-3.weights.h5" not in files
    assert any(name.startswith(".step-3.weights.h5.") for name in files)

    resumed = _child(tmp, run)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"resuming {run} at step 2" in resumed.stdout
    want = read_checkpoint_state(reference["run"].checkpoint_dir)
    got = read_checkpoint_state(os.path.join(run, "checkpoint"))
    assert got["step"] == want["step"] == STEPS
    a = checkpoint_arrays(want["weights"])
    b = checkpoint_arrays(got["weights"])
    assert sorted(a) == sorted(b)
    assert {name.split("/")[0] for name in a} >= {
        "backbone", "key_backbone", "key_projector", "optimizer", "vars"}
    for name in a:
        np.testing.assert_allclose(b[name], a[name], rtol=1e-6, atol=1e-6,
                                   err_msg=name)
    assert a["vars/0"] == STEPS  # the recipe's ssl_step
    assert a["optimizer/vars/0"] == STEPS  # iterations: the schedule's place
    # The cut epoch's running means were restored: the same epoch means.
    for w, g in zip(want["history"], got["history"]):
        assert g == pytest.approx(w, rel=1e-5)
    assert not any(".partial" in name
                   for name in os.listdir(os.path.join(run, "checkpoint")))


def test_mirrored_is_data_parallel_over_the_local_devices(reference):
    tmp = reference["tmp"]
    mirrored = reference["config"].with_overrides([
        "train.strategy=mirrored", f"output_dir={tmp / 'mirrored'}"])
    run = prepare(mirrored, log=lambda *_: None)
    assert run.strategy.num_replicas_in_sync == 2
    kernel = run.backbone.trainable_variables[0]
    assert len(kernel.value.sharding.device_set) == 2  # replicated
    first = _FirstStep(stop=True)
    train(run, callbacks=[first])
    assert int(run.model.ssl_step) == 1
    # One program over the global batch: the single device's first step,
    # but for the order of the sums.
    assert len(first.variables) == len(reference["first_step"])
    for (_, got), (name, want) in zip(first.variables,
                                      reference["first_step"]):
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5,
                                   err_msg=name)
    # Its checkpoint (step 1) resumes under the distribution, every
    # variable laid out over both devices again.
    resumed = prepare(mirrored, log=lambda *_: None)
    assert resumed.start_step == 1
    for variable, (name, value) in zip(resumed.model.variables,
                                       first.variables):
        assert len(variable.value.sharding.device_set) == 2, name
        np.testing.assert_array_equal(
            keras.ops.convert_to_numpy(variable), value, err_msg=name)


def test_strategies_jax_cannot_run_are_refused_up_front(reference):
    tmp = reference["tmp"]
    odd = reference["config"].with_overrides([
        "train.strategy=mirrored", "train.batch_size=63",
        f"output_dir={tmp / 'odd'}"])
    with pytest.raises(ValueError, match="batch_size=63 is not divisible "
                       "by the 2 replicas"):
        prepare(odd, log=lambda *_: None)
    assert not os.path.exists(tmp / "odd")
    workers = reference["config"].with_overrides([
        "train.strategy=multi_worker", f"output_dir={tmp / 'workers'}"])
    with pytest.raises(ValueError, match="KERAS_BACKEND=tensorflow"):
        prepare(workers, log=lambda *_: None)
    assert not os.path.exists(tmp / "workers")


def test_the_guard_names_the_step_a_jax_step_did_not_apply():
    class Stub:  # what the guard reads of the model
        ssl_step = keras.Variable(5, dtype="int32")

    guard = NonFiniteGuard([1.0, 0.5])
    guard.set_model(Stub())
    nan = float("nan")
    # A non-finite loss: the JAX step kept the state, `ssl_step` did not
    # count it.
    with pytest.raises(FloatingPointError) as info:
        guard.on_train_batch_end(0, {"loss": nan, "w0.5/loss": nan,
                                     "w0.5/grad_norm": nan})
    assert "Non-finite loss at width 0.5" in str(info.value)
    assert "at training step 5 (counted from 0; the step was not applied" \
        in str(info.value)
    # A finite loss with a NaN gradient: applied, and counted.
    with pytest.raises(FloatingPointError) as info:
        guard.on_train_batch_end(0, {"loss": 3.0, "w1/grad_norm": nan})
    assert "Non-finite gradient at width 1 " in str(info.value)
    assert "at training step 4 (counted from 0; the weights in memory are " \
        "spoiled" in str(info.value)


def test_export_of_the_jax_run_in_a_tensorflow_worker(reference, capsys,
                                                      monkeypatch):
    from keras_slim import cli
    from keras_slim.export import read_manifest
    from keras_slim.export import run_litert

    run = reference["run"]
    options = ["--precisions", "float32", "--images", "64",
               "--latency-runs", "2", "--no-saved-model", "--no-bundle"]
    code = cli.main(["export", run.path, *options])
    printed = capsys.readouterr()
    assert code == 0, printed.err
    manifest = read_manifest(run.file("export"))
    assert manifest["verified"]
    files = {m["file"]: m for m in manifest["models"]}
    assert sorted(files) == ["w0.5_float32.tflite", "w1_float32.tflite"]
    for name, model in files.items():
        assert name in printed.out  # the worker's table, printed here
        assert model["verification"]["images"] == 64
    # The files compute what the JAX backbone computes.
    backbone = keras.saving.load_model(run.backbone_path, compile=False)
    images = np.random.default_rng(0).random((16, 8, 8, 1), "float32")
    for width in (1.0, 0.5):
        want = keras.ops.convert_to_numpy(
            backbone(images, width=width, training=False))
        got = run_litert(run.file("export", f"w{width:g}_float32.tflite"),
                         images)["features"]
        scale = max(1.0, float(np.abs(want).max()))
        assert np.abs(got - want).max() <= 1e-4 * scale, width
    # A second export into the same folder, or a width the run does not
    # have, is refused here, before a worker starts (the worker's own
    # errors come back as the command's: tests/runs/test_pretrain.py).
    from keras_slim.runs import _tensorflow_export

    def no_worker(*_):
        raise AssertionError("started a worker for a request it refuses")

    monkeypatch.setattr(_tensorflow_export, "_run", no_worker)
    assert cli.main(["export", run.path, "--precisions", "float32"]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(["export", run.path, "--widths", "0.3",
                     "--overwrite"]) == 2
    assert "cannot export width 0.3" in capsys.readouterr().err
