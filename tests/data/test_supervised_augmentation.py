"""SupervisedAugmentation: one random-resized crop and flip per image."""

import numpy as np
import pytest

from keras_slim.data import SupervisedAugmentation


def _images():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (6, 12, 12, 3), dtype=np.uint8)


def test_crops_are_seeded_in_unit_range_and_labels_untouched():
    augment = SupervisedAugmentation(image_size=8, crop_scale=(0.3, 1.0))
    labels = np.arange(6)
    crops, same = augment((_images(), labels), seed=[1, 2])
    again, _ = augment((_images(), labels), seed=[1, 2])
    other, _ = augment((_images(), labels), seed=[1, 3])
    assert crops.shape == (6, 8, 8, 3)
    np.testing.assert_array_equal(same, labels)
    np.testing.assert_array_equal(crops.numpy(), again.numpy())
    assert not np.allclose(crops.numpy(), other.numpy())
    assert 0.0 <= crops.numpy().min() and crops.numpy().max() <= 1.0


def test_a_full_crop_is_the_image_and_a_flip_mirrors_it():
    images = _images()
    whole = SupervisedAugmentation(12, crop_scale=(1.0, 1.0),
                                   crop_ratio=(1.0, 1.0), flip_probability=0)
    np.testing.assert_allclose(whole(images, seed=[0, 0]).numpy(),
                               images / 255.0, atol=1e-6)
    mirrored = SupervisedAugmentation(12, crop_scale=(1.0, 1.0),
                                      crop_ratio=(1.0, 1.0),
                                      flip_probability=1)
    np.testing.assert_allclose(mirrored(images, seed=[0, 0]).numpy(),
                               images[:, :, ::-1] / 255.0, atol=1e-6)


def test_config_round_trip_and_bad_arguments():
    augment = SupervisedAugmentation((8, 10), crop_scale=(0.2, 0.9))
    again = SupervisedAugmentation.from_config(augment.get_config())
    assert again.get_config() == augment.get_config()
    with pytest.raises(ValueError, match="image_size"):
        SupervisedAugmentation(0)
    with pytest.raises(ValueError, match="crop_scale"):
        SupervisedAugmentation(8, crop_scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="flip_probability"):
        SupervisedAugmentation(8, flip_probability=2)
    with pytest.raises(ValueError, match=r"\(B, H, W, C\)"):
        SupervisedAugmentation(8)(np.zeros((12, 12, 3), "uint8"), seed=[0, 0])
