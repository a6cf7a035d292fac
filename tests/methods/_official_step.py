"""Shared checks of the whole-step tests against the official code.

The golden files (`tools/make_golden_*.py`) hold, per official state-dict
key, how far one official step moved the tensor (`delta_norm`, in float32
and in a float64 rerun) and its size after the step (`after_norm`).
"""

import keras
import numpy as np


def in_precision(floatx, build):
    """`build()` with Keras' floatx and dtype policy set to `floatx`."""
    # Both: a dtype policy set by an earlier test (mixed precision) would
    # override floatx.
    previous, policy = keras.config.floatx(), keras.config.dtype_policy()
    keras.config.set_floatx(floatx)
    keras.config.set_dtype_policy(floatx)
    try:
        return build()
    finally:
        keras.config.set_floatx(previous)
        keras.config.set_dtype_policy(policy)


def moved(before, after, keys):
    return np.array([np.linalg.norm(after[k] - before[k]) for k in keys])


def check_moves(before, after, arrays, checked, prefix=""):
    """Each tensor of `checked` moved as far as officially (float32 noise).

    Compared with the official float64 move (`prefix=""`) or with the only
    official run of a case (`prefix`, e.g. "slow_start/"); the tolerance of a
    tensor is 1e-3 of its move, plus three times the official
    float32-vs-float64 difference of that move, plus 1e-6 of its size.
    """
    keys = [str(k) for k in arrays["state_keys"]]
    index = {k: i for i, k in enumerate(keys)}
    if prefix:
        official = arrays[f"{prefix}delta_norm"]
        noise = np.zeros_like(official)
    else:
        official = arrays["float64/delta_norm"]
        noise = np.abs(official - arrays["delta_norm"])
    size = arrays[f"{prefix}after_norm"]
    rows = [index[k] for k in checked]
    ours = moved(before, after, checked)
    tolerance = 1e-3 * official[rows] + 3 * noise[rows] + 1e-6 * size[rows]
    worst = np.argmax(np.abs(ours - official[rows]) - tolerance)
    assert np.all(np.abs(ours - official[rows]) <= tolerance), (
        f"{checked[worst]}: moved {ours[worst]:.6g}, officially "
        f"{official[rows][worst]:.6g}")
