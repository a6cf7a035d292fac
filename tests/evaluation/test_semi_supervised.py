import importlib

import keras
import numpy as np
import pytest

from keras_slim.evaluation import fine_tune_semi_supervised
from keras_slim.evaluation import labeled_subset
from tests.evaluation._data import colour_images
from tests.evaluation._data import range_backbone
from tests.methods._helpers import tiny_backbone
from tests.methods._helpers import weights_of

semi_supervised = importlib.import_module(
    "keras_slim.evaluation.semi_supervised"
)


def test_subset_is_class_balanced_seeded_and_never_empty():
    # Imbalanced classes: 500, 300 and 200 examples.
    labels = np.random.default_rng(0).permutation(
        np.repeat([0, 1, 2], [500, 300, 200])
    )
    subset = labeled_subset(labels, 0.1, seed=3)
    assert np.bincount(labels[subset]).tolist() == [33, 33, 33]
    assert len(np.unique(subset)) == len(subset)
    np.testing.assert_array_equal(subset, labeled_subset(labels, 0.1, 3))
    assert not np.array_equal(subset, labeled_subset(labels, 0.1, 4))
    # 1% of 1000 over 3 classes rounds to 3 per class; 0.1% still keeps one.
    assert np.bincount(labels[labeled_subset(labels, 0.01)]).tolist() == [
        3, 3, 3]
    assert np.bincount(labels[labeled_subset(labels, 0.001)]).tolist() == [
        1, 1, 1]
    # A class smaller than its share gives all it has.
    small = np.array([0] * 50 + [1] * 2)
    assert np.bincount(small[labeled_subset(small, 0.5)]).tolist() == [13, 2]


def test_subset_bad_input():
    with pytest.raises(ValueError, match=r"`label_fraction` must be in"):
        labeled_subset([0, 1], 0.0)
    with pytest.raises(ValueError, match=r"`label_fraction` must be in"):
        labeled_subset([0, 1], 1.5)
    with pytest.raises(ValueError, match="Class 1 has no training example"):
        labeled_subset([0, 2, 2], 0.5)
    with pytest.raises(ValueError, match="out of range"):
        labeled_subset([0, 2, 2], 0.5, num_classes=2)


def test_fine_tuning_learns_and_leaves_the_backbone_untouched():
    x_train, y_train = colour_images(20, seed=0)
    x_test, y_test = colour_images(10, seed=1)
    backbone = tiny_backbone()
    before = weights_of(backbone)
    top1 = fine_tune_semi_supervised(
        backbone, 0.5, x_train, y_train, x_test, y_test, label_fraction=0.5,
        epochs=10, batch_size=16, learning_rate=0.01,
    )
    assert top1 >= 0.9  # 10 labels per class; chance is 1/3
    for a, b in zip(before, weights_of(backbone)):
        np.testing.assert_array_equal(a, b)


def test_short_runs_cap_the_batch_norm_momentum():
    model = keras.Sequential([keras.Input((4,)),
                              keras.layers.BatchNormalization(momentum=0.9)])
    semi_supervised._limit_batch_norm_memory(model, steps=1000)
    assert model.layers[0].momentum == 0.9
    semi_supervised._limit_batch_norm_memory(model, steps=20)
    # The statistics before fine-tuning keep 1% of the weight after 20 steps.
    assert model.layers[0].momentum ** 20 == pytest.approx(0.01)


def test_a_range_width_must_be_calibrated_and_hold_statistics():
    x, y = colour_images(4)
    backbone = range_backbone()
    with pytest.raises(ValueError, match="calibrate_batch_norm"):
        fine_tune_semi_supervised(backbone, 0.5, x, y, x, y, epochs=1)
    with pytest.raises(ValueError, match="stat_widths"):
        fine_tune_semi_supervised(backbone, 0.75, x, y, x, y, epochs=1)


@pytest.fixture(scope="module")
def backbone():
    return tiny_backbone()


@pytest.mark.parametrize(
    "change,message",
    [
        ({"label_fraction": 0}, "`label_fraction`"),
        ({"train_labels": np.zeros(3, int)}, "one label per image"),
        ({"test_images": np.zeros((12, 16, 16, 3))}, "differ in shape"),
        ({"epochs": 0}, "`epochs`"),
        ({"learning_rate": -1.0}, "`learning_rate`"),
        ({"width": 0.3}, "not one of this network's widths"),
        ({"num_classes": 2}, "out of range"),
    ],
)
def test_bad_input(backbone, change, message):
    x, y = colour_images(4)
    args = {"backbone": backbone, "width": 0.5, "train_images": x,
            "train_labels": y, "test_images": x, "test_labels": y}
    args.update(change)
    with pytest.raises(ValueError, match=message):
        fine_tune_semi_supervised(**args)

