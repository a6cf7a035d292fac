import importlib

import numpy as np
import pytest
import tensorflow as tf

from keras_slim.evaluation import extract_features
from tests.evaluation._data import range_backbone
from tests.methods._helpers import tiny_backbone

compiled = importlib.import_module("keras_slim.evaluation._compiled")


def test_features_are_the_inference_forward_at_each_width(rng):
    backbone = tiny_backbone(widths=(1.0, 0.5, 0.25))
    x = rng.random((10, 8, 8, 3), dtype="float32")
    for width in (1.0, 0.25, 0.5, 1.0):  # switching back and forth
        features = extract_features(backbone, x, width, batch_size=4)
        assert features.dtype == np.float32
        assert features.shape == (10, backbone.feature_dim(width))
        expected = backbone(x, width=width, training=False)
        np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(
        extract_features(backbone, x), extract_features(backbone, x, 1.0)
    )


def test_one_trace_per_width_whatever_the_batch_and_image_size(rng):
    backbone = tiny_backbone()
    for count, size in [(10, 8), (3, 8), (5, 16), (10, 8)]:
        x = rng.random((count, size, size, 3))  # float64 is converted
        for width in (1.0, 0.5):
            extract_features(backbone, x, width, batch_size=4)
    for width in (1.0, 0.5):
        function = compiled.forward_function(backbone, width)
        assert function.experimental_get_tracing_count() == 1


def test_datasets_of_images_or_of_labeled_batches(rng):
    backbone = tiny_backbone()
    x = rng.random((9, 8, 8, 3), dtype="float32")
    expected = extract_features(backbone, x, 0.5)
    images = tf.data.Dataset.from_tensor_slices(x).batch(4)
    labeled = tf.data.Dataset.from_tensor_slices((x, np.arange(9))).batch(4)
    for dataset in (images, labeled):
        np.testing.assert_allclose(
            extract_features(backbone, dataset, 0.5), expected, atol=1e-6
        )


def test_a_range_needs_calibrated_stat_widths(rng):
    backbone = range_backbone()
    x = rng.random((4, 8, 8, 3), dtype="float32")
    with pytest.raises(ValueError, match="calibrate_batch_norm"):
        extract_features(backbone, x, 0.5)
    with pytest.raises(ValueError, match=r"stat_widths.*\[1.0, 0.5\]"):
        extract_features(backbone, x, 0.75)


@pytest.fixture(scope="module")
def backbone():
    return tiny_backbone()


@pytest.mark.parametrize(
    "images,message",
    [
        (np.zeros((8, 8, 3)), r"\(N, height, width, channels\)"),
        (np.zeros((0, 8, 8, 3)), "empty"),
        (np.zeros((2, 8, 8, 1)), "1-channel images"),
        (np.full((2, 8, 8, 3), "a"), "real numbers"),
        (tf.data.Dataset.from_tensor_slices(np.zeros((2, 8, 8, 3))),
         "Batch the dataset"),
        (tf.data.Dataset.from_tensor_slices(
            {"image": np.zeros((2, 8, 8, 3))}).batch(2), "dicts"),
        (tf.data.Dataset.from_tensor_slices(
            np.zeros((2, 8, 8, 3))).batch(2).take(0), "empty"),
    ],
)
def test_bad_images(backbone, images, message):
    with pytest.raises(ValueError, match=message):
        extract_features(backbone, images)


def test_bad_backbone_width_and_batch_size(backbone):
    x = np.zeros((2, 8, 8, 3))
    with pytest.raises(ValueError, match="model.backbone"):
        extract_features(tf.keras.layers.Dense(2), x)
    with pytest.raises(ValueError, match="not one of this network's widths"):
        extract_features(backbone, x, 0.3)
    with pytest.raises(ValueError, match="`batch_size`"):
        extract_features(backbone, x, batch_size=0)

