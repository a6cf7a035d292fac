import numpy as np
import pytest
import tensorflow as tf

from keras_slim.evaluation import calibrate_batch_norm
from keras_slim.evaluation import evaluate_knn
from keras_slim.evaluation import extract_features
from keras_slim.evaluation import knn_accuracy
from keras_slim.evaluation import knn_classify
from tests.evaluation._data import colour_images
from tests.evaluation._data import range_backbone
from tests.methods._helpers import tiny_backbone


def brute_force_knn(bank, labels, queries, num_classes, k, temperature):
    """The textbook weighted kNN, one query at a time, full sort."""
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    predictions = []
    for query in queries.astype("float64"):
        similarity = bank.astype("float64") @ query
        nearest = np.argsort(-similarity)[:k]
        scores = np.zeros(num_classes)
        for index in nearest:
            scores[labels[index]] += np.exp(similarity[index] / temperature)
        predictions.append(np.argmax(scores))
    return np.array(predictions)


@pytest.mark.parametrize("k,temperature", [(1, 0.1), (7, 0.1), (20, 0.5)])
def test_knn_classify_matches_brute_force(rng, k, temperature):
    bank = rng.normal(size=(120, 6)).astype("float32")
    labels = rng.integers(0, 4, 120)
    queries = rng.normal(size=(45, 6)).astype("float32")
    expected = brute_force_knn(bank, labels, queries, 4, k, temperature)
    # Small query chunks: the chunking must not change any prediction.
    got = knn_classify(bank, labels, queries, 4, k=k,
                       temperature=temperature, batch_size=8)
    np.testing.assert_array_equal(got, expected)
    # The classes really differ between queries (not a constant answer).
    assert len(set(got)) >= 3


def test_k_is_capped_at_the_bank_size(rng):
    bank = rng.normal(size=(5, 3))
    labels = np.array([0, 0, 0, 1, 1])
    queries = rng.normal(size=(9, 3))
    capped = knn_classify(bank, labels, queries, 2, k=200, temperature=0.1)
    np.testing.assert_array_equal(
        capped, knn_classify(bank, labels, queries, 2, k=5, temperature=0.1)
    )
    np.testing.assert_array_equal(
        capped, brute_force_knn(bank, labels, queries, 2, 5, 0.1)
    )


def test_perfect_clusters_give_accuracy_one(rng):
    centres = np.eye(5) * 10.0
    bank_labels = np.repeat(np.arange(5), 20)
    query_labels = np.repeat(np.arange(5), 8)
    bank = centres[bank_labels] + rng.normal(0, 0.1, (100, 5))
    queries = centres[query_labels] + rng.normal(0, 0.1, (40, 5))
    assert knn_accuracy(bank, bank_labels, queries, query_labels, 5) == 1.0
    # Shuffled labels: the same features are no better than chance.
    wrong = rng.permutation(query_labels)
    assert knn_accuracy(bank, bank_labels, queries, wrong, 5) < 0.5


def test_small_temperature_neither_overflows_nor_underflows():
    bank = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.05]])
    queries = np.array([[-1.0, 0.0], [0.1, 1.0]])
    got = knn_classify(bank, [0, 1, 2], queries, 3, k=3, temperature=1e-4)
    np.testing.assert_array_equal(got, [2, 1])


def test_evaluate_knn_every_width_of_a_list():
    x_train, y_train = colour_images(20, seed=0)
    x_test, y_test = colour_images(10, seed=1)
    backbone = tiny_backbone(widths=(1.0, 0.5, 0.25))
    dims = {w: backbone.feature_dim(w) for w in (1.0, 0.5, 0.25)}
    assert len(set(dims.values())) == 3
    results = evaluate_knn(backbone, x_train, y_train, x_test, y_test, k=10)
    assert list(results) == [1.0, 0.5, 0.25]
    # Random weights, but colour classes: far above chance (1/3).
    assert results[1.0] >= 0.9
    # Exactly kNN on the features of each width.
    for width in (1.0, 0.5, 0.25):
        bank = np.asarray(backbone(x_train, width=width))
        queries = np.asarray(backbone(x_test, width=width))
        assert bank.shape[1] == dims[width]
        assert results[width] == knn_accuracy(
            bank, y_train, queries, y_test, 3, k=10
        )
    assert evaluate_knn(backbone, x_train, y_train, x_test, y_test,
                        widths=[0.5], k=10) == {0.5: results[0.5]}


