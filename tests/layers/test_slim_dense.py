"""Tests of SlimDense against a hand-sliced keras.layers.Dense."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from tests.layers._contract import run_slim_layer_test
from tests.layers._grads import full_gradients

from keras_slim.layers import SlimDense

WIDTHS = [1.0, 0.75, 0.5, 0.25]
IN_C, UNITS = 8, 16
IN_AT = {1.0: 8, 0.75: 6, 0.5: 4, 0.25: 2}  # divisor 1
OUT_AT = {1.0: 16, 0.75: 12, 0.5: 8, 0.25: 4}
TOL = 1e-5


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _features(rng, channels, batch=4):
    return rng.normal(size=(batch, channels)).astype("float32")


def _built_layer(rng, **kwargs):
    kwargs.setdefault("widths", WIDTHS)
    layer = SlimDense(UNITS, **kwargs)
    layer(_features(rng, IN_C), width=1.0)
    if layer.use_bias:
        layer.assign_weight("bias", rng.normal(size=(UNITS,)).astype("float32"))
    return layer


def _reference(kernel, bias, x):
    ref = keras.layers.Dense(kernel.shape[1], use_bias=bias is not None)
    ref.build((None, kernel.shape[0]))
    ref.set_weights([kernel] + ([bias] if bias is not None else []))
    return _np(ref(x))


def _max_diff(a, b):
    return float(np.max(np.abs(np.asarray(a) - np.asarray(b))))


@pytest.mark.parametrize("width", WIDTHS)
def test_output_matches_hand_sliced_dense(rng, width):
    layer = _built_layer(rng)
    assert tuple(layer.kernel.shape) == (IN_C, UNITS)
    in_c, out_c = IN_AT[width], OUT_AT[width]
    assert layer.input_channels_at(width) == in_c
    assert layer.output_channels_at(width) == out_c
    x = _features(rng, in_c)
    y = _np(layer(x, width=width))
    assert y.shape == (4, out_c)
    kernel = layer.kernel.numpy()[:in_c, :out_c]
    bias = layer.bias.numpy()[:out_c]
    expected = _reference(kernel, bias, x)
    assert _max_diff(y, expected) <= TOL
    # and against plain numpy
    assert _max_diff(y, x @ kernel + bias) <= TOL


@pytest.mark.parametrize("width", WIDTHS)
def test_no_bias(rng, width):
    layer = _built_layer(rng, use_bias=False)
    assert not any("bias" in v.path for v in layer.weights)
    in_c, out_c = IN_AT[width], OUT_AT[width]
    x = _features(rng, in_c)
    y = _np(layer(x, width=width))
    expected = _reference(layer.kernel.numpy()[:in_c, :out_c], None, x)
    assert _max_diff(y, expected) <= TOL
    assert _max_diff(layer.to_keras_layer(width)(x), y) <= TOL


@pytest.mark.parametrize("width", WIDTHS)
def test_rank_three_input(rng, width):
    layer = _built_layer(rng)
    in_c, out_c = IN_AT[width], OUT_AT[width]
    x = rng.normal(size=(2, 3, in_c)).astype("float32")
    y = _np(layer(x, width=width))
    assert y.shape == (2, 3, out_c)
    expected = _reference(
        layer.kernel.numpy()[:in_c, :out_c], layer.bias.numpy()[:out_c], x
    )
    assert _max_diff(y, expected) <= TOL


@pytest.mark.parametrize("width", WIDTHS)
def test_slice_input_false(rng, width):
    layer = _built_layer(rng, slice_input=False)
    assert layer.input_channels_at(width) == IN_C
    out_c = OUT_AT[width]
    x = _features(rng, IN_C)
    y = _np(layer(x, width=width))
    assert y.shape == (4, out_c)
    expected = _reference(
        layer.kernel.numpy()[:, :out_c], layer.bias.numpy()[:out_c], x
    )
    assert _max_diff(y, expected) <= TOL
    assert _max_diff(layer.to_keras_layer(width)(x), y) <= TOL


@pytest.mark.parametrize("width", WIDTHS)
def test_slice_output_false(rng, width):
    layer = _built_layer(rng, slice_output=False)
    in_c = IN_AT[width]
    assert layer.output_channels_at(width) == UNITS
    x = _features(rng, in_c)
    y = _np(layer(x, width=width))
    assert y.shape == (4, UNITS)
    expected = _reference(layer.kernel.numpy()[:in_c, :], layer.bias.numpy(), x)
    assert _max_diff(y, expected) <= TOL
    assert _max_diff(layer.to_keras_layer(width)(x), y) <= TOL


def test_gradient_is_the_analytic_one(rng):
    # The contract checks where gradients go; this checks their value.
    layer = _built_layer(rng)
    in_c, out_c = IN_AT[0.5], OUT_AT[0.5]
    x = tf.constant(_features(rng, in_c))
    upstream = tf.constant(rng.normal(size=(4, out_c)).astype("float32"))
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(layer(x, width=0.5) * upstream)
    grad_k, _ = full_gradients(tape, loss, layer)
    assert grad_k.shape == (IN_C, UNITS)
    # d loss / d kernel[i, j] = sum_b x[b, i] * upstream[b, j]
    np.testing.assert_allclose(
        grad_k[:in_c, :out_c], _np(x).T @ _np(upstream), atol=1e-5
    )


@pytest.mark.parametrize("slice_output", [True, False])
def test_slim_layer_contract(rng, tmp_path, slice_output):
    # Slicing, gradient bands, config and .keras round trips, errors.
    layer = _built_layer(rng, slice_output=slice_output)
    run_slim_layer_test(
        layer, {w: _features(rng, IN_AT[w]) for w in WIDTHS},
        keras.layers.Dense, (None, IN_C), tmp_path,
        unknown_width=0.6, unknown_message=r"Width 0\.6 is not one of",
        bad_rank_input=np.zeros((8,), "float32"),
        rank_message=r"of rank >= 2",
    )
