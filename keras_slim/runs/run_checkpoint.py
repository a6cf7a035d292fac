"""Saves a run's whole training state, atomically, so a killed run resumes."""

import glob
import os

import keras

from keras_slim.io import atomic_path
from keras_slim.io import write_json_atomic

__all__ = ["RunCheckpoint", "read_checkpoint_state"]

_STATE = "state.json"


class RunCheckpoint(keras.callbacks.Callback):
    """Saves weights + optimizer + recipe state and the epoch history.

    Every variable of the recipe (backbone, heads, EMA encoders, MoCo queue,
    the step counter that drives slow start and width sampling) and of the
    optimizer (slots, iteration count, hence the learning-rate schedule's
    position) goes into `step-<n>.weights.h5`; `state.json` then names that
    file, the step and the history so far. Both are written atomically and
    in that order, so a kill at any moment leaves the previous `state.json`
    pointing at a complete file. Older weight files are removed afterwards.

    Args:
        directory: the checkpoint folder.
        every_steps: also save every this many training steps (0: only at
            the end of each epoch).
        history: list of per-epoch log dicts restored from an earlier
            checkpoint; new epochs are appended.
    """

    def __init__(self, directory, every_steps=0, history=None):
        super().__init__()
        self.directory = directory
        self.every_steps = int(every_steps)
        self.history = list(history or [])

    def on_train_batch_end(self, batch, logs=None):
        if self.every_steps and self._step() % self.every_steps == 0:
            self.save()

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1}
        entry.update({k: _plain(v) for k, v in (logs or {}).items()})
        self.history.append(entry)
        self.save()

    def _step(self):
        return int(keras.ops.convert_to_numpy(self.model.ssl_step))

    def save(self):
        step = self._step()
        os.makedirs(self.directory, exist_ok=True)
        name = f"step-{step}.weights.h5"
        with atomic_path(os.path.join(self.directory, name)) as tmp:
            self.model.save_weights(tmp, overwrite=True)
        write_json_atomic(
            os.path.join(self.directory, _STATE),
            {"step": step, "weights": name, "history": self.history},
        )
        for old in glob.glob(os.path.join(self.directory, "step-*.weights.h5")):
            if os.path.basename(old) != name:
                os.remove(old)


def read_checkpoint_state(directory):
    """The saved state dict (`step`, `weights` path, `history`), or None."""
    import json

    path = os.path.join(directory, _STATE)
    if not os.path.isfile(path):
        return None
    with open(path, encoding="utf-8") as f:
        state = json.load(f)
    weights = os.path.join(directory, state["weights"])
    if not os.path.isfile(weights):
        raise FileNotFoundError(
            f"{path} names {weights}, which is missing: the checkpoint folder "
            f"was edited by hand. Delete {directory} to start the run over."
        )
    state["weights"] = weights
    return state


def _plain(value):
    try:
        return float(keras.ops.convert_to_numpy(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return value
