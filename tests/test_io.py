"""Atomic writes: a failed or killed write never damages the previous file."""

import errno
import json
import os

import keras
import numpy as np
import pytest

from keras_slim import io
from keras_slim.runs import run_checkpoint
from keras_slim.runs.run_checkpoint import RunCheckpoint
from keras_slim.runs.run_checkpoint import read_checkpoint_state


def _disk_full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_failed_write_keeps_the_previous_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "results.json"
    io.write_json_atomic(str(path), {"top1": 0.9})
    with pytest.raises(RuntimeError):
        with io.atomic_path(str(path)) as tmp:
            with open(tmp, "w") as f:
                f.write('{"top1": 0.')  # half written, then a crash
            raise RuntimeError("killed")
    assert json.loads(path.read_text()) == {"top1": 0.9}
    assert os.listdir(tmp_path) == ["results.json"]


def test_disk_full_says_so_and_keeps_the_previous_file(tmp_path,
                                                       monkeypatch):
    path = tmp_path / "config.yaml"
    io.write_text_atomic(str(path), "seed: 0\n")
    monkeypatch.setattr(io.os, "fsync", _disk_full)
    with pytest.raises(OSError, match="No space left on the device while "
                       "writing .*config.yaml; the previous version of the "
                       "file \\(if any\\) is intact") as caught:
        io.write_text_atomic(str(path), "seed: 1\n")
    assert caught.value.errno == errno.ENOSPC
    assert path.read_text() == "seed: 0\n"
    assert os.listdir(tmp_path) == ["config.yaml"]


def test_new_files_get_the_usual_permissions(tmp_path):
    path = tmp_path / "a.txt"
    io.write_text_atomic(str(path), "x")
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask
    os.chmod(path, 0o600)
    io.write_text_atomic(str(path), "y")  # a replaced file keeps its mode
    assert os.stat(path).st_mode & 0o777 == 0o600


def test_remove_partial_files_clears_only_leftovers(tmp_path):
    (tmp_path / ".step-3.weights.h5.abc.partial.h5").write_text("half")
    (tmp_path / "step-2.weights.h5").write_text("whole")
    io.remove_partial_files(str(tmp_path))
    assert os.listdir(tmp_path) == ["step-2.weights.h5"]


class _Tiny(keras.Model):
    """The least a RunCheckpoint needs: weights and a step counter."""

    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(2)
        self.ssl_step = keras.Variable(0, dtype="int64", trainable=False)

    def call(self, x):
        return self.dense(x)


def _model():
    model = _Tiny()
    model(np.zeros((1, 3), "float32"))
    model.compile(optimizer="sgd")
    return model


def test_disk_full_during_a_checkpoint_keeps_the_last_good_one(
        tmp_path, monkeypatch):
    model = _model()
    checkpoint = RunCheckpoint(str(tmp_path))
    checkpoint.set_model(model)
    model.ssl_step.assign(2)
    checkpoint.save()
    good = model.dense.kernel.numpy().copy()
    model.ssl_step.assign(3)
    model.dense.kernel.assign(good + 1)
    monkeypatch.setattr(run_checkpoint, "write_json_atomic", _disk_full)
    with pytest.raises(OSError):
        checkpoint.save()
    # The step-3 weights were written, but state.json could not name them:
    # they are removed (the space is needed) and step 2 stays the newest.
    assert sorted(os.listdir(tmp_path)) == ["state.json",
                                            "step-2.weights.h5"]
    state = read_checkpoint_state(str(tmp_path))
    assert state["step"] == 2
    fresh = _model()
    fresh.load_weights(state["weights"])
    np.testing.assert_array_equal(fresh.dense.kernel.numpy(), good)


def test_a_checkpoint_refuses_nan_weights(tmp_path):
    model = _model()
    checkpoint = RunCheckpoint(str(tmp_path))
    checkpoint.set_model(model)
    model.ssl_step.assign(4)
    checkpoint.save()
    model.ssl_step.assign(5)
    model.dense.bias.assign([np.nan, 0.0])
    with pytest.raises(FloatingPointError, match="holds NaN or Inf after 5 "
                       "training steps, so it was not saved"):
        checkpoint.save()
    assert read_checkpoint_state(str(tmp_path))["step"] == 4


def test_a_damaged_state_file_is_reported_not_trusted(tmp_path):
    (tmp_path / "state.json").write_text('{"step": 3, "weights": ')
    with pytest.raises(ValueError, match="not valid JSON"):
        read_checkpoint_state(str(tmp_path))
    (tmp_path / "state.json").write_text(
        '{"step": 3, "weights": "step-3.weights.h5"}')
    with pytest.raises(FileNotFoundError, match="missing"):
        read_checkpoint_state(str(tmp_path))
