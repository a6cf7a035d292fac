"""TwoViewAugmentation: shapes, seeding, per-image randomness, each op."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_slim.data import TwoViewAugmentation
from keras_slim.data import _augment_ops
from keras_slim.data.two_view_augmentation import PRESETS

SEED = tf.constant([3, 7])

# Every op off and a full-image crop: the views are the input, rescaled.
IDENTITY = dict(crop_scale=(1.0, 1.0), crop_ratio=(1.0, 1.0),
                flip_probability=0.0, jitter_probability=0.0,
                grayscale_probability=0.0, blur_probability=0.0,
                solarize_probability=0.0)


def images(batch=6, size=16, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (batch, size, size, channels), np.uint8)


def views(images_, seed=SEED, **kwargs):
    size = kwargs.pop("image_size", images_.shape[1])
    augment = TwoViewAugmentation(size, **kwargs)
    return [v.numpy() for v in augment(images_, seed)]


@pytest.mark.parametrize("preset", sorted(PRESETS))
@pytest.mark.parametrize("channels", [1, 3])
def test_presets_shapes_dtype_range(preset, channels):
    augment = TwoViewAugmentation.from_preset(preset, image_size=12)
    view1, view2 = augment(images(4, 20, channels), SEED)
    for view in (view1, view2):
        assert view.shape == (4, 12, 12, channels)
        assert view.dtype == tf.float32
        assert 0.0 <= float(tf.reduce_min(view))
        assert float(tf.reduce_max(view)) <= 1.0


def test_float_input_and_rectangular_output():
    x = images(3, 16).astype("float32") / 255.0
    augment = TwoViewAugmentation((8, 12))
    view1, _ = augment(x, SEED)
    assert view1.shape == (3, 8, 12, 3)
    identity = views(x, **IDENTITY)[0]
    np.testing.assert_allclose(identity, x, atol=1e-6)


def test_same_seed_same_views_other_seed_other_views():
    x = images()
    a1, a2 = views(x, seed=tf.constant([1, 2]))
    b1, b2 = views(x, seed=tf.constant([1, 2]))
    c1, _ = views(x, seed=tf.constant([1, 3]))
    np.testing.assert_array_equal(a1, b1)
    np.testing.assert_array_equal(a2, b2)
    assert np.abs(a1 - c1).mean() > 0.05
    assert np.abs(a1 - a2).mean() > 0.05  # the two views differ


def test_each_image_draws_its_own_crop():
    one = images(1, 32)
    batch = np.repeat(one, 8, axis=0)
    view1, _ = views(batch, image_size=16, crop_scale=(0.08, 1.0),
                     **{k: v for k, v in IDENTITY.items() if "crop" not in k})
    distinct = {view1[i].tobytes() for i in range(8)}
    assert len(distinct) == 8


def test_all_ops_off_is_identity():
    x = images()
    view1, view2 = views(x, **IDENTITY)
    np.testing.assert_allclose(view1, x / 255.0, atol=1e-6)
    np.testing.assert_allclose(view2, x / 255.0, atol=1e-6)


def test_flip_probability_one_mirrors():
    x = images()
    flipped = views(x, **dict(IDENTITY, flip_probability=1.0))[0]
    np.testing.assert_allclose(flipped, x[:, :, ::-1] / 255.0, atol=1e-6)


def test_grayscale_probability_one_gives_equal_channels_of_luma():
    x = images()
    grey = views(x, **dict(IDENTITY, grayscale_probability=1.0))[0]
    np.testing.assert_allclose(grey[..., 0], grey[..., 1], atol=1e-7)
    np.testing.assert_allclose(grey[..., 0], grey[..., 2], atol=1e-7)
    luma = (x / 255.0) @ np.array([0.299, 0.587, 0.114])
    np.testing.assert_allclose(grey[..., 0], luma, atol=1e-5)


def test_solarize_probability_one_inverts_bright_pixels():
    x = images()
    out = views(x, **dict(IDENTITY, solarize_probability=1.0))[0]
    scaled = x / 255.0
    np.testing.assert_allclose(
        out, np.where(scaled >= 0.5, 1.0 - scaled, scaled), atol=1e-6)


def test_brightness_jitter_scales_each_image_by_its_own_factor():
    # Values 50..150: no factor in [0.6, 1.4] clips them.
    x = np.random.default_rng(0).integers(50, 151, (6, 8, 8, 3), np.uint8)
    out = views(x, **dict(IDENTITY, jitter_probability=1.0, brightness=0.4,
                          contrast=0.0, saturation=0.0, hue=0.0))[0]
    factors = out[:, 0, 0, 0] / (x[:, 0, 0, 0] / 255.0)
    np.testing.assert_allclose(out, factors[:, None, None, None] * x / 255.0,
                               rtol=1e-5)
    assert ((factors >= 0.6 - 1e-6) & (factors <= 1.4 + 1e-6)).all()
    assert len(np.unique(np.round(factors, 5))) == 6


def test_full_jitter_changes_colours_and_keeps_grey_inputs_grey():
    x = images()
    jitter = dict(IDENTITY, jitter_probability=1.0, brightness=0.8,
                  contrast=0.8, saturation=0.8, hue=0.2)
    out = views(x, **jitter)[0]
    assert np.abs(out - x / 255.0).mean() > 0.03
    grey = images(channels=1)
    grey_out = views(grey, **jitter)[0]
    assert grey_out.shape == grey.shape
    assert np.abs(grey_out - grey / 255.0).mean() > 0.01


def test_jitter_runs_in_a_random_order_per_image_with_the_same_factors():
    """torchvision's ColorJitter: one permutation of the adjustments per
    image; `jitter_order="fixed"` keeps brightness -> contrast -> ..."""
    x = tf.constant(images(batch=32), tf.float32) / 255.0
    seed = tf.constant([5, 9])
    strengths = dict(brightness=0.8, contrast=0.8, saturation=0.0, hue=0.0)
    brighten, contrast = _augment_ops._jitter_adjustments(
        x, tf.random.experimental.stateless_split(seed, 4), **strengths)
    in_order = contrast(brighten(x)).numpy()
    reverse = brighten(contrast(x)).numpy()
    fixed = _augment_ops.color_jitter(x, seed, random_order=False,
                                      **strengths).numpy()
    np.testing.assert_allclose(fixed, in_order, atol=1e-6)
    mixed = _augment_ops.color_jitter(x, seed, **strengths).numpy()
    first = np.all(np.isclose(mixed, in_order, atol=1e-6), axis=(1, 2, 3))
    second = np.all(np.isclose(mixed, reverse, atol=1e-6), axis=(1, 2, 3))
    differs = ~np.all(np.isclose(in_order, reverse, atol=1e-6), axis=(1, 2, 3))
    assert np.all(first | second)
    assert (first & differs).sum() >= 8 and (second & differs).sum() >= 8
    with pytest.raises(ValueError, match="jitter_order"):
        TwoViewAugmentation(8, jitter_order="shuffled")
    assert TwoViewAugmentation(8).get_config()["jitter_order"] == "random"


def test_random_order_with_hue_composes_each_images_own_permutation():
    # The hue shift runs once for the batch, between each image's blends:
    # the same as applying the four adjustments in the image's order.
    x = tf.constant(images(batch=8), tf.float32) / 255.0
    seed = tf.constant([2, 4])
    strengths = dict(brightness=0.6, contrast=0.6, saturation=0.6, hue=0.2)
    adjustments = _augment_ops._jitter_adjustments(
        x, tf.random.experimental.stateless_split(seed, 4), **strengths)
    scores = _augment_ops.uniform(
        tf.random.experimental.stateless_fold_in(seed, 4), [8, 4], 0.0, 1.0)
    orders = np.argsort(scores.numpy(), axis=1, kind="stable")
    out = _augment_ops.color_jitter(x, seed, **strengths).numpy()
    for i, order in enumerate(orders):
        y = x
        for index in order:
            y = adjustments[index](y)
        np.testing.assert_allclose(out[i], y[i].numpy(), atol=1e-5)
    assert len({tuple(o) for o in orders}) > 1


def test_hue_shift_keeps_luma_range_and_changes_hue():
    x = images()
    out = views(x, **dict(IDENTITY, jitter_probability=1.0, brightness=0.0,
                          contrast=0.0, saturation=0.0, hue=0.5))[0]
    hsv_in = tf.image.rgb_to_hsv(x / 255.0).numpy()
    hsv_out = tf.image.rgb_to_hsv(out).numpy()
    # A hue shift keeps value and saturation, and moves hue per image.
    np.testing.assert_allclose(hsv_out[..., 2], hsv_in[..., 2], atol=1e-5)
    np.testing.assert_allclose(hsv_out[..., 1], hsv_in[..., 1], atol=1e-4)
    shift = (hsv_out[..., 0] - hsv_in[..., 0]) % 1.0
    per_image = np.median(shift.reshape(6, -1), axis=1)
    assert np.ptp(per_image) > 0.05


def test_blur_matches_a_reference_gaussian():
    x = images(3, 16)
    out = views(x, **dict(IDENTITY, blur_probability=1.0,
                          blur_sigma=(1.0, 1.0), blur_kernel_fraction=0.35))[0]
    # kernel 5 (0.35 * 16 = 5.6 -> radius 2), reflect padding.
    taps = np.exp(-np.arange(-2, 3) ** 2 / 2.0)
    taps /= taps.sum()
    padded = np.pad(x / 255.0, [(0, 0), (2, 2), (2, 2), (0, 0)],
                    mode="reflect")
    rows = sum(taps[i] * padded[:, i:i + 16] for i in range(5))
    expected = sum(taps[i] * rows[:, :, i:i + 16] for i in range(5))
    np.testing.assert_allclose(out, expected, atol=1e-5)


def test_blur_sigma_is_drawn_per_image():
    x = np.repeat(images(1, 16), 6, axis=0)
    out = views(x, **dict(IDENTITY, blur_probability=1.0))[0]
    assert len({out[i].tobytes() for i in range(6)}) == 6
    assert _augment_ops.blur_kernel_size(224, 0.1) == 23
    assert _augment_ops.blur_kernel_size(32, 0.1) == 3


def test_probability_zero_never_and_half_sometimes_applies():
    x = images(64, 8)
    base = views(x, **IDENTITY)[0]
    half = views(x, **dict(IDENTITY, solarize_probability=0.5))[0]
    changed = np.abs(half - base).reshape(64, -1).max(axis=1) > 0
    assert 16 < changed.sum() < 48


def test_byol_preset_is_asymmetric():
    augment = TwoViewAugmentation.from_preset("byol", 16)
    assert augment.blur_probability == (1.0, 0.1)
    assert augment.solarize_probability == (0.0, 0.2)
    assert augment.saturation == 0.2
    cifar = TwoViewAugmentation.from_preset("cifar", 32, hue=0.0)
    assert cifar.blur_probability == (0.0, 0.0) and cifar.hue == 0.0
    assert cifar.crop_scale == (0.2, 1.0)
    assert TwoViewAugmentation.from_preset("small", 32).grayscale_probability \
        == 0.5


def test_crop_boxes_follow_scale_ratio_and_fallback():
    boxes = _augment_ops.crop_boxes(SEED, 2000, 64, 64, (0.08, 1.0),
                                    (0.75, 4 / 3), 10)
    top, left, h, w = (b.numpy() for b in boxes)
    area = h * w / 64**2
    assert area.min() >= 0.07 and area.max() <= 1.0
    assert 0.3 < np.median(area) < 0.7
    assert ((w / h > 0.7) & (w / h < 1.4)).all()
    assert (top + h <= 64).all() and (left + w <= 64).all()
    assert top.min() >= 0 and left.min() >= 0
    # A ratio no box of full area can meet: the central-crop fallback.
    boxes = _augment_ops.crop_boxes(SEED, 50, 32, 32, (1.0, 1.0),
                                    (2.0, 3.0), 10)
    top, left, h, w = (b.numpy() for b in boxes)
    assert (h == 16).all() and (w == 32).all() and (left == 0).all()
    assert top.max() <= 16


def test_config_round_trip_through_keras_serialization():
    augment = TwoViewAugmentation.from_preset("byol", (16, 12), hue=0.05)
    config = keras.saving.serialize_keras_object(augment)
    restored = keras.saving.deserialize_keras_object(config)
    assert isinstance(restored, TwoViewAugmentation)
    assert restored.get_config() == augment.get_config()
    x = images(2, 20)
    for a, b in zip(augment(x, SEED), restored(x, SEED)):
        np.testing.assert_array_equal(a.numpy(), b.numpy())


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="Unknown augmentation preset"):
        TwoViewAugmentation.from_preset("imagenet", 32)
    with pytest.raises(ValueError, match="blur_probability.*\\[0, 1\\]"):
        TwoViewAugmentation(32, blur_probability=1.5)
    with pytest.raises(ValueError, match="crop_scale"):
        TwoViewAugmentation(32, crop_scale=(0.0, 1.0))
    with pytest.raises(ValueError, match="hue"):
        TwoViewAugmentation(32, hue=0.7)
    with pytest.raises(ValueError, match="pair"):
        TwoViewAugmentation(32, solarize_probability=(0.1, 0.2, 0.3))
    augment = TwoViewAugmentation(8)
    with pytest.raises(ValueError, match="C 1 or 3"):
        augment(np.zeros((2, 8, 8, 2), np.uint8), SEED)
    with pytest.raises(ValueError, match="Batch the data set"):
        augment(np.zeros((8, 8, 3), np.uint8), SEED)
    with pytest.raises(ValueError, match="shape \\[2\\]"):
        augment(np.zeros((2, 8, 8, 3), np.uint8), tf.constant([1, 2, 3]))
