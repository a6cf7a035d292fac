"""Saves a run's whole training state, atomically, so a killed run resumes."""

import glob
import json
import os
import warnings

import keras
import numpy as np

from keras_slim.io import atomic_path
from keras_slim.io import remove_partial_files
from keras_slim.io import write_json_atomic
from keras_slim.runs._run_backend import run_backend

__all__ = ["RunCheckpoint", "read_checkpoint_state", "restore_checkpoint"]

_STATE = "state.json"


class RunCheckpoint(keras.callbacks.Callback):
    """Saves weights + optimizer + recipe state and the epoch history.

    Every variable of the recipe (backbone, heads, EMA encoders, MoCo queue
    and its pointer, the step counter that drives slow start and width
    sampling) and of the optimizer (slots, iteration count, hence the
    learning-rate schedule's position) goes into `step-<n>.weights.h5`;
    `state.json` then names that file, the step and the history so far. Both
    are written atomically and in that order, so a kill at any moment leaves
    the previous `state.json` pointing at a complete file. Older weight files
    are removed afterwards, and temporary files of a killed save when
    training starts.

    A mid-epoch save also records the epoch's running metric means, which
    `fit` keeps outside the model: a run resumed from it reports the same
    epoch averages (history, TensorBoard) as a run never stopped.

    A save refuses weights that hold NaN or Inf (`FloatingPointError`), so
    the last checkpoint is always one training can continue from.

    Args:
        directory: the checkpoint folder.
        every_steps: also save every this many training steps (0: only at
            the end of each epoch).
        history: list of per-epoch log dicts restored from an earlier
            checkpoint; new epochs are appended.
        metric_state: the `metrics` entry of the checkpoint being resumed
            (running means of a cut epoch), or `None`.
        step_variable: the name of the model's variable that counts its
            training steps (`ssl_step` of the recipes, `step_counter` of a
            `keras_slim.tasks.SlimClassifier`).

    Example:

    ```python
    import tempfile

    import keras
    from keras_slim.backbones import SlimResNet
    from keras_slim.methods import SlimCLR
    from keras_slim.runs import RunCheckpoint
    from keras_slim.runs.run_checkpoint import read_checkpoint_state
    from keras_slim.runs.run_checkpoint import restore_checkpoint

    def recipe():
        backbone = SlimResNet(depth=10, stem="cifar", base_width=4,
                              widths=[1.0, 0.5], input_shape=(8, 8, 3))
        model = SlimCLR(backbone, base="simclr")
        model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
        model.optimizer.build(model.trainable_variables)
        return model

    folder = tempfile.mkdtemp()
    model = recipe()
    checkpoint = RunCheckpoint(folder, every_steps=500)
    checkpoint.set_model(model)
    # `model.fit(pairs, callbacks=[checkpoint])` trains 12 steps, then saves:
    model.ssl_step.assign(12)
    checkpoint.save()
    state = read_checkpoint_state(folder)
    assert state["step"] == 12
    assert state["weights"].endswith("step-12.weights.h5")
    resumed = recipe()  # after a kill, in a new process
    restore_checkpoint(resumed, state)
    assert int(resumed.ssl_step.numpy()) == 12
    ```

    References:
        - [Keras: saving and loading weights](https://keras.io/api/models/model_saving_apis/weights_saving_and_loading/)
    """

    def __init__(self, directory, every_steps=0, history=None,
                 metric_state=None, step_variable="ssl_step"):
        super().__init__()
        self.step_variable = step_variable
        self.directory = directory
        self.every_steps = int(every_steps)
        self.history = list(history or [])
        self.metric_state = metric_state

    def on_train_begin(self, logs=None):
        os.makedirs(self.directory, exist_ok=True)
        # Only this run writes here; a killed save left these behind.
        remove_partial_files(self.directory)

    def on_epoch_begin(self, epoch, logs=None):
        # `fit` has just reset the metrics; a resumed cut epoch continues
        # the running means it had when it was saved.
        if self.metric_state:
            _set_metric_state(self.model, self.metric_state)
            self.metric_state = None

    def on_train_batch_end(self, batch, logs=None):
        if not self.every_steps or self._step() % self.every_steps:
            return
        if batch + 1 == self.params.get("steps"):
            return  # the epoch's end: `on_epoch_end` saves, with its history
        self.save(metric_state=_metric_state(self.model))

    def on_epoch_end(self, epoch, logs=None):
        entry = {"epoch": epoch + 1}
        entry.update({k: _plain(v) for k, v in (logs or {}).items()})
        self.history.append(entry)
        self.save()

    def _step(self):
        return int(keras.ops.convert_to_numpy(
            getattr(self.model, self.step_variable)))

    def save(self, metric_state=None):
        """Write the current state; `metric_state` marks a mid-epoch save."""
        step = self._step()
        _check_finite(self.model, step, self.directory)
        os.makedirs(self.directory, exist_ok=True)
        name = f"step-{step}.weights.h5"
        path = os.path.join(self.directory, name)
        with atomic_path(path) as tmp:
            self.model.save_weights(tmp, overwrite=True)
        state = {"step": step, "weights": name, "history": self.history}
        if metric_state:
            state["metrics"] = metric_state
        try:
            write_json_atomic(os.path.join(self.directory, _STATE), state)
        except BaseException:
            # The previous state stays; drop the file it does not name (a
            # full disk needs the space back).
            if _saved_weights_name(self.directory) != name:
                os.remove(path)
            raise
        for old in glob.glob(os.path.join(glob.escape(self.directory),
                                          "step-*.weights.h5")):
            if os.path.basename(old) != name:
                os.remove(old)


