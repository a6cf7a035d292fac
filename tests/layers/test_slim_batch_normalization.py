"""Tests of SlimBatchNormalization: shared sliced affine, calibrated stats."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_slim.layers import SlimBatchNormalization
from tests.layers._contract import run_slim_layer_test
from keras_slim.width import Widths

CHANNELS = 8
STAT_WIDTHS = [1.0, 0.75, 0.5, 0.25]
C_AT = {1.0: 8, 0.75: 6, 0.6: 5, 0.5: 4, 0.25: 2}  # divisor 1
EPS = 1e-5


def _widths():
    return Widths(
        min_width=0.25, max_width=1.0, divisor=1, stat_widths=STAT_WIDTHS
    )


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _built_layer(shape=(None, CHANNELS), **kwargs):
    layer = SlimBatchNormalization(_widths(), input_channels=CHANNELS, **kwargs)
    layer.build(shape)
    return layer


def _set_affine(layer):
    gamma = np.arange(1, CHANNELS + 1, dtype="float32")  # 1..8
    beta = np.arange(CHANNELS, dtype="float32") * 0.5 - 1.0
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)
    return gamma, beta


def _normalize(x, mean, var, gamma, beta, eps=EPS):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _stored(layer):
    return [
        (m.numpy().copy(), v.numpy().copy(), float(n.numpy()))
        for m, v, n in zip(
            layer.moving_means, layer.moving_variances, layer.calibration_counts
        )
    ]


def _batches(rng, c, shape=(16,)):
    """Three batches with clearly different means and spreads."""
    return [
        (rng.normal(size=shape + (c,)) * scale + loc).astype("float32")
        for loc, scale in ((0.0, 1.0), (3.0, 2.0), (-2.0, 0.5))
    ]


def test_weights_and_statistics_sizes():
    layer = _built_layer()
    assert tuple(layer.gamma.shape) == (CHANNELS,)
    assert tuple(layer.beta.shape) == (CHANNELS,)
    assert len(layer.moving_means) == len(STAT_WIDTHS)
    for w, mean, var in zip(STAT_WIDTHS, layer.moving_means, layer.moving_variances):
        assert tuple(mean.shape) == (C_AT[w],)
        assert tuple(var.shape) == (C_AT[w],)
    # only gamma and beta are trained; they are shared by every width
    assert len(layer.trainable_weights) == 2


@pytest.mark.parametrize("width", [1.0, 0.5, 0.25])
def test_shared_gamma_beta_sliced_in_training(rng, width):
    layer = _built_layer()
    gamma, beta = _set_affine(layer)
    c = C_AT[width]
    x = (rng.normal(size=(32, c)) * 2.0 + 1.0).astype("float32")
    y = _np(layer(x, width=width, training=True))
    expected = _normalize(x, x.mean(0), x.var(0), gamma[:c], beta[:c])
    np.testing.assert_allclose(y, expected, atol=1e-4)
    # normalized features times gamma[:c]: per-channel std is gamma (nearly)
    np.testing.assert_allclose(y.std(0), gamma[:c], rtol=1e-3)
    np.testing.assert_allclose(y.mean(0), beta[:c], atol=1e-4)


def test_gamma_slice_at_half_width_inference(rng):
    layer = _built_layer()
    gamma, beta = _set_affine(layer)
    i = _widths().stat_index(0.5)
    mean = rng.normal(size=4).astype("float32")
    var = rng.uniform(0.5, 2.0, size=4).astype("float32")
    layer.moving_means[i].assign(mean)
    layer.moving_variances[i].assign(var)
    x = rng.normal(size=(6, 4)).astype("float32")
    y = _np(layer(x, width=0.5))
    np.testing.assert_allclose(
        y, _normalize(x, mean, var, gamma[:4], beta[:4]), atol=1e-5
    )
    # not the trailing entries of gamma
    wrong = _normalize(x, mean, var, gamma[-4:], beta[-4:])
    assert np.abs(y - wrong).max() > 1.0


@pytest.mark.parametrize("width", [1.0, 0.5, 0.6])
def test_training_uses_batch_stats_and_keeps_stored_stats(rng, width):
    layer = _built_layer(shape=(None, 3, 3, CHANNELS))
    gamma, beta = _set_affine(layer)
    before = _stored(layer)
    c = C_AT[width]
    x = (rng.normal(size=(4, 3, 3, c)) * 3.0 + 2.0).astype("float32")
    y = _np(layer(x, width=width, training=True))
    axes = (0, 1, 2)
    expected = _normalize(
        x, x.mean(axes), x.var(axes), gamma[:c], beta[:c]
    )
    np.testing.assert_allclose(y, expected, atol=1e-4)
    for (m0, v0, n0), (m1, v1, n1) in zip(before, _stored(layer)):
        np.testing.assert_array_equal(m0, m1)
        np.testing.assert_array_equal(v0, v1)
        assert n0 == n1 == 0.0


@pytest.mark.parametrize("width", [1.0, 0.5])
def test_calibration_is_cumulative_average(rng, width):
    layer = _built_layer()
    _set_affine(layer)
    i = _widths().stat_index(width)
    # put junk in first: reset_statistics must clear it
    layer.moving_means[i].assign(np.full(C_AT[width], 7.0, "float32"))
    layer.moving_variances[i].assign(np.full(C_AT[width], 9.0, "float32"))
    layer.calibration_counts[i].assign(5.0)
    layer.reset_statistics()
    assert layer.calibrated(width) == 0
    np.testing.assert_array_equal(layer.moving_means[i].numpy(), 0.0)
    np.testing.assert_array_equal(layer.moving_variances[i].numpy(), 1.0)

    batches = _batches(rng, C_AT[width])
    for x in batches:
        layer(x, width=width, training=True, calibrate=True)
    assert layer.calibrated(width) == 3
    batch_means = np.stack([x.mean(0) for x in batches])
    batch_vars = np.stack([x.var(0) for x in batches])  # biased
    np.testing.assert_allclose(
        layer.moving_means[i].numpy(), batch_means.mean(0), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        layer.moving_variances[i].numpy(), batch_vars.mean(0), rtol=1e-5
    )
    # not the unbiased variance, not the variance of the pooled batches
    pooled = np.concatenate(batches).var(0)
    assert np.abs(layer.moving_variances[i].numpy() - pooled).max() > 0.5
    # other widths untouched
    for j, w in enumerate(STAT_WIDTHS):
        if w != width:
            assert layer.calibrated(w) == 0
            np.testing.assert_array_equal(layer.moving_means[j].numpy(), 0.0)
            np.testing.assert_array_equal(layer.moving_variances[j].numpy(), 1.0)


def test_calibrated_inference_formula(rng):
    layer = _built_layer()
    gamma, beta = _set_affine(layer)
    layer.reset_statistics()
    batches = _batches(rng, 4)
    for x in batches:
        layer(x, width=0.5, training=True, calibrate=True)
    mean = np.stack([x.mean(0) for x in batches]).mean(0)
    var = np.stack([x.var(0) for x in batches]).mean(0)
    x = rng.normal(size=(5, 4)).astype("float32")
    np.testing.assert_allclose(
        _np(layer(x, width=0.5, training=False)),
        _normalize(x, mean, var, gamma[:4], beta[:4]),
        rtol=1e-4, atol=1e-4,
    )


def test_calibration_of_images(rng):
    layer = _built_layer(shape=(None, 3, 3, CHANNELS))
    layer.reset_statistics()
    batches = _batches(rng, 4, shape=(2, 3, 3))
    for x in batches:
        layer(x, width=0.5, training=True, calibrate=True)
    i = _widths().stat_index(0.5)
    np.testing.assert_allclose(
        layer.moving_means[i].numpy(),
        np.mean([x.mean((0, 1, 2)) for x in batches], axis=0),
        rtol=1e-5, atol=1e-5,
    )
    np.testing.assert_allclose(
        layer.moving_variances[i].numpy(),
        np.mean([x.var((0, 1, 2)) for x in batches], axis=0),
        rtol=1e-5,
    )


def test_calibration_inside_tf_function(rng):
    layer = _built_layer()
    layer.reset_statistics()

    @tf.function
    def step(x):
        return layer(x, width=0.5, training=True, calibrate=True)

    batches = _batches(rng, 4)
    for x in batches:
        step(tf.constant(x))
    assert layer.calibrated(0.5) == 3
    i = _widths().stat_index(0.5)
    np.testing.assert_allclose(
        layer.moving_means[i].numpy(),
        np.mean([x.mean(0) for x in batches], axis=0),
        rtol=1e-5, atol=1e-5,
    )
    np.testing.assert_allclose(
        layer.moving_variances[i].numpy(),
        np.mean([x.var(0) for x in batches], axis=0),
        rtol=1e-5,
    )


def test_reset_statistics_of_some_widths(rng):
    layer = _built_layer()
    for w in (1.0, 0.5):
        layer(rng.normal(size=(8, C_AT[w])).astype("float32") + 4.0,
              width=w, training=True, calibrate=True)
    assert layer.calibrated(1.0) == 1 and layer.calibrated(0.5) == 1
    layer.reset_statistics([0.5])
    assert layer.calibrated(0.5) == 0
    assert layer.calibrated(1.0) == 1
    assert layer.moving_means[0].numpy().mean() > 3.0
    np.testing.assert_array_equal(layer.moving_means[2].numpy(), 0.0)


def test_inference_at_width_without_statistics_raises(rng):
    layer = _built_layer()
    x = rng.normal(size=(4, C_AT[0.6])).astype("float32")
    # training mode is fine at any width of the range
    assert _np(layer(x, width=0.6, training=True)).shape == (4, 5)
    with pytest.raises(
        ValueError, match=r"Width 0\.6 has no stored BatchNorm statistics"
    ):
        layer(x, width=0.6)
    with pytest.raises(ValueError, match=r"has no stored BatchNorm statistics"):
        layer(x, width=0.6, training=True, calibrate=True)
    with pytest.raises(ValueError, match=r"has no stored BatchNorm statistics"):
        layer.calibrated(0.6)


@pytest.mark.parametrize("width", STAT_WIDTHS)
def test_slice_channels_false(rng, width):
    layer = _built_layer(slice_channels=False)
    assert layer.channels_at(width) == CHANNELS
    i = _widths().stat_index(width)
    assert tuple(layer.moving_means[i].shape) == (CHANNELS,)
    gamma, beta = _set_affine(layer)
    x = rng.normal(size=(8, CHANNELS)).astype("float32")
    y = _np(layer(x, width=width, training=True))
    np.testing.assert_allclose(
        y, _normalize(x, x.mean(0), x.var(0), gamma, beta), atol=1e-4
    )


def test_list_widths_supported(rng):
    layer = SlimBatchNormalization([1.0, 0.5], input_channels=CHANNELS)
    layer.build((None, CHANNELS))
    assert [tuple(m.shape) for m in layer.moving_means] == [(8,), (4,)]


def _calibrated_layer(rng, shape=(None, CHANNELS)):
    layer = _built_layer(shape=shape)
    _set_affine(layer)
    layer.reset_statistics()
    for w in STAT_WIDTHS:
        for x in _batches(rng, C_AT[w], shape=tuple(shape[1:-1]) or (8,)):
            if len(shape) > 2:
                x = x.reshape((1,) + x.shape)
            layer(x, width=w, training=True, calibrate=True)
    return layer


@pytest.mark.parametrize("width", STAT_WIDTHS)
def test_to_keras_layer_default_rank_two(rng, width):
    layer = _calibrated_layer(rng)
    plain = layer.to_keras_layer(width)
    assert type(plain) is keras.layers.BatchNormalization
    c = C_AT[width]
    i = _widths().stat_index(width)
    np.testing.assert_array_equal(plain.gamma.numpy(), layer.gamma.numpy()[:c])
    np.testing.assert_array_equal(plain.beta.numpy(), layer.beta.numpy()[:c])
    np.testing.assert_array_equal(
        plain.moving_mean.numpy(), layer.moving_means[i].numpy()
    )
    np.testing.assert_array_equal(
        plain.moving_variance.numpy(), layer.moving_variances[i].numpy()
    )
    x = rng.normal(size=(5, c)).astype("float32")
    np.testing.assert_allclose(
        _np(plain(x, training=False)), _np(layer(x, width=width)), atol=1e-5
    )


@pytest.mark.parametrize("width", STAT_WIDTHS)
def test_to_keras_layer_with_image_input_shape(rng, width):
    layer = _calibrated_layer(rng, shape=(None, 3, 3, CHANNELS))
    c = C_AT[width]
    plain = layer.to_keras_layer(width, input_shape=(None, 3, 3, c))
    x = rng.normal(size=(2, 3, 3, c)).astype("float32")
    np.testing.assert_allclose(
        _np(plain(x, training=False)), _np(layer(x, width=width)), atol=1e-5
    )


def test_to_keras_layer_refuses_width_without_statistics():
    layer = _built_layer()
    with pytest.raises(ValueError, match=r"no stored BatchNorm statistics"):
        layer.to_keras_layer(0.6)


def test_config_round_trip(rng):
    layer = _calibrated_layer(rng)
    config = layer.get_config()
    clone = SlimBatchNormalization.from_config(config)
    assert clone.get_config() == config
    assert clone.widths == layer.widths
    clone.build((None, CHANNELS))
    clone.set_weights(layer.get_weights())
    for w in STAT_WIDTHS:
        x = rng.normal(size=(3, C_AT[w])).astype("float32")
        np.testing.assert_array_equal(
            _np(clone(x, width=w)), _np(layer(x, width=w))
        )
        assert clone.calibrated(w) == 3


def test_slim_layer_contract(rng, tmp_path):
    # Slicing, gradient bands, config and .keras round trips, errors, at
    # every width with statistics.
    layer = _calibrated_layer(rng)
    run_slim_layer_test(
        layer,
        {w: rng.normal(size=(5, C_AT[w])).astype("float32")
         for w in STAT_WIDTHS},
        keras.layers.BatchNormalization, (None, CHANNELS), tmp_path,
        unknown_width=0.1, unknown_message=r"Width 0\.1 is outside",
        bad_rank_input=np.zeros((8,), "float32"),
        rank_message=r"rank >= 2",
    )
