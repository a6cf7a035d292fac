import glob
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_slim.evaluation import KNNMonitor
from keras_slim.evaluation import calibrate_batch_norm
from keras_slim.evaluation import evaluate_knn
from keras_slim.methods import SlimCLR
from tests.evaluation._data import colour_images
from tests.evaluation._data import range_backbone
from tests.methods._helpers import compile_sgd
from tests.methods._helpers import random_pairs
from tests.methods._helpers import tiny_backbone


def _scalars(log_dir, tag):
    """{step: value} of a scalar tag in the event files under `log_dir`."""
    values = {}
    for path in glob.glob(os.path.join(log_dir, "**", "events.out.tfevents.*"),
                          recursive=True):
        for event in tf.compat.v1.train.summary_iterator(path):
            for value in event.summary.value:
                if value.tag == tag:
                    values[event.step] = float(tf.make_ndarray(value.tensor))
    return values


def test_fit_logs_knn_top1_to_history_and_tensorboard_in_any_order(tmp_path):
    x_train, y_train = colour_images(10, size=16, seed=0)
    x_test, y_test = colour_images(5, size=16, seed=1)
    model = SlimCLR(tiny_backbone(), base="simclr")
    compile_sgd(model)
    monitor = KNNMonitor(x_train, y_train, x_test, y_test, every_n_epochs=2,
                         k=5)
    # Listed last, after a TensorBoard and a History of the user's own: in
    # Keras' order they would run first and never see the kNN values.
    tensorboard = keras.callbacks.TensorBoard(log_dir=str(tmp_path))
    history = keras.callbacks.History()
    returned = model.fit(random_pairs(size=16), epochs=4, verbose=0,
                         callbacks=[history, tensorboard, monitor])
    assert returned is history
    assert sorted(monitor.results) == [1, 3]  # after epochs 2 and 4
    for name, width in (("w1", 1.0), ("w0.5", 0.5)):
        logged = history.history[f"{name}/knn_top1"]
        assert logged == [monitor.results[1][width],
                          monitor.results[3][width]]
        assert all(0.0 <= v <= 1.0 for v in logged)
        board = _scalars(str(tmp_path), f"epoch_{name}/knn_top1")
        assert sorted(board) == [1, 3]
        np.testing.assert_allclose([board[1], board[3]], logged, rtol=1e-6)
    # Every other epoch's training metrics are still logged as usual.
    assert len(history.history["loss"]) == 4
    # The values are those of the trained backbone at the last epoch.
    assert monitor.results[3] == evaluate_knn(
        model.backbone, x_train, y_train, x_test, y_test, k=5
    )


def test_a_range_is_calibrated_before_each_evaluation():
    x_train, y_train = colour_images(10, seed=0)
    x_test, y_test = colour_images(5, seed=1)
    backbone = range_backbone()
    monitor = KNNMonitor(x_train, y_train, x_test, y_test, widths=[0.5],
                         k=5, backbone=backbone, calibration_batches=1,
                         batch_size=16)
    logs = {"loss": 1.0}
    monitor.on_epoch_end(0, logs)
    assert set(logs) == {"loss", "w0.5/knn_top1"}
    calibrate_batch_norm(backbone, x_train, widths=[0.5], num_batches=1,
                         batch_size=16)
    assert logs["w0.5/knn_top1"] == evaluate_knn(
        backbone, x_train, y_train, x_test, y_test, widths=[0.5], k=5
    )[0.5]
    uncalibrated = KNNMonitor(x_train, y_train, x_test, y_test, k=5,
                              backbone=range_backbone(), calibrate_bn=False)
    with pytest.raises(ValueError, match="calibrate_batch_norm"):
        uncalibrated.on_epoch_end(0, {})


def test_warns_when_it_cannot_reorder_and_checks_the_model():
    x, y = colour_images(2)
    monitor = KNNMonitor(x, y, x, y)
    monitor.set_model(SlimCLR(tiny_backbone(), base="simclr"))
    with pytest.warns(UserWarning, match="List the KNNMonitor first"):
        monitor.on_train_begin()  # called directly, not by a CallbackList
    monitor.set_model(keras.Sequential([keras.layers.Dense(2)]))
    with pytest.raises(ValueError, match="no `backbone` attribute"):
        monitor.on_train_begin()
    wrong = KNNMonitor(x, y, x, y, widths=[0.3], backbone=tiny_backbone())
    with pytest.raises(ValueError, match="not one of this network's widths"):
        wrong.on_train_begin()


def test_config_round_trip():
    x, y = colour_images(2)
    monitor = KNNMonitor(x, y, x, y, every_n_epochs=3, widths=[0.5], k=7,
                         temperature=0.2, calibration_batches=4)
    clone = KNNMonitor.from_config(monitor.get_config())
    for key, value in monitor.get_config().items():
        np.testing.assert_array_equal(getattr(clone, key), value)


@pytest.mark.parametrize(
    "change,message",
    [
        ({"train_labels": None}, "train_labels` is missing"),
        ({"test_labels": np.zeros(3, int)}, "one label per image"),
        ({"every_n_epochs": 0}, "`every_n_epochs`"),
        ({"k": 0}, "`k`"),
        ({"temperature": -1.0}, "`temperature`"),
        ({"calibration_batches": 0}, "`calibration_batches`"),
        ({"backbone": "resnet"}, "keras_slim backbone"),
        ({"test_images": np.zeros((6, 8, 8))}, r"\(N, height, width"),
    ],
)
def test_bad_arguments(change, message):
    x, y = colour_images(2)
    args = {"train_images": x, "train_labels": y, "test_images": x,
            "test_labels": y}
    args.update(change)
    with pytest.raises(ValueError, match=message):
        KNNMonitor(**args)
