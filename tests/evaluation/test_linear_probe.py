import importlib

import numpy as np
import pytest
import tensorflow as tf

from keras_slim.evaluation import LinearProbeResult
from keras_slim.evaluation import calibrate_batch_norm
from keras_slim.evaluation import extract_features
from keras_slim.evaluation import linear_probe
from tests.evaluation._data import colour_images
from tests.evaluation._data import range_backbone
from tests.methods._helpers import tiny_backbone
from tests.methods._helpers import weights_of

probe_module = importlib.import_module("keras_slim.evaluation.linear_probe")

PROBE = {"epochs": 20, "batch_size": 16, "learning_rate": 0.01}


@pytest.fixture(scope="module")
def data():
    x_train, y_train = colour_images(20, num_classes=4, seed=0)
    x_test, y_test = colour_images(10, num_classes=4, seed=1)
    return x_train, y_train, x_test, y_test


def test_independent_probes_learn_every_width(data):
    x_train, y_train, x_test, y_test = data
    backbone = tiny_backbone()
    before = weights_of(backbone)
    result = linear_probe(backbone, *data, **PROBE)
    assert isinstance(result, LinearProbeResult) and not result.joint
    assert list(result) == [1.0, 0.5]
    for width, top1 in result.items():
        assert top1 >= 0.9, (width, top1)  # chance is 0.25
        # The classifier takes raw features and reproduces the accuracy.
        classifier = result.classifiers[width]
        assert classifier.kernel.shape == (backbone.feature_dim(width), 4)
        logits = classifier(extract_features(backbone, x_test, width))
        predictions = np.argmax(np.asarray(logits), axis=1)
        assert np.mean(predictions == y_test) == top1
    for a, b in zip(before, weights_of(backbone)):
        np.testing.assert_array_equal(a, b)  # the backbone stays frozen
    # Trained together but independent: width 0.5 alone gives the same probe.
    alone = linear_probe(backbone, *data, widths=[0.5], **PROBE)
    assert alone[0.5] == result[0.5]
    np.testing.assert_allclose(
        alone.classifiers[0.5].kernel, result.classifiers[0.5].kernel,
        rtol=1e-4, atol=1e-6,
    )


def test_labels_carry_the_information(data):
    x_train, y_train, x_test, y_test = data
    shuffled = np.random.default_rng(0).permutation(y_train)
    result = linear_probe(tiny_backbone(), x_train, shuffled, x_test, y_test,
                          widths=[1.0], **PROBE)
    assert result[1.0] < 0.6


def test_joint_probe_on_a_calibrated_range(data):
    x_train, y_train, x_test, y_test = data
    backbone = range_backbone()
    calibrate_batch_norm(backbone, x_train, batch_size=40)
    result = linear_probe(backbone, *data, joint=True, **PROBE)
    assert result.joint and list(result) == [1.0, 0.5]
    # Random weights: the half width's features separate the colours less
    # well, but still far above chance (0.25).
    assert result[1.0] >= 0.9 and result[0.5] >= 0.7
    independent = linear_probe(backbone, *data, **PROBE)
    # The largest width's loss is plain cross-entropy either way.
    np.testing.assert_allclose(
        result.classifiers[1.0].kernel, independent.classifiers[1.0].kernel,
        rtol=1e-4, atol=1e-6,
    )
    assert not np.allclose(result.classifiers[0.5].kernel,
                           independent.classifiers[0.5].kernel)


def test_joint_loss_is_slimclr_switchable_probe_loss(rng):
    labels = tf.constant([0, 2, 1])
    full = tf.constant(rng.normal(size=(3, 3)), "float32")
    half = tf.constant(rng.normal(size=(3, 3)), "float32")

    def cross_entropy(target, logits):
        logits = np.asarray(logits, "float64")
        log_p = logits - np.log(np.exp(logits).sum(1, keepdims=True))
        return float(np.mean(-(target * log_p).sum(1)))

    one_hot = np.eye(3)[labels.numpy()]
    teacher = np.exp(full.numpy()) / np.exp(full.numpy()).sum(1,
                                                               keepdims=True)
    expected = cross_entropy(one_hot, full) + (
        cross_entropy(one_hot, half) + cross_entropy(teacher, half)
    ) / 2
    with tf.GradientTape() as tape:
        tape.watch(full)
        loss = probe_module._probe_loss({1.0: full, 0.5: half}, labels,
                                        [1.0, 0.5], joint=True)
    np.testing.assert_allclose(float(loss), expected, rtol=1e-5)
    # The full-width probe is a detached teacher: only its own CE moves it.
    np.testing.assert_allclose(
        tape.gradient(loss, full), (teacher - one_hot) / 3, atol=1e-6
    )


def test_a_reshuffling_dataset_is_refused_for_joint_probes(data):
    x_train, y_train, x_test, y_test = data
    reshuffled = tf.data.Dataset.from_tensor_slices((x_train, y_train))
    reshuffled = reshuffled.shuffle(80, seed=1).batch(16)
    with pytest.raises(ValueError, match="different order at each width"):
        linear_probe(tiny_backbone(), reshuffled, None, x_test, y_test,
                     joint=True, epochs=1)


@pytest.fixture(scope="module")
def backbone():
    return tiny_backbone()


@pytest.mark.parametrize(
    "change,message",
    [
        ({"train_labels": np.zeros(5, int)}, "one label per image"),
        ({"test_labels": np.full(40, 7)}, "out of range for 4 classes"),
        ({"train_labels": np.full(80, -1)}, ">= 0"),
        ({"epochs": 0}, "`epochs`"),
        ({"learning_rate": 0}, "`learning_rate`"),
        ({"batch_size": 1.5}, "`batch_size`"),
        ({"widths": [0.3]}, "not one of this network's widths"),
        ({"widths": []}, "`widths` is empty"),
        ({"num_classes": 0}, "`num_classes`"),
        ({"test_labels": None}, "test_labels` is missing"),
    ],
)
def test_bad_input(backbone, data, change, message):
    x_train, y_train, x_test, y_test = data
    args = {"train_images": x_train, "train_labels": y_train,
            "test_images": x_test, "test_labels": y_test, "num_classes": 4}
    args.update(change)
    with pytest.raises(ValueError, match=message):
        linear_probe(backbone, **args)

