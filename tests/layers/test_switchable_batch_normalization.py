"""Tests of SwitchableBatchNormalization: private BN state for each width."""

import keras
import numpy as np
import pytest

from keras_slim.layers import SwitchableBatchNormalization
from tests.layers._contract import run_slim_layer_test
from keras_slim.width import Widths

WIDTHS = [1.0, 0.75, 0.5, 0.25]
CHANNELS = 8
C_AT = {1.0: 8, 0.75: 6, 0.5: 4, 0.25: 2}  # divisor 1
EPS = 1e-5
MOMENTUM = 0.9


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _built_layer(**kwargs):
    kwargs.setdefault("widths", WIDTHS)
    kwargs.setdefault("input_channels", CHANNELS)
    layer = SwitchableBatchNormalization(**kwargs)
    layer.build((None, CHANNELS))
    return layer


def _randomize_state(layer, rng):
    """Distinct gamma, beta, moving mean and variance for every width."""
    state = {}
    for w in WIDTHS:
        norm = layer.norm_at(w)
        c = norm.moving_mean.shape[0]
        values = [
            rng.uniform(0.5, 2.0, size=c).astype("float32"),  # gamma
            rng.normal(size=c).astype("float32"),  # beta
            rng.normal(size=c).astype("float32"),  # moving mean
            rng.uniform(0.5, 3.0, size=c).astype("float32"),  # moving var
        ]
        norm.set_weights(values)
        state[w] = values
    return state


def _normalize(x, mean, var, gamma, beta, eps=EPS):
    return (x - mean) / np.sqrt(var + eps) * gamma + beta


def _stats(layer):
    return {
        w: (
            layer.norm_at(w).moving_mean.numpy().copy(),
            layer.norm_at(w).moving_variance.numpy().copy(),
        )
        for w in WIDTHS
    }


@pytest.mark.parametrize("width", WIDTHS)
def test_each_width_has_its_own_state_of_the_right_size(width):
    layer = _built_layer()
    norm = layer.norm_at(width)
    c = C_AT[width]
    assert layer.channels_at(width) == c
    assert isinstance(norm, keras.layers.BatchNormalization)
    assert tuple(norm.moving_mean.shape) == (c,)
    assert tuple(norm.moving_variance.shape) == (c,)
    assert tuple(norm.gamma.shape) == (c,)
    assert tuple(norm.beta.shape) == (c,)


def test_norms_are_distinct_and_all_tracked():
    layer = _built_layer()
    norms = [layer.norm_at(w) for w in WIDTHS]
    assert len({id(n) for n in norms}) == 4
    # 4 widths x (gamma, beta, moving mean, moving variance)
    assert len(layer.weights) == 16
    assert len(layer.trainable_weights) == 8
    assert sum(int(np.prod(v.shape)) for v in layer.weights) == 4 * (8 + 6 + 4 + 2)
    assert layer.norm_at(0.5000000001) is layer.norm_at(0.5)


def test_training_at_half_updates_only_half_statistics(rng):
    layer = _built_layer()
    _randomize_state(layer, rng)
    before = _stats(layer)
    x = (rng.normal(size=(16, 4)) * 2.0 + 3.0).astype("float32")
    y = _np(layer(x, width=0.5, training=True))
    after = _stats(layer)
    for w in (1.0, 0.75, 0.25):
        np.testing.assert_array_equal(after[w][0], before[w][0])
        np.testing.assert_array_equal(after[w][1], before[w][1])
    batch_mean, batch_var = x.mean(axis=0), x.var(axis=0)
    np.testing.assert_allclose(
        after[0.5][0],
        MOMENTUM * before[0.5][0] + (1 - MOMENTUM) * batch_mean,
        rtol=1e-5, atol=1e-6,
    )
    np.testing.assert_allclose(
        after[0.5][1],
        MOMENTUM * before[0.5][1] + (1 - MOMENTUM) * batch_var,
        rtol=1e-4, atol=1e-6,
    )
    assert not np.allclose(after[0.5][0], before[0.5][0])
    # training mode normalizes with the batch statistics
    norm = layer.norm_at(0.5)
    expected = _normalize(
        x, batch_mean, batch_var, norm.gamma.numpy(), norm.beta.numpy()
    )
    np.testing.assert_allclose(y, expected, atol=1e-4)


