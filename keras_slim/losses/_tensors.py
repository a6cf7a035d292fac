"""Tensor conventions shared by the losses: float32 math and the mask value."""

from keras import ops

# Added to masked logits (self-similarities of NT-Xent). Large enough that
# exp(logit - max) underflows to exactly 0 in float32, small enough to stay
# finite after subtraction of any realistic logit.
MASK_VALUE = -1e9


def as_float32(x):
    """Converts `x` to a float32 tensor (upcasting half precision inputs)."""
    x = ops.convert_to_tensor(x)
    if x.dtype != "float32":
        x = ops.cast(x, "float32")
    return x


def scalar_float32(x):
    """A Python number or tensor (e.g. a temperature) as float32."""
    if isinstance(x, (int, float)):
        return float(x)
    return as_float32(x)


def labels_or_zeros(logits, labels):
    """`labels` as int32, or zeros (the MoCo layout) when None."""
    if labels is None:
        return ops.zeros((ops.shape(logits)[0],), dtype="int32")
    return ops.cast(labels, "int32")


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """L2-normalizes `x` along `axis`, in float32.

    `x / sqrt(max(sum(x ** 2, axis), epsilon))`, the same convention as
    `tf.math.l2_normalize` (a zero vector stays zero, no NaN).

    Args:
        x: tensor of any floating dtype; it is cast to float32 first.
        axis: axis to normalize over.
        epsilon: lower bound on the squared norm.

    Returns:
        float32 tensor of the shape of `x`.
    """
    x = as_float32(x)
    square_sum = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(square_sum, epsilon))
