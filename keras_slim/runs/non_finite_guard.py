"""Stops training at the first non-finite loss or gradient norm."""

import keras
import numpy as np

from keras_slim import _backend
from keras_slim.width import width_name

__all__ = ["NonFiniteGuard"]


class NonFiniteGuard(keras.callbacks.Callback):
    """Stops at the first step whose loss or gradient norm is NaN or Inf.

    The recipe checks each width's loss before its update. A NaN input can
    still leave the loss finite (a ReLU may map NaN to 0) while its
    gradient, hence the updated weights, are NaN: the step's logged
    gradient norms show it, and this stops training before a checkpoint
    could save the spoiled weights.

    The error names the width of the spoiled log: each width's logs are
    prefixed by `keras_slim.width.width_name(width)` (`w0.5/grad_norm`), the
    same function the recipes name their logs with, so the prefix is looked
    up, never parsed back into a number. Other slots (`wmin`, `wrand1` of a
    width range) are named as such.

    On JAX a step whose loss is not finite changes nothing (the recipe's
    JAX step keeps the state); the error says so and names that step.

    Args:
        widths: the widths whose logs the model writes (e.g.
            `backbone.widths.values`).

    Example:

    ```python
    from keras_slim.backbones import SlimResNet
    from keras_slim.methods import SlimCLR
    from keras_slim.runs import NonFiniteGuard

    backbone = SlimResNet(depth=18, stem="cifar", base_width=4,
                          widths=[1.0, 0.5])
    model = SlimCLR(backbone, base="simclr")
    guard = NonFiniteGuard(model.backbone.widths.values)
    guard.set_model(model)  # `model.fit(pairs, callbacks=[guard])` does this
    guard.on_train_batch_end(0, {"loss": 3.2, "w0.5/grad_norm": 1.7})  # finite
    try:  # a step whose half-width gradient went NaN
        nan = float("nan")
        guard.on_train_batch_end(1, {"loss": 3.1, "w0.5/grad_norm": nan})
        raise AssertionError("NaN not caught")
    except FloatingPointError as err:
        assert "gradient at width 0.5" in str(err)
    ```
    """

    def __init__(self, widths=()):
        super().__init__()
        self.widths = [float(w) for w in widths]
        self._width_of = {width_name(w): w for w in self.widths}

    @classmethod
    def for_widths(cls, widths):
        """The guard of a model training `widths` (a `Widths`): a list's
        widths, or a range's largest, smallest and statistics widths."""
        if not widths.is_range:
            return cls(widths.values)
        return cls([widths.max_width, widths.min_width, *widths.stat_widths])

    def on_train_batch_end(self, batch, logs=None):
        bad = [key for key in (logs or {})
               if key.endswith(("loss", "grad_norm"))
               and not np.isfinite(_number(logs[key]))]
        if not bad:
            return
        # A loss before a gradient, a width's own key before the total.
        key = min(bad, key=lambda k: (k.endswith("grad_norm"), "/" not in k))
        what = "gradient" if key.endswith("grad_norm") else "loss"
        step = int(keras.ops.convert_to_numpy(self.model.ssl_step))
        if what == "loss" and not _backend.is_tensorflow():
            # The JAX step of a non-finite loss kept the whole state.
            note = "the step was not applied, the checkpoints are intact"
        else:  # the step has run: `ssl_step` already counts it
            step -= 1
            note = "the weights in memory are spoiled, the checkpoints are not"
        raise FloatingPointError(
            f"Non-finite {what} {self.where(key)} ({key}={_number(logs[key])})"
            f" at training step {step} (counted from 0; {note}): lower the "
            f"learning rate or check the inputs for NaN/Inf."
        )

    def where(self, key):
        """`w0.5/grad_norm` -> "at width 0.5"; `loss` -> "in total"."""
        if "/" not in key:
            return "in total"
        slot = key.rsplit("/", 1)[0]
        if slot in self._width_of:
            return f"at width {self._width_of[slot]:g}"
        return f"in slot {slot}"

    def get_config(self):
        return {"widths": self.widths}


def _number(value):
    return float(np.asarray(keras.ops.convert_to_numpy(value)).reshape(-1)[0])