def test_calibrate_flag_updates_statistics_like_training(rng):
    layer = _built_layer()
    before = _stats(layer)
    x = (rng.normal(size=(16, 2)) + 5.0).astype("float32")
    layer(x, width=0.25, training=False, calibrate=True)
    after = _stats(layer)
    np.testing.assert_allclose(
        after[0.25][0], (1 - MOMENTUM) * x.mean(axis=0), rtol=1e-5
    )
    for w in (1.0, 0.75, 0.5):
        np.testing.assert_array_equal(after[w][0], before[w][0])


def test_inference_does_not_update_statistics(rng):
    layer = _built_layer()
    _randomize_state(layer, rng)
    before = _stats(layer)
    layer(rng.normal(size=(16, 4)).astype("float32") + 3.0, width=0.5)
    after = _stats(layer)
    for w in WIDTHS:
        np.testing.assert_array_equal(after[w][0], before[w][0])
        np.testing.assert_array_equal(after[w][1], before[w][1])


@pytest.mark.parametrize("width", WIDTHS)
def test_inference_formula_uses_the_width_state(rng, width):
    layer = _built_layer()
    state = _randomize_state(layer, rng)
    c = C_AT[width]
    x = rng.normal(size=(5, c)).astype("float32")
    y = _np(layer(x, width=width, training=False))
    gamma, beta, mean, var = state[width]
    np.testing.assert_allclose(y, _normalize(x, mean, var, gamma, beta), atol=1e-5)


@pytest.mark.parametrize("width", WIDTHS)
def test_inference_formula_on_images(rng, width):
    # built on 4-D (NHWC) inputs: normalized along the channels
    layer = SwitchableBatchNormalization(WIDTHS, input_channels=CHANNELS)
    layer.build((None, 3, 3, CHANNELS))
    state = _randomize_state(layer, rng)
    c = C_AT[width]
    x = rng.normal(size=(2, 3, 3, c)).astype("float32")
    y = _np(layer(x, width=width))
    gamma, beta, mean, var = state[width]
    np.testing.assert_allclose(y, _normalize(x, mean, var, gamma, beta), atol=1e-5)


def test_widths_use_different_states(rng):
    layer = _built_layer(slice_channels=False)
    _randomize_state(layer, rng)
    x = rng.normal(size=(5, CHANNELS)).astype("float32")
    y_full = _np(layer(x, width=1.0))
    y_half = _np(layer(x, width=0.5))
    assert np.abs(y_full - y_half).max() > 1e-2


def test_range_widths_refused():
    with pytest.raises(
        ValueError, match=r"needs a fixed width list.*SlimBatchNormalization"
    ):
        SwitchableBatchNormalization(Widths(min_width=0.25, max_width=1.0))


@pytest.mark.parametrize("width", WIDTHS)
def test_slice_channels_false_keeps_full_channels(rng, width):
    layer = _built_layer(slice_channels=False)
    assert layer.channels_at(width) == CHANNELS
    assert tuple(layer.norm_at(width).moving_mean.shape) == (CHANNELS,)
    assert tuple(layer.norm_at(width).gamma.shape) == (CHANNELS,)
    x = rng.normal(size=(4, CHANNELS)).astype("float32")
    assert _np(layer(x, width=width, training=True)).shape == (4, CHANNELS)
    if width != 1.0:
        with pytest.raises(ValueError, match=rf"expects {CHANNELS} input channels"):
            layer(x[:, : C_AT[width]], width=width)


