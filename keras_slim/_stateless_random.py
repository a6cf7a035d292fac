"""Random numbers that are a function of `(seed, step)` alone, on any backend.

A training step draws its widths (and MoCo's Shuffle-BN permutation) from
`(seed, step)`: every replica, worker and resumed run draws the same, with no
random state to save. The numbers are computed with 32-bit integer
`keras.ops` (a counter-based hash: MurmurHash3's finalizer over the seed,
the step and the element index), so TensorFlow and JAX draw bit-identical
numbers: a run trains the same widths on either backend.
"""

from keras import ops

_UNIFORM_SCALE = 1.0 / (1 << 24)


def _u32(value):
    return ops.convert_to_tensor(value, "uint32")


def _mix(x):
    """MurmurHash3's 32-bit finalizer: every input bit flips about half of
    the output bits."""
    x = ops.bitwise_xor(x, ops.right_shift(x, _u32(16)))
    x = ops.multiply(x, _u32(0x85EBCA6B))
    x = ops.bitwise_xor(x, ops.right_shift(x, _u32(13)))
    x = ops.multiply(x, _u32(0xC2B2AE35))
    return ops.bitwise_xor(x, ops.right_shift(x, _u32(16)))


def _affine(x, multiplier, offset):
    return ops.add(ops.multiply(x, _u32(multiplier)), _u32(offset))


def stateless_uniform(count, seed, step):
    """`count` float32 numbers uniform in [0, 1), 24 random bits each.

    Args:
        count: int, how many numbers.
        seed: int or integer tensor.
        step: int or integer tensor (the training step); taken modulo 2**32.

    Returns:
        a float32 tensor of shape `(count,)`, the same for the same
        `(seed, step)` on every backend and device.
    """
    key = _mix(_affine(ops.cast(seed, "uint32"), 0x9E3779B1, 0x7F4A7C15))
    key = _mix(ops.bitwise_xor(
        key, _affine(ops.cast(step, "uint32"), 0x85EBCA77, 0x165667B1)))
    # TensorFlow has no uint32 `range` kernel: count in int32.
    index = ops.cast(ops.arange(count, dtype="int32"), "uint32")
    bits = _mix(ops.bitwise_xor(key, _affine(index, 0xC2B2AE3D, 0x27D4EB2F)))
    return ops.multiply(ops.cast(ops.right_shift(bits, _u32(8)), "float32"),
                        _UNIFORM_SCALE)