def read_checkpoint_state(directory):
    """The saved state dict (`step`, `weights` path, `history`), or None."""
    path = os.path.join(directory, _STATE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
    except ValueError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}): it was edited or damaged "
            f"outside keras-slim, which writes it atomically. Delete "
            f"{directory} to start the run over."
        ) from None
    weights = os.path.join(directory, state["weights"])
    if not os.path.isfile(weights):
        raise FileNotFoundError(
            f"{path} names {weights}, which is missing: the checkpoint folder "
            f"was edited by hand. Delete {directory} to start the run over."
        )
    state["weights"] = weights
    return state


def restore_checkpoint(model, state):
    """Load a checkpoint into `model`, optimizer state included.

    The model must be compiled and its optimizer built over the same
    variables as when the checkpoint was written (as `pretrain` does).
    Keras only warns when the saved optimizer does not match and then trains
    on with fresh slots and step count; here that is an error.

    Args:
        model: the recipe (`SlimSSL`) to fill.
        state: `read_checkpoint_state(...)`.
    """
    path = state["weights"]
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.load_weights(path)
    for warning in caught:
        message = str(warning.message)
        if "Skipping variable loading for optimizer" in message:
            raise ValueError(
                f"{path} holds another optimizer state than this run's "
                f"optimizer ({message.strip()}). Resuming would restart the "
                f"learning-rate schedule and momentum; build the optimizer "
                f"over `model.trainable_variables` before restoring, or start "
                f"a new run directory."
            )
        warnings.warn_explicit(warning.message, warning.category,
                               warning.filename, warning.lineno)


def _saved_weights_name(directory):
    try:
        with open(os.path.join(directory, _STATE), encoding="utf-8") as f:
            return json.load(f).get("weights")
    except (OSError, ValueError):
        return None


def _check_finite(model, step, directory):
    variables = list(model.variables)
    if model.optimizer is not None:
        variables += list(model.optimizer.variables)
    for variable in variables:
        if not keras.backend.is_float_dtype(variable.dtype):
            continue
        if not np.isfinite(keras.ops.convert_to_numpy(variable)).all():
            raise FloatingPointError(
                f"{variable.path} holds NaN or Inf after {step} training "
                f"steps, so it was not saved: the last checkpoint in "
                f"{directory} stays the newest. Lower the learning rate or "
                f"check the inputs for NaN/Inf."
            )


def _metric_state(model):
    """Each metric's variables, one value per replica.

    Under a strategy, metric variables are summed across replicas when
    read; restoring each replica's own partial sum (not the total) keeps
    the epoch's logged means bit-identical to a run never stopped.
    """
    return {
        metric.name: [[np.asarray(part).tolist() for part in _parts(v)]
                      for v in metric.variables]
        for metric in model.metrics
    }


def _set_metric_state(model, state):
    for metric in model.metrics:
        saved = state.get(metric.name)
        if saved is None or len(saved) != len(metric.variables):
            continue
        for variable, values in zip(metric.variables, saved):
            parts = _components(variable)
            if len(parts) == len(values):
                for part, value in zip(parts, values):
                    part.assign(value)
            else:  # another replica count: the total, split evenly
                variable.assign(np.sum(np.asarray(values), axis=0))


def _components(variable):
    """The per-replica `tf.Variable`s behind a Keras variable (on JAX, or
    without a strategy, the variable alone)."""
    return run_backend().variable_components(variable)


def _parts(variable):
    read = run_backend().read_component
    return [read(c) for c in _components(variable)]


def _plain(value):
    try:
        return float(keras.ops.convert_to_numpy(value).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        return value
