import importlib

import numpy as np
import pytest
import tensorflow as tf

from keras_slim.evaluation import calibrate_batch_norm
from keras_slim.evaluation import extract_features
from tests.evaluation._data import range_backbone
from tests.methods._helpers import tiny_backbone
from tests.methods._helpers import weights_of

calibration = importlib.import_module("keras_slim.evaluation.calibration")


def _statistics(backbone, width):
    norms = calibration.slim_batch_norms(backbone)
    index = backbone.widths.stat_index(width)
    return [
        (np.array(n.moving_means[index]), np.array(n.moving_variances[index]))
        for n in norms
    ]


def test_calibrated_inference_equals_training_mode_on_the_same_batch(rng):
    backbone = range_backbone()
    x = rng.random((24, 8, 8, 3), dtype="float32")
    counts = calibrate_batch_norm(backbone, x, widths=[0.5], batch_size=24)
    assert counts == {0.5: 1}
    # One batch holding every image: the stored statistics are that batch's,
    # so inference reproduces the training-mode (batch statistics) forward.
    training = backbone(x, width=0.5, training=True)
    inference = extract_features(backbone, x, 0.5)
    np.testing.assert_allclose(inference, training, rtol=1e-4, atol=1e-5)
    # An uncalibrated width is refused rather than silently wrong.
    with pytest.raises(ValueError, match="calibrate_batch_norm"):
        extract_features(backbone, x, 1.0)


def test_statistics_are_the_average_over_batches_and_restart_each_call(rng):
    backbone = range_backbone()
    x = rng.random((20, 8, 8, 3), dtype="float32")
    batches = tf.data.Dataset.from_tensor_slices(x).batch(10)
    for _ in range(2):  # the second call restarts, it does not accumulate
        counts = calibrate_batch_norm(backbone, batches, widths=[1.0])
    assert counts == {1.0: 2}
    norms = calibration.slim_batch_norms(backbone)
    assert len(norms) == 4  # the stem's, the block's two, its shortcut's
    assert all(n.calibrated(1.0) == 2 for n in norms)
    assert all(n.calibrated(0.5) == 0 for n in norms)
    # The stem BatchNorm sees the stem convolution's output of each batch.
    stem = [np.array(backbone.stem_conv(b, width=1.0)) for b in (x[:10],
                                                                x[10:])]
    mean, variance = _statistics(backbone, 1.0)[0]
    np.testing.assert_allclose(
        mean, np.mean([s.mean(axis=(0, 1, 2)) for s in stem], axis=0),
        rtol=1e-4, atol=1e-6,
    )
    np.testing.assert_allclose(
        variance, np.mean([s.var(axis=(0, 1, 2)) for s in stem], axis=0),
        rtol=1e-4, atol=1e-6,
    )


def test_no_trainable_weight_changes_and_other_widths_keep_theirs(rng):
    backbone = range_backbone()
    x = rng.random((16, 8, 8, 3), dtype="float32")
    calibrate_batch_norm(backbone, x, widths=[1.0], batch_size=8)
    trainable = weights_of_list(backbone.trainable_weights)
    stats_full = _statistics(backbone, 1.0)
    counts = calibrate_batch_norm(backbone, x[::-1], widths=[0.5],
                                  batch_size=6, num_batches=1)
    assert counts == {0.5: 1}
    for before, after in zip(trainable,
                             weights_of_list(backbone.trainable_weights)):
        np.testing.assert_array_equal(before, after)
    for (m0, v0), (m1, v1) in zip(stats_full, _statistics(backbone, 1.0)):
        np.testing.assert_array_equal(m0, m1)
        np.testing.assert_array_equal(v0, v1)


def test_default_widths_numpy_batches_drop_the_small_remainder(rng):
    backbone = range_backbone()
    x = rng.random((25, 8, 8, 3), dtype="float32")
    assert calibrate_batch_norm(backbone, x, batch_size=8) == {1.0: 3,
                                                                0.5: 3}
    assert calibrate_batch_norm(backbone, x[:5], batch_size=8) == {1.0: 1,
                                                                    0.5: 1}
    assert calibrate_batch_norm(backbone, x, num_batches=2,
                                batch_size=8) == {1.0: 2, 0.5: 2}


def test_a_width_list_is_left_alone(rng):
    backbone = tiny_backbone()
    before = weights_of(backbone)
    x = rng.random((4, 8, 8, 3), dtype="float32")
    assert calibrate_batch_norm(backbone, x) == {}
    for a, b in zip(before, weights_of(backbone)):
        np.testing.assert_array_equal(a, b)


def test_bad_widths_and_arguments(rng):
    backbone = range_backbone()
    x = rng.random((4, 8, 8, 3), dtype="float32")
    with pytest.raises(ValueError, match=r"only for its `stat_widths` "
                                         r"\[1.0, 0.5\], fixed when"):
        calibrate_batch_norm(backbone, x, widths=[0.75])
    with pytest.raises(ValueError, match="outside this network's range"):
        calibrate_batch_norm(backbone, x, widths=[0.1])
    with pytest.raises(ValueError, match="`widths` is empty"):
        calibrate_batch_norm(backbone, x, widths=[])
    with pytest.raises(ValueError, match="`num_batches`"):
        calibrate_batch_norm(backbone, x, num_batches=0)
    with pytest.raises(ValueError, match="`batch_size`"):
        calibrate_batch_norm(backbone, x, batch_size=-1)
    with pytest.raises(ValueError, match="empty"):
        calibrate_batch_norm(backbone, x[:0])
    with pytest.raises(ValueError, match="keras_slim backbone"):
        calibrate_batch_norm("resnet", x)


def weights_of_list(variables):
    return [np.array(v) for v in variables]