def test_evaluate_knn_on_a_range_after_calibration():
    x_train, y_train = colour_images(20, seed=0)
    x_test, y_test = colour_images(10, seed=1)
    backbone = range_backbone()
    with pytest.raises(ValueError, match="calibrate_batch_norm"):
        evaluate_knn(backbone, x_train, y_train, x_test, y_test)
    calibrate_batch_norm(backbone, x_train, batch_size=30)
    results = evaluate_knn(backbone, x_train, y_train, x_test, y_test, k=10)
    assert list(results) == [1.0, 0.5]
    assert results[1.0] >= 0.9
    for width in (1.0, 0.5):
        bank = extract_features(backbone, x_train, width)
        queries = extract_features(backbone, x_test, width)
        assert results[width] == knn_accuracy(
            bank, y_train, queries, y_test, 3, k=10
        )
    with pytest.raises(ValueError, match="stat_widths"):
        evaluate_knn(backbone, x_train, y_train, x_test, y_test,
                     widths=[0.75])


def test_evaluate_knn_takes_labeled_datasets():
    x_train, y_train = colour_images(10, seed=0)
    x_test, y_test = colour_images(5, seed=1)
    backbone = tiny_backbone()
    expected = evaluate_knn(backbone, x_train, y_train, x_test, y_test, k=5)
    train = tf.data.Dataset.from_tensor_slices((x_train, y_train)).batch(7)
    test = tf.data.Dataset.from_tensor_slices((x_test, y_test)).batch(4)
    assert evaluate_knn(backbone, train, None, test, None, k=5) == expected
    with pytest.raises(ValueError, match="labels once"):
        evaluate_knn(backbone, train, y_train, test, None)
    images_only = tf.data.Dataset.from_tensor_slices(x_train).batch(7)
    with pytest.raises(ValueError, match="train_labels` is missing"):
        evaluate_knn(backbone, images_only, None, test, None)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"train_labels": np.zeros(5, int)}, "one label per image"),
        ({"train_labels": np.eye(4)[[0, 1, 2, 3, 0, 1]]}, "one-hot"),
        ({"train_labels": [0, 1, 2, 3, 0, -1]}, ">= 0"),
        ({"train_labels": [0, 1, 2, 3, 0, 1.5]}, "non-integer"),
        ({"num_classes": 3}, "out of range"),
        ({"query_features": np.ones((3, 4))}, "same width"),
        ({"train_features": np.ones(6)}, r"\(N, dim\)"),
        ({"train_features": np.full((6, 3), np.nan)}, "NaN"),
        ({"k": 0}, "`k`"),
        ({"temperature": 0.0}, "`temperature`"),
        ({"batch_size": 0}, "`batch_size`"),
    ],
)
def test_knn_classify_bad_input(change, message):
    args = {
        "train_features": np.ones((6, 3)),
        "train_labels": [0, 1, 2, 3, 0, 1],
        "query_features": np.ones((2, 3)),
        "num_classes": 4,
    }
    args.update(change)
    with pytest.raises(ValueError, match=message):
        knn_classify(**args)


def test_knn_accuracy_needs_one_label_per_query():
    with pytest.raises(ValueError, match="one label per image"):
        knn_accuracy(np.ones((4, 2)), [0, 1, 0, 1], np.ones((3, 2)), [0, 1],
                     2)


def test_evaluate_knn_bad_input():
    x, y = colour_images(2)
    backbone = tiny_backbone()
    with pytest.raises(ValueError, match="keras_slim backbone"):
        evaluate_knn(object(), x, y, x, y)
    with pytest.raises(ValueError, match="not one of this network's widths"):
        evaluate_knn(backbone, x, y, x, y, widths=[0.3])
    with pytest.raises(ValueError, match="out of range"):
        evaluate_knn(backbone, x, y, x, y, num_classes=2)
    with pytest.raises(ValueError, match="test_labels` has 5 labels"):
        evaluate_knn(backbone, x, y, x, y[:5])
