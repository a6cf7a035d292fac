"""US3L's group regularization of a kernel's output channels."""

import numpy as np
from keras import ops

from keras_slim.losses._tensors import as_float32
from keras_slim.losses._tensors import scalar_float32


def _group_index(channels, groups):
    """Static group index of each output channel (numpy float array).

    As the official GroupReg: groups of `channels // groups` channels, the
    last one taking the remainder; with fewer channels than groups every
    channel is in the last group.
    """
    groups = max(1, int(groups))
    size = channels // groups
    if size == 0:
        return np.full(channels, groups - 1, "float32")
    index = np.minimum(np.arange(channels) // size, groups - 1)
    return index.astype("float32")


def group_regularization(kernel, strength, alpha, groups=8, binned=True):
    """US3L group regularization of a kernel, a scalar penalty.

    Cao, Sun, Zhou, "Three Guidelines You Should Know for Universally
    Slimmable Self-Supervised Learning" (US3L), CVPR 2023. The output channels
    (last axis) are split into `groups` contiguous groups of
    `C // groups` channels, the last group also taking the remainder; group
    `i` (0-based, 0 = leading channels, those shared by every width) gets the
    L2 coefficient `strength * (1 - alpha * i)`:

        R = sum_i strength * (1 - alpha * i) * sum(kernel[..., group_i] ** 2)

    so trailing channels (used only by wide networks) are decayed less. US3L:
    `groups = 8`, `strength = 5e-5` (ResNet-18), `alpha` ramping 0 -> 0.05
    over the first half of training; it replaces weight decay. As the
    official `losses/regularizers/GroupReg.py`: a tensor with fewer output
    channels than groups gets the last group's coefficient throughout, and a
    dense kernel (`binned=False`) gets `strength` throughout.

    Args:
        kernel: weight tensor or variable, output channels on the last axis
            (conv `(kh, kw, in, out)`, dense `(in, out)`) with a static last
            dimension. Pass the kernel (or slice) being regularized.
        strength: float or scalar tensor, `lambda`.
        alpha: float or scalar tensor (may change during training).
        groups: number of groups (a Python int).
        binned: False: plain L2 `strength * sum(kernel ** 2)` (the official
            treatment of 2-D linear weights).

    Returns:
        float32 scalar.
    """
    kernel = as_float32(kernel)
    if not binned:
        return scalar_float32(strength) * ops.sum(ops.square(kernel))
    channels = kernel.shape[-1]
    if channels is None:
        raise ValueError(
            "group_regularization needs a static number of output channels "
            f"(last axis). Received a kernel of shape {kernel.shape}."
        )
    if int(groups) < 1:
        raise ValueError(f"`groups` must be >= 1. Received: groups={groups}")
    reduce_axes = tuple(range(len(kernel.shape) - 1))
    per_channel = ops.sum(ops.square(kernel), axis=reduce_axes)
    index = ops.convert_to_tensor(_group_index(channels, groups))
    coefficients = scalar_float32(strength) * (1.0 - scalar_float32(alpha) * index)
    return ops.sum(coefficients * per_channel)
