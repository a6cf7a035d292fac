"""Tests of SlimConv2D against a hand-sliced keras.layers.Conv2D."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layers._contract import image_rank_error
from tests.layers._contract import run_slim_layer_test
from tests.layers._grads import bands_with_gradient

from keras_slim.layers import SlimConv2D
from keras_slim.width import Widths

WIDTHS = [1.0, 0.75, 0.5, 0.25]
IN_C, FILTERS = 8, 16
# Widths([...]) has divisor 1: round(c * w).
IN_AT = {1.0: 8, 0.75: 6, 0.5: 4, 0.25: 2}
OUT_AT = {1.0: 16, 0.75: 12, 0.5: 8, 0.25: 4}
TOL = 1e-5


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _images(rng, channels, size=7, batch=2):
    return rng.normal(size=(batch, size, size, channels)).astype("float32")


def _built_layer(rng, **kwargs):
    kwargs.setdefault("widths", WIDTHS)
    layer = SlimConv2D(FILTERS, kwargs.pop("kernel_size", 3), **kwargs)
    in_c = IN_C if layer.slice_input or layer.input_channels is None else None
    layer(_images(rng, layer.input_channels or in_c), width=1.0)
    if layer.use_bias:
        # the bias starts at zero: make it count
        layer.assign_weight("bias", rng.normal(size=(FILTERS,)).astype("float32"))
    return layer


def _reference(kernel, bias, x, strides=1, padding="same"):
    """A plain keras Conv2D holding `kernel` (and `bias`), applied to `x`."""
    ref = keras.layers.Conv2D(
        kernel.shape[-1],
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
def test_channels_at_width(rng, width):
    layer = _built_layer(rng)
    assert layer.input_channels_at(width) == IN_AT[width]
    assert layer.output_channels_at(width) == OUT_AT[width]
    assert tuple(layer.kernel.shape) == (3, 3, IN_C, FILTERS)


@pytest.mark.parametrize("width", WIDTHS)
def test_output_matches_hand_sliced_conv2d(rng, width):
    layer = _built_layer(rng)
    in_c, out_c = IN_AT[width], OUT_AT[width]
    x = _images(rng, in_c)
    y = _np(layer(x, width=width))
    assert y.shape == (2, 7, 7, out_c)
    kernel = layer.kernel.numpy()[:, :, :in_c, :out_c]
    expected = _reference(kernel, None, x)
    assert _max_diff(y, expected) <= TOL
    # the output is not trivially zero
    assert np.abs(y).mean() > 0.1


def test_to_keras_layer_default_width_and_name(rng):
    layer = _built_layer(rng, name="stem")
    plain = layer.to_keras_layer()
    assert plain.name == "stem"
    assert plain.filters == FILTERS
    assert layer.to_keras_layer(0.5, name="other").name == "other"


@pytest.mark.parametrize("width", WIDTHS)
def test_slice_input_false_keeps_input_channels(rng, width):
    layer = SlimConv2D(FILTERS, 3, widths=WIDTHS, slice_input=False)
    layer(_images(rng, 3), width=1.0)
    assert layer.input_channels_at(width) == 3
    x = _images(rng, 3)
    y = _np(layer(x, width=width))
    out_c = OUT_AT[width]
    assert y.shape == (2, 7, 7, out_c)
    expected = _reference(layer.kernel.numpy()[:, :, :, :out_c], None, x)
    assert _max_diff(y, expected) <= TOL
    assert _max_diff(layer.to_keras_layer(width)(x), y) <= TOL


@pytest.mark.parametrize("width", WIDTHS)
def test_slice_output_false_keeps_filters(rng, width):
    layer = _built_layer(rng, slice_output=False)
    in_c = IN_AT[width]
    x = _images(rng, in_c)
    y = _np(layer(x, width=width))
    assert y.shape == (2, 7, 7, FILTERS)
    expected = _reference(layer.kernel.numpy()[:, :, :in_c, :], None, x)
    assert _max_diff(y, expected) <= TOL
    assert _max_diff(layer.to_keras_layer(width)(x), y) <= TOL


@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("kernel_size", [3, (3, 1)])
def test_strides_valid_padding_and_bias(rng, width, kernel_size):
    layer = _built_layer(
        rng, kernel_size=kernel_size, strides=2, padding="valid", use_bias=True
    )
    in_c, out_c = IN_AT[width], OUT_AT[width]
    x = _images(rng, in_c, size=9)
    y = _np(layer(x, width=width))
    kh, kw = (3, 3) if kernel_size == 3 else kernel_size
    # valid, stride 2: (9 - k) // 2 + 1
    assert y.shape == (2, (9 - kh) // 2 + 1, (9 - kw) // 2 + 1, out_c)
    kernel = layer.kernel.numpy()[:, :, :in_c, :out_c]
    bias = layer.bias.numpy()[:out_c]
    assert np.abs(bias).min() > 0  # the bias matters in this comparison
    expected = _reference(kernel, bias, x, strides=2, padding="valid")
    assert _max_diff(y, expected) <= TOL
    assert _max_diff(layer.to_keras_layer(width)(x), y) <= TOL


def test_stride_two_same_padding(rng):
    layer = _built_layer(rng, strides=2, use_bias=True)
    x = _images(rng, IN_AT[0.5], size=9)
    y = _np(layer(x, width=0.5))
    assert y.shape == (2, 5, 5, OUT_AT[0.5])
    kernel = layer.kernel.numpy()[:, :, :4, :8]
    expected = _reference(kernel, layer.bias.numpy()[:8], x, strides=2)
    assert _max_diff(y, expected) <= TOL


@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("strides", [1, 2, (3, 2)])
def test_symbolic_shapes_are_the_eager_ones(rng, padding, strides):
    # Sizes 7..10 against kernels 3x1: every remainder of the strides.
    layer = _built_layer(rng, strides=strides, padding=padding,
                         kernel_size=(3, 1))
    for size in (7, 8, 9, 10):
        x = rng.random((1, size, size + 1, IN_AT[0.5]), "float32")
        eager = layer(x, width=0.5).shape
        spec = layer(keras.KerasTensor(x.shape), width=0.5)
        assert spec.shape == eager, (size, spec.shape, eager)


def test_a_valid_convolution_larger_than_its_input_is_refused(rng):
    layer = _built_layer(rng, padding="valid", kernel_size=(3, 1))
    with pytest.raises(ValueError, match=r"padding='valid' needs inputs at "
                       r"least as large as its kernel \(3, 1\), got a "
                       r"spatial size of 2"):
        layer(keras.KerasTensor((None, 2, 5, IN_C)), width=1.0)


def test_gradient_through_trainable_variables(rng):
    # The same check through `layer.trainable_variables`, as an optimizer sees.
    layer = _built_layer(rng)
    x = tf.constant(_images(rng, IN_AT[0.25]))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(tf.square(layer(x, width=0.25)))
    # Only the one kernel band of width 0.25 gets a gradient; the others get
    # None, so an optimizer leaves them (and their cost) alone.
    assert bands_with_gradient(tape, loss, layer) == [(3, 3, 2, 4)]


def test_error_bad_padding():
    with pytest.raises(ValueError, match=r"`padding` must be 'same' or 'valid'"):
        SlimConv2D(8, 3, widths=WIDTHS, padding="causal")


def test_error_bad_kernel_size():
    with pytest.raises(ValueError, match=r"`kernel_size` must be an int or a pair"):
        SlimConv2D(8, (3, 3, 3), widths=WIDTHS)


def test_default_width_is_largest(rng):
    layer = _built_layer(rng)
    x = _images(rng, IN_C)
    np.testing.assert_array_equal(_np(layer(x)), _np(layer(x, width=1.0)))


def test_range_widths(rng):
    widths = Widths(min_width=0.25, max_width=1.0)
    layer = SlimConv2D(32, 3, widths=widths, input_channels=16)
    layer(_images(rng, 16), width=1.0)
    # divisor 8: 16 * 0.3 = 4.8 -> 8; 32 * 0.3 = 9.6 -> 8, < 90% -> 16
    assert layer.input_channels_at(0.3) == 8
    assert layer.output_channels_at(0.3) == 16
    x = _images(rng, 8)
    y = _np(layer(x, width=0.3))
    assert y.shape == (2, 7, 7, 16)
    expected = _reference(layer.kernel.numpy()[:, :, :8, :16], None, x)
    assert _max_diff(y, expected) <= TOL


def test_expansion_rounding(rng):
    widths = Widths(WIDTHS, divisor=8)
    layer = SlimConv2D(144, 1, widths=widths, expansion=6, input_channels=24)
    layer.build((None, None, None, 24))
    assert layer.output_channels_at(0.5) == 6 * widths.channels(24, 0.5) == 96
    assert layer.input_channels_at(0.5) == 16
    project = SlimConv2D(24, 1, widths=widths, input_expansion=6, input_channels=144)
    assert project.input_channels_at(0.5) == 96
    assert project.output_channels_at(0.5) == 16


def test_slim_layer_contract(rng, tmp_path):
    # Slicing, gradient bands, config and .keras round trips, errors.
    layer = _built_layer(
        rng, use_bias=True, strides=2, padding="valid", kernel_size=(3, 1)
    )
    run_slim_layer_test(
        layer, {w: _images(rng, IN_AT[w], size=9) for w in WIDTHS},
        keras.layers.Conv2D, (None, 9, 9, IN_C), tmp_path,
        unknown_width=0.6, unknown_message=r"Width 0\.6 is not one of",
        **image_rank_error(rng),
    )


def test_config_keeps_widths_and_pairs(rng):
    layer = _built_layer(
        rng, use_bias=True, strides=2, padding="valid", kernel_size=(3, 1)
    )
    clone = SlimConv2D.from_config(layer.get_config())
    assert clone.widths == layer.widths
    assert clone.kernel_size == (3, 1) and clone.strides == (2, 2)


def test_config_round_trip_range_widths_and_flags(rng):
    widths = Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.5])
    layer = SlimConv2D(
        16, 3, widths=widths, slice_input=False, slice_output=False,
        input_channels=3,
    )
    clone = SlimConv2D.from_config(layer.get_config())
    assert clone.widths == widths
    assert not clone.slice_input and not clone.slice_output
    assert clone.input_channels == 3
