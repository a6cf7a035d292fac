"""Tests of SlimDepthwiseConv2D against a hand-sliced DepthwiseConv2D."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layers._contract import image_rank_error
from tests.layers._contract import run_slim_layer_test

from keras_slim.layers import SlimDepthwiseConv2D
from keras_slim.width import Widths

WIDTHS = [1.0, 0.75, 0.5, 0.25]
CHANNELS = 8
C_AT = {1.0: 8, 0.75: 6, 0.5: 4, 0.25: 2}  # divisor 1
TOL = 1e-5


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _images(rng, channels, size=7, batch=2):
    return rng.normal(size=(batch, size, size, channels)).astype("float32")


def _built_layer(rng, **kwargs):
    kwargs.setdefault("widths", WIDTHS)
    layer = SlimDepthwiseConv2D(kwargs.pop("kernel_size", 3), **kwargs)
    layer(_images(rng, CHANNELS), width=1.0)
    if layer.use_bias:
        layer.assign_weight("bias", rng.normal(size=(CHANNELS,)).astype("float32"))
    return layer


def _reference(kernel, bias, x, strides=1, padding="same"):
    ref = keras.layers.DepthwiseConv2D(
        kernel.shape[:2],
        strides=strides,
        padding=padding,
        use_bias=bias is not None,
    )
    ref.build((None, None, None, kernel.shape[2]))
    ref.set_weights([kernel] + ([bias] if bias is not None else []))
    return _np(ref(x))


def _max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


@pytest.mark.parametrize("width", WIDTHS)
def test_output_matches_hand_sliced_depthwise(rng, width):
    layer = _built_layer(rng)
    assert tuple(layer.kernel.shape) == (3, 3, CHANNELS, 1)
    c = C_AT[width]
    assert layer.channels_at(width) == c
    x = _images(rng, c)
    y = _np(layer(x, width=width))
    assert y.shape == (2, 7, 7, c)
    expected = _reference(layer.kernel.numpy()[:, :, :c, :], None, x)
    assert _max_diff(y, expected) <= TOL
    assert np.abs(y).mean() > 0.1


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kernel_size", [3, (1, 3)])
def test_strides_valid_padding_and_bias(rng, width, kernel_size):
    layer = _built_layer(
        rng, kernel_size=kernel_size, strides=2, padding="valid", use_bias=True
    )
    c = C_AT[width]
    x = _images(rng, c, size=9)
    y = _np(layer(x, width=width))
    kh, kw = (3, 3) if kernel_size == 3 else kernel_size
    assert y.shape == (2, (9 - kh) // 2 + 1, (9 - kw) // 2 + 1, c)
    kernel = layer.kernel.numpy()[:, :, :c, :]
    bias = layer.bias.numpy()[:c]
    assert np.abs(bias).min() > 0
    expected = _reference(kernel, bias, x, strides=2, padding="valid")
    assert _max_diff(y, expected) <= TOL
    assert _max_diff(layer.to_keras_layer(width)(x), y) <= TOL


def test_stride_two_same_padding(rng):
    layer = _built_layer(rng, strides=2)
    x = _images(rng, 4, size=9)
    y = _np(layer(x, width=0.5))
    assert y.shape == (2, 5, 5, 4)
    expected = _reference(layer.kernel.numpy()[:, :, :4, :], None, x, strides=2)
    assert _max_diff(y, expected) <= TOL


def test_expansion_channels(rng):
    widths = Widths(WIDTHS, divisor=8)
    layer = SlimDepthwiseConv2D(3, widths=widths, expansion=6, input_channels=144)
    layer.build((None, None, None, 144))
    # 6 * channels(24, w): 24 * 0.5 = 12 -> 16; 24 * 0.25 = 6 -> 8
    assert layer.channels_at(0.5) == 96
    assert layer.channels_at(0.25) == 48
    assert layer.channels_at(1.0) == 144
    x = _images(rng, 96, size=4)
    y = _np(layer(x, width=0.5))
    expected = _reference(layer.kernel.numpy()[:, :, :96, :], None, x)
    assert _max_diff(y, expected) <= TOL


def test_error_bad_padding():
    with pytest.raises(ValueError, match=r"`padding` must be 'same' or 'valid'"):
        SlimDepthwiseConv2D(3, widths=WIDTHS, padding="full")


def test_slim_layer_contract(rng, tmp_path):
    # Slicing, gradient bands, config and .keras round trips, errors.
    layer = _built_layer(rng, use_bias=True, strides=2, padding="valid")
    run_slim_layer_test(
        layer, {w: _images(rng, C_AT[w], size=9) for w in WIDTHS},
        keras.layers.DepthwiseConv2D, (None, 9, 9, CHANNELS), tmp_path,
        unknown_width=0.3, unknown_message=r"Width 0\.3 is not one of",
        **image_rank_error(rng),
    )
