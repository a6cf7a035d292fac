"""What a recipe's step logs, how a non-finite step is reported, and how
gradients add up: the pieces the TensorFlow and JAX steps share."""

import keras
from keras import ops

from keras_slim import losses

NONFINITE = "Non-finite loss at width"
NONFINITE_GRADIENT = "Non-finite gradient at width"
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


def nonfinite_message(error, step):
    """The `FloatingPointError` text of a failed step, or None if another."""
    text = str(error)
    marker = next((m for m in (NONFINITE, NONFINITE_GRADIENT) if m in text),
                  None)
    if marker is None:
        return None
    detail = text.split(marker, 1)[1].split(";")[0]
    return (f"{marker}{detail} at training step {step} (counted from 0; "
            f"the weights are those before it): lower the learning rate, "
            f"check the inputs for NaN/Inf, or use mixed precision with "
            f"loss scaling.")


def width_values(model, slot, out, penalty, grad_norm):
    """The values one width logs (`slot_keys`), from its `width_outputs`.

    Means of this replica's examples: under `tf.distribute` Keras averages
    the metrics over replicas, which gives the global means (the gradient
    uses the global-batch scaling instead); on JAX the batch is global.
    """
    ssl_mean = _mean(out["ssl"])
    distill_mean = ops.zeros((), "float32")
    if out.get("distill") is not None:
        distill_mean = _mean(out["distill"])
    accuracy = out.get("accuracy")
    name = slot.name
    return {
        f"{name}/loss": model.combine(slot, ssl_mean, distill_mean) + penalty,
        f"{name}/ssl_loss": ssl_mean,
        f"{name}/distill_loss": distill_mean,
        f"{name}/accuracy": (ops.zeros((), "float32") if accuracy is None
                             else _mean(accuracy)),
        f"{name}/grad_norm": grad_norm,
        f"{name}/embedding_std": ops.cast(
            losses.embedding_std(out["embedding"]), "float32"),
        f"{name}/active": ops.ones((), "float32"),
    }


def _mean(per_example):
    return ops.mean(ops.cast(per_example, "float32"))


def add_gradient(total, grad):
    """`total + grad`, where None is a gradient a width did not produce."""
    if grad is None:
        return total
    if total is None:
        return grad
    return total + grad