def test_expansion_channels():
    layer = SwitchableBatchNormalization(
        Widths(WIDTHS, divisor=8), expansion=6, input_channels=144
    )
    layer.build((None, 144))
    assert tuple(layer.norm_at(0.5).moving_mean.shape) == (96,)
    assert tuple(layer.norm_at(0.25).moving_mean.shape) == (48,)
    assert tuple(layer.norm_at(1.0).moving_mean.shape) == (144,)


def test_builds_from_first_input_when_channels_not_given(rng):
    layer = SwitchableBatchNormalization(WIDTHS)
    layer(rng.normal(size=(3, 2, 2, 8)).astype("float32"), width=1.0)
    assert layer.input_channels == 8
    assert tuple(layer.norm_at(0.75).moving_mean.shape) == (6,)


@pytest.mark.parametrize("width", WIDTHS)
def test_to_keras_layer_copies_the_state(rng, width):
    layer = _built_layer()
    state = _randomize_state(layer, rng)
    plain = layer.to_keras_layer(width)
    assert type(plain) is keras.layers.BatchNormalization
    assert plain.built
    for got, want in zip(plain.get_weights(), state[width]):
        np.testing.assert_array_equal(got, want)
    # a copy: later changes to the layer do not reach it
    c = C_AT[width]
    layer.norm_at(width).moving_mean.assign(np.zeros(c, "float32"))
    np.testing.assert_array_equal(plain.moving_mean.numpy(), state[width][2])


@pytest.mark.parametrize("width", WIDTHS)
def test_to_keras_layer_default_rank_two_output(rng, width):
    # documented default: built for rank-2 inputs (batch, channels)
    layer = _built_layer()
    _randomize_state(layer, rng)
    plain = layer.to_keras_layer(width)
    x = rng.normal(size=(5, C_AT[width])).astype("float32")
    np.testing.assert_allclose(
        _np(plain(x, training=False)), _np(layer(x, width=width)), atol=1e-6
    )


@pytest.mark.parametrize("width", WIDTHS)
def test_to_keras_layer_with_image_input_shape(rng, width):
    layer = SwitchableBatchNormalization(WIDTHS, input_channels=CHANNELS)
    layer.build((None, 3, 3, CHANNELS))
    state = _randomize_state(layer, rng)
    c = C_AT[width]
    plain = layer.to_keras_layer(width, input_shape=(None, 3, 3, c))
    for got, want in zip(plain.get_weights(), state[width]):
        np.testing.assert_array_equal(got, want)
    x = rng.normal(size=(2, 3, 3, c)).astype("float32")
    np.testing.assert_allclose(
        _np(plain(x, training=False)), _np(layer(x, width=width)), atol=1e-6
    )


def test_slim_layer_contract(rng, tmp_path):
    # Slicing, gradient bands, config and .keras round trips, errors.
    layer = _built_layer(momentum=0.8, epsilon=1e-3)
    _randomize_state(layer, rng)
    run_slim_layer_test(
        layer,
        {w: rng.normal(size=(5, C_AT[w])).astype("float32") for w in WIDTHS},
        keras.layers.BatchNormalization, (None, CHANNELS), tmp_path,
        unknown_width=0.6, unknown_message=r"Width 0\.6 is not one of",
        bad_rank_input=np.zeros((8,), "float32"),
        rank_message=r"rank >= 2",
    )


def test_config_round_trip_without_sliced_channels(rng):
    layer = _built_layer(momentum=0.8, epsilon=1e-3, slice_channels=False)
    config = layer.get_config()
    clone = SwitchableBatchNormalization.from_config(config)
    assert clone.get_config() == config
    clone.build((None, CHANNELS))
    _randomize_state(layer, rng)
    clone.set_weights(layer.get_weights())
    x = rng.normal(size=(3, CHANNELS)).astype("float32")
    for w in WIDTHS:
        np.testing.assert_array_equal(_np(clone(x, width=w)), _np(layer(x, width=w)))
