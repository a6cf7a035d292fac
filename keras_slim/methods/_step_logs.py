"""What a recipe's step logs and how a non-finite step is reported, on any
backend (the TensorFlow and JAX steps share it)."""

import keras

NONFINITE = "Non-finite loss at width"
METRICS = ("loss", "ssl_loss", "distill_loss", "accuracy", "grad_norm",
           "embedding_std")


def slot_keys(name):
    """The values one slot logs, and whether it ran (`active`)."""
    return [f"{name}/{m}" for m in METRICS] + [f"{name}/active"]


def nonfinite_detail(width, slot_name):
    """The width part of a non-finite message: ` 0.5 (w0.5)`."""
    return f" {width:g} ({slot_name})"


def checks_gradients(optimizer):
    """Whether a step also stops on a non-finite gradient.

    A finite loss can still have a NaN gradient (a NaN pixel that a max
    drops on the way forward), which would silently poison every weight.
    Under loss scaling an overflowing gradient is expected instead: the
    `LossScaleOptimizer` skips that update and lowers its scale.
    """
    return not isinstance(optimizer, keras.optimizers.LossScaleOptimizer)


def gradient_detail(width, slot_name):
    """The width part of a non-finite-gradient message."""
    return nonfinite_detail(width, slot_name) + " (in its gradient)"


def nonfinite_message(error, step):
    """The `FloatingPointError` text of a failed step, or None if another."""
    if NONFINITE not in str(error):
        return None
    detail = str(error).split(NONFINITE, 1)[1].split(";")[0]
    return (f"{NONFINITE}{detail} at training step {step} (counted from 0; "
            f"the weights are those before it): lower the learning rate, "
            f"check the inputs for NaN/Inf, or use mixed precision with "
            f"loss scaling.")
