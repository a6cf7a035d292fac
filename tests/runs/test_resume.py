"""A killed `keras-slim pretrain` resumes to exactly the uninterrupted run.

Every run is a real `keras-slim pretrain` process (one TF thread, the CLI's
own entry point) on a tiny SlimCLR-MoCo v2 (digits 8x8, ResNet-10 of base width 4,
widths [1.0, 0.5], batch 64, 256 images: 4 steps per epoch, 2 epochs, a
checkpoint every step). Three chains run side by side:

* `A`: uninterrupted, the single-device reference; held for a moment
  after its checkpoint of step 5, which is copied then.
* `B -> B'`: `B` is SIGKILLed from outside while it writes the checkpoint
  of step 3 (its save is held half written; the one of step 2 is
  complete). `B'` resumes from step 2, mid-epoch, and meets NaN images at
  step 5: it must stop with a FloatingPointError naming width and step and
  exit 2, and its checkpoint of step 5 (after a cut epoch, an epoch end
  and a step of the next epoch) must equal `A`'s: weights, optimizer and
  recipe state, history and the running metrics, bit for bit.
* `C -> D'` under MirroredStrategy on 2 logical CPUs: `C` (the reference)
  is held right after its checkpoint of step 6 (it saves every 2 steps); its run folder is copied
  then, which is what a kill at that moment leaves on disk, and `C` goes
  on. `D'` resumes the copy mid-epoch and must end equal to `C`, bit for
  bit. (The real kill is `B`'s; this chain checks the restore of mirrored
  variables without a third multi-device process: these processes are
  slow to start, and the suite must stay fast.)

Tolerance: zero. With one thread per op and deterministic data (batch `n`
is a function of `(seed, n)`), the same program on the same state computes
the same bits; any difference would be state the checkpoint lost.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

from keras_slim.config import dump_config
from keras_slim.config import load_config
from tests.runs._tiny_run import STEPS
from tests.runs._tiny_run import TINY
from tests.runs._tiny_run import checkpoint_arrays as _weights

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir,
                                    os.pardir))
TIMEOUT = 300

# One `keras-slim pretrain` process; `spec` adds the faults to inject.
CHILD = textwrap.dedent(
    """
    import json, os, sys, time
    spec = json.loads(sys.argv[1])
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    if spec["replicas"] > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * spec["replicas"])
    import keras
    from keras_slim import cli, data
    from keras_slim.runs import run_checkpoint
    from tests._gc import relax_gc
    relax_gc()

    def hold():
        open(spec["marker"], "w").close()
        while not (spec.get("release") and os.path.exists(spec["release"])):
            time.sleep(0.05)

    if spec.get("hold_after_checkpoint"):
        save = run_checkpoint.RunCheckpoint.save
        def save_then_hold(self, *args, **kwargs):
            save(self, *args, **kwargs)
            if self._step() == spec["hold_after_checkpoint"]:
                hold()
        run_checkpoint.RunCheckpoint.save = save_then_hold

    if spec.get("hold_in_save"):
        save_weights = keras.Model.save_weights
        def half_written(self, path, *args, **kwargs):
            save_weights(self, path, *args, **kwargs)
            if int(self.ssl_step.numpy()) == spec["hold_in_save"]:
                with open(path, "r+b") as f:
                    f.truncate(os.path.getsize(path) // 2)
                hold()
        keras.Model.save_weights = half_written

    if spec.get("nan_at_step"):
        view_pairs = data.view_pairs
        def poisoned(*args, start_step=0, **kwargs):
            pairs = view_pairs(*args, start_step=start_step, **kwargs)
            def poison(index, views):
                hit = tf.equal(index + start_step, spec["nan_at_step"])
                return tuple(tf.where(hit, float("nan"), v) for v in views)
            return pairs.enumerate().map(poison)
        data.view_pairs = poisoned

    if spec.get("odd_batch_dir"):
        from keras_slim.config import load_config
        from keras_slim.runs import pretrain
        folder = spec["odd_batch_dir"]
        config = load_config(spec["config"], spec["overrides"] + [
            "train.batch_size=63", f"output_dir={folder}"])
        try:
            pretrain(config, evaluate=False)
            message = None
        except ValueError as error:
            message = str(error)
        with open(os.path.join(os.path.dirname(folder), "odd_batch.json"),
                  "w") as f:
            json.dump({"message": message,
                       "left": sorted(os.listdir(folder))
                       if os.path.isdir(folder) else []}, f)

    sys.exit(cli.main(["pretrain", "--config", spec["config"], "--no-eval",
                       *spec["overrides"], f"output_dir={spec['run']}"]))
    """
)


class Child:
    """One pretrain process; its output goes to files."""

    def __init__(self, tmp, name, config, run, replicas=1, overrides=(),
                 **faults):
        self.name = name
        self.run = run
        self.marker = os.path.join(tmp, f"{name}.held")
        spec = dict(config=config, run=run, replicas=replicas,
                    overrides=list(overrides), marker=self.marker, **faults)
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
                   TF_ENABLE_ONEDNN_OPTS="1", PYTHONPATH=ROOT)
        self.out_path = os.path.join(tmp, f"{name}.out")
        self.err_path = os.path.join(tmp, f"{name}.err")
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.process = subprocess.Popen(
                [sys.executable, "-c", CHILD, json.dumps(spec)], cwd=tmp,
                env=env, stdout=out, stderr=err,
            )

    def text(self, which="out"):
        with open(self.out_path if which == "out" else self.err_path) as f:
            return f.read()

    def wait_held(self):
        deadline = time.time() + TIMEOUT
        while not os.path.exists(self.marker):
            if self.process.poll() is not None or time.time() > deadline:
                raise AssertionError(
                    f"{self.name} never reached its hold point "
                    f"(exit {self.process.poll()}):\n{self.text('err')[-3000:]}"
                )
            time.sleep(0.05)

    def finish(self):
        code = self.process.wait(TIMEOUT)
        return code, self.text("out"), self.text("err")


def _checkpoint(run):
    with open(os.path.join(run, "checkpoint", "state.json")) as f:
        state = json.load(f)
    state["path"] = os.path.join(run, "checkpoint", state["weights"])
    return state


def _history(run):
    with open(os.path.join(run, "history.json")) as f:
        return json.load(f)


def _reference_chain(tmp, config, record):
    run = os.path.join(tmp, "A")
    release = os.path.join(tmp, "A.release")
    # Saves only where it is compared (a save costs more than a step here);
    # how often a run saves changes none of its numbers.
    reference = Child(tmp, "A", config, run, hold_after_checkpoint=5,
                      release=release,
                      overrides=["train.checkpoint_every_steps=5"])
    reference.wait_held()
    shutil.copytree(os.path.join(run, "checkpoint"),
                    os.path.join(tmp, "A-step5"))
    open(release, "w").close()
    record["result"] = reference.finish()


def _single_chain(tmp, config, record):
    run = os.path.join(tmp, "B")
    victim = Child(tmp, "B", config, run, hold_in_save=3)
    victim.wait_held()
    record["at_kill"] = _checkpoint(run)
    record["files_at_kill"] = sorted(os.listdir(os.path.join(run,
                                                             "checkpoint")))
    victim.process.send_signal(signal.SIGKILL)
    record["kill_code"] = victim.process.wait(TIMEOUT)
    record["nan"] = Child(tmp, "B1", config, run, nan_at_step=5).finish()
    record["after_nan"] = _checkpoint(run)
    record["after_nan_files"] = sorted(os.listdir(os.path.join(
        run, "checkpoint")))


def _mirrored_chain(tmp, config, record):
    run, copy = os.path.join(tmp, "C"), os.path.join(tmp, "D")
    release = os.path.join(tmp, "C.release")
    # Fewer saves: these processes are the slow ones.
    mirrored = ["train.strategy=mirrored", "train.checkpoint_every_steps=2"]
    reference = Child(tmp, "C", config, run, replicas=2, overrides=mirrored,
                      hold_after_checkpoint=6, release=release,
                      odd_batch_dir=os.path.join(tmp, "odd"))
    reference.wait_held()
    shutil.copytree(run, copy)
    open(release, "w").close()
    record["resume"] = Child(tmp, "D1", config, copy, replicas=2,
                             overrides=mirrored).finish()
    record["reference"] = reference.finish()


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp("resume"))
    config = os.path.join(tmp, "tiny.yaml")
    with open(config, "w") as f:
        f.write(dump_config(load_config(None, TINY)))
    records = {"reference": {}, "single": {}, "mirrored": {}}
    errors = []

    def guarded(chain, record):
        def run():
            try:
                chain(tmp, config, record)
            except BaseException as error:  # reported by the fixture
                errors.append(error)
        return threading.Thread(target=run)

    started = time.time()
    threads = [guarded(_reference_chain, records["reference"]),
               guarded(_single_chain, records["single"]),
               guarded(_mirrored_chain, records["mirrored"])]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    records["seconds"] = time.time() - started
    records["tmp"] = tmp
    return records


def _assert_ok(result):
    code, out, err = result
    assert code == 0, err[-3000:]
    return out


def _assert_same_checkpoint(want, got, step):
    assert want["step"] == got["step"] == step
    a, b = _weights(want["path"]), _weights(got["path"])
    assert sorted(a) == sorted(b)
    # Backbone, heads, EMA key encoder, queue, pointer, step counter,
    # optimizer slots and iteration count: all of them, bit for bit.
    assert {name.split("/")[0] for name in a} >= {
        "backbone", "key_backbone", "key_projector", "optimizer", "vars"}
    assert len(a) == 512  # every array of the ResNet-10 run: none dropped
    different = [name for name in a if not np.array_equal(a[name], b[name])]
    assert different == [], different[:10]
    assert a["vars/0"] == step  # the recipe's ssl_step
    assert a["optimizer/vars/0"] == step  # iterations: the schedule's place
    assert a["vars/1"].shape == (128, 128)  # the queue, then its pointer
    assert a["vars/2"] == (step * 64) % 128
    for key in ("history", "metrics"):
        assert want.get(key) == got.get(key)


def test_killed_mid_save_the_previous_checkpoint_is_used(runs):
    single = runs["single"]
    assert single["kill_code"] == -signal.SIGKILL
    # Held while writing step 3: state.json still names the complete step 2
    # and the half-written file is a hidden temporary beside it.
    assert single["at_kill"]["step"] == 2
    files = single["files_at_kill"]
    assert "step-2.weights.h5" in files and "step-3.weights.h5" not in files
    assert any(name.startswith(".step-3.weights.h5.") and ".partial" in name
               for name in files), files
    code, out, err = single["nan"]
    assert f"resuming {os.path.join(runs['tmp'], 'B')} at step 2" in out
    # The resumed process cleared the killed save's temporary file.
    assert not any(".partial" in name for name in single["after_nan_files"])


def test_nan_stops_the_cli_and_keeps_the_checkpoint(runs):
    single = runs["single"]
    code, _, err = single["nan"]
    assert code == 2, err[-3000:]
    # NaN images: the ReLUs hide them from the loss, not from the gradient.
    assert "keras-slim pretrain: error: Non-finite gradient at width " in err
    assert "at training step 5 (counted from 0" in err
    assert "checkpoint of step 5" in err and "intact" in err
    assert single["after_nan"]["step"] == 5
    weights = _weights(single["after_nan"]["path"])
    assert all(np.isfinite(v).all() for v in weights.values()
               if np.issubdtype(np.asarray(v).dtype, np.floating))


def test_resumed_run_equals_the_uninterrupted_run(runs):
    _assert_ok(runs["reference"]["result"])
    snapshot = os.path.join(runs["tmp"], "A-step5")
    with open(os.path.join(snapshot, "state.json")) as f:
        want = json.load(f)
    want["path"] = os.path.join(snapshot, want["weights"])
    _assert_same_checkpoint(want, runs["single"]["after_nan"], step=5)
    assert [h["epoch"] for h in want["history"]] == [1]
    # The running mean of the loss, one step into epoch 2: [total], [count].
    assert want["metrics"]["loss"][1] == [1.0]


def test_resumed_mirrored_run_equals_the_uninterrupted_one(runs):
    mirrored = runs["mirrored"]
    _assert_ok(mirrored["reference"])
    out = _assert_ok(mirrored["resume"])
    assert "at step 6" in out
    reference = os.path.join(runs["tmp"], "C")
    resumed = os.path.join(runs["tmp"], "D")
    _assert_same_checkpoint(_checkpoint(reference), _checkpoint(resumed),
                            step=STEPS)
    assert _history(reference) == _history(resumed)
    # Two replicas really trained: the result differs from one device's.
    one = _weights(_checkpoint(os.path.join(runs["tmp"], "A"))["path"])
    two = _weights(_checkpoint(os.path.join(runs["tmp"], "C"))["path"])
    assert not np.array_equal(one["vars/1"], two["vars/1"])  # the queue


def test_batch_not_divisible_by_replicas_is_refused_up_front(runs):
    with open(os.path.join(runs["tmp"], "odd_batch.json")) as f:
        odd = json.load(f)
    assert odd["message"] is not None
    assert "train.batch_size=63 is not divisible by the 2 replicas" in (
        odd["message"])
    assert "e.g. 64" in odd["message"]
    assert odd["left"] == []  # no config.yaml that would block the fix
