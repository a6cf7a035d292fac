"""view_pairs / labeled_batches / steps_per_epoch: order, resume, shapes."""

import numpy as np
import pytest

from keras_slim.data import ImageData
from keras_slim.data import TwoViewAugmentation
from keras_slim.data import labeled_batches
from keras_slim.data import pipelines
from keras_slim.data import steps_per_epoch
from keras_slim.data import view_pairs


def toy_data(count=50, size=8, channels=3):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (count, size, size, channels), np.uint8)
    labels = np.arange(count) % 3
    return ImageData(images, labels, ["a", "b", "c"], name="toy")


def collect(dataset):
    return [tuple(t.numpy() for t in item) for item in dataset]


def index_rows(count, batch, seed=0, start_step=0, steps=None):
    per_epoch = count // batch
    ds = pipelines._index_batches(count, batch, per_epoch, seed, start_step,
                                  steps)
    return collect(ds)


def test_view_pairs_shapes_and_finite_steps():
    data = toy_data()
    augment = TwoViewAugmentation.from_preset("cifar", 6)
    batches = collect(view_pairs(data, augment, 16, steps=5))
    assert len(batches) == 5  # more than one epoch of 3 batches
    for view1, view2 in batches:
        assert view1.shape == view2.shape == (16, 6, 6, 3)
        assert view1.dtype == np.float32
    spec = view_pairs(data, augment, 16).element_spec
    assert spec[0].shape == (16, 6, 6, 3)  # static: Keras sees full shapes


def test_start_step_yields_exactly_the_batch_of_a_run_from_zero():
    data = toy_data()
    augment = TwoViewAugmentation.from_preset("simclr", 8)
    run = collect(view_pairs(data, augment, 16, seed=5, steps=8))
    for k in (1, 4):  # inside the first epoch, after an epoch boundary
        resumed = collect(view_pairs(data, augment, 16, seed=5,
                                     start_step=k, steps=8 - k))
        assert len(resumed) == 8 - k
        for a, b in zip(run[k:], resumed):
            np.testing.assert_array_equal(a[0], b[0])
            np.testing.assert_array_equal(a[1], b[1])
    infinite = view_pairs(data, augment, 16, seed=5, start_step=6)
    first = next(iter(infinite))
    np.testing.assert_array_equal(first[0].numpy(), run[6][0])
    other_seed = collect(view_pairs(data, augment, 16, seed=6, steps=1))
    assert np.abs(other_seed[0][0] - run[0][0]).mean() > 0.05


def test_each_epoch_is_a_permutation():
    rows = index_rows(48, 16, steps=9)  # 3 batches per epoch, 3 epochs
    assert [step for step, _ in rows] == list(range(9))
    epochs = [np.concatenate([r for _, r in rows[e * 3:(e + 1) * 3]])
              for e in range(3)]
    for order in epochs:
        np.testing.assert_array_equal(np.sort(order), np.arange(48))
    assert not np.array_equal(epochs[0], epochs[1])
    # With a remainder, an epoch still never repeats an example.
    rows = index_rows(50, 16, steps=3)
    order = np.concatenate([r for _, r in rows])
    assert len(order) == 48 and len(set(order.tolist())) == 48
    # Seeded: the same seed, the same order; another seed, another order.
    np.testing.assert_array_equal(index_rows(48, 16, seed=1, steps=3)[0][1],
                                  index_rows(48, 16, seed=1, steps=3)[0][1])
    assert not np.array_equal(index_rows(48, 16, seed=1, steps=1)[0][1],
                              index_rows(48, 16, seed=2, steps=1)[0][1])


def test_steps_per_epoch_and_bad_arguments():
    data = toy_data()
    assert steps_per_epoch(data, 16) == 3
    assert steps_per_epoch(data, 50) == 1
    with pytest.raises(ValueError, match="larger than the data set"):
        steps_per_epoch(data, 51)
    with pytest.raises(ValueError, match="batch_size"):
        steps_per_epoch(data, 0)
    augment = TwoViewAugmentation(8)
    with pytest.raises(TypeError, match="ImageData"):
        view_pairs(data.images, augment, 4)
    with pytest.raises(TypeError, match="from_preset"):
        view_pairs(data, "simclr", 4)
    with pytest.raises(ValueError, match="start_step"):
        view_pairs(data, augment, 4, start_step=-1)
    with pytest.raises(ValueError, match="steps"):
        view_pairs(data, augment, 4, steps=0)


def test_labeled_batches_keep_order_and_last_partial_batch():
    data = toy_data(count=10, size=8)
    batches = collect(labeled_batches(data, 4))
    assert [len(y) for _, y in batches] == [4, 4, 2]
    images = np.concatenate([x for x, _ in batches])
    labels = np.concatenate([y for _, y in batches])
    np.testing.assert_allclose(images, data.images / 255.0, atol=1e-7)
    np.testing.assert_array_equal(labels, data.labels)
    assert labels.dtype == np.int32
    resized = collect(labeled_batches(data, 4, image_size=4))
    assert resized[0][0].shape == (4, 4, 4, 3)
    assert 0.0 <= resized[0][0].min() and resized[0][0].max() <= 1.0

