"""SlimClassifier: every width fine-tuned in one step, on labels."""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_slim.tasks import SlimClassifier
from tests._stopped_fit import leaves_no_data_iterator
from tests.methods._tiny_slim_net import TinySlimNet

SIZE = 8


def _backbone(widths=(1.0, 0.5), **kwargs):
    # The head and the per-width step are under test, not the depth: a
    # SlimResNet block traces in a fraction of a SlimResNet-18's time.
    if isinstance(widths, dict):
        widths = dict(widths)
    else:
        widths = list(widths)
    return TinySlimNet(widths=widths, base_width=4,
                       input_shape=(SIZE, SIZE, 3), **kwargs)


def _separable(count=48, classes=3, seed=0):
    """Images whose class is the brightest colour channel: easy to learn."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % classes
    images = rng.random((count, SIZE, SIZE, 3), "float32") * 0.3
    images[np.arange(count), :, :, labels] += 0.7
    return images, labels


def _classifier(widths=(1.0, 0.5), **kwargs):
    classifier = SlimClassifier(_backbone(widths), num_classes=3, **kwargs)
    classifier.compile(optimizer=keras.optimizers.SGD(0.05))
    return classifier


def _expected_update(classifier, x, y, smoothing, distill, rate):
    """The recipe written out: CE at 1.0, distillation (or CE) below, one SGD."""
    variables = classifier.trainable_variables
    targets = tf.one_hot(y, 3) * (1 - smoothing) + smoothing / 3
    with tf.GradientTape() as tape:
        top = classifier(x, width=1.0, training=True)
        small = classifier(x, width=0.5, training=True)
        soft = tf.stop_gradient(tf.nn.softmax(top)) if distill else targets
        loss = (tf.reduce_mean(
            tf.nn.softmax_cross_entropy_with_logits(targets, top))
            + tf.reduce_mean(
                tf.nn.softmax_cross_entropy_with_logits(soft, small)))
    grads = tape.gradient(loss, variables)
    return [v.numpy() - rate * g.numpy() for v, g in zip(variables, grads)]


@pytest.mark.parametrize("smoothing,distill", [(0.0, True), (0.1, False)])
def test_one_step_is_one_update_of_the_summed_width_losses(smoothing,
                                                            distill):
    x, y = _separable(8)
    classifier = _classifier(label_smoothing=smoothing,
                             inplace_distillation=distill)
    before = [v.numpy() for v in classifier.weights]
    expected = _expected_update(classifier, x, y, smoothing, distill, 0.05)
    for variable, value in zip(classifier.weights, before):
        variable.assign(value)  # the manual pass moved BN statistics
    logs = classifier.train_on_batch(x, y, return_dict=True)
    for variable, want in zip(classifier.trainable_variables, expected):
        np.testing.assert_allclose(variable.numpy(), want, rtol=1e-4,
                                   atol=1e-6, err_msg=variable.path)
    assert set(logs) == {"loss", "w1/loss", "w1/top1", "w0.5/loss",
                         "w0.5/top1"}
    np.testing.assert_allclose(logs["loss"],
                               logs["w1/loss"] + logs["w0.5/loss"], rtol=1e-6)


def test_fit_learns_every_width_and_predict_runs_each_width():
    x, y = _separable()
    # BatchNorm momentum 0.5: in a 45-step run the running statistics follow
    # the trained features, so inference-mode accuracy matches training's.
    classifier = SlimClassifier(_backbone(bn_momentum=0.5), num_classes=3)
    classifier.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    history = classifier.fit(x, y, batch_size=16, epochs=15, verbose=0)
    for width in ("w1", "w0.5"):
        assert history.history[f"{width}/top1"][-1] >= 0.9, history.history
    results = classifier.evaluate(x, y, verbose=0, return_dict=True)
    for width in (1.0, 0.5):
        logits = classifier.predict(x, width=width, verbose=0)
        top1 = float(np.mean(logits.argmax(-1) == y))
        name = "w1" if width == 1.0 else "w0.5"
        np.testing.assert_allclose(results[f"{name}/top1"], top1)
        assert top1 >= 0.9
    assert not np.allclose(classifier.predict(x, width=1.0, verbose=0),
                           classifier.predict(x, width=0.5, verbose=0))


def test_subnetwork_and_saved_file_give_the_same_logits(tmp_path):
    x, y = _separable(16)
    classifier = _classifier()
    classifier.fit(x, y, batch_size=8, epochs=1, verbose=0)
    path = str(tmp_path / "classifier.keras")
    classifier.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config()["num_classes"] == 3
    for width in (1.0, 0.5):
        want = classifier.predict(x, width=width, verbose=0)
        plain = classifier.subnetwork(width).predict(x, verbose=0)
        np.testing.assert_allclose(plain, want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(loaded.predict(x, width=width, verbose=0),
                                   want, rtol=1e-5, atol=1e-6)


def test_a_range_trains_the_sandwich_and_evaluates_after_calibration():
    x, y = _separable(16)
    classifier = _classifier({"min_width": 0.25, "max_width": 1.0,
                              "stat_widths": [1.0, 0.5, 0.25]},
                             grid_step=0.25)
    logs = classifier.fit(x, y, batch_size=8, epochs=1,
                          verbose=0).history
    assert {"wmax/top1", "wrand1/top1", "wrand2/top1", "wmin/top1"} <= set(
        logs)
    with pytest.raises(ValueError, match="calibrate"):
        classifier.evaluate(x, y, verbose=0)
    classifier.calibrate(x, batch_size=8)
    results = classifier.evaluate(x, y, verbose=0, return_dict=True)
    assert {"w1/top1", "w0.5/top1", "w0.25/top1"} <= set(results)


def test_distillation_follows_the_official_default_of_each_width_kind():
    assert not _classifier().distills
    assert _classifier({"min_width": 0.5, "max_width": 1.0},
                       grid_step=0.25).distills
    assert _classifier(inplace_distillation=True).distills
    assert _classifier(inplace_distillation=True).get_config()[
        "inplace_distillation"] is True


def test_range_draws_are_grid_widths_that_change_with_the_step():
    from keras_slim.tasks import _sandwich
    from keras_slim.tasks import _tf_step
    from keras_slim.width import Widths
    plan = _sandwich.plan(Widths(min_width=0.25, max_width=1.0), 2, 0.125)
    assert [s.name for s in plan.slots] == ["wmax", "wrand1", "wrand2",
                                            "wmin"]
    assert plan.slots[1].candidates == (0.875, 0.75, 0.625, 0.5, 0.375)
    seen = {tuple(_tf_step.draws(plan, 0, step).numpy())
            for step in range(20)}
    assert len(seen) > 5
    assert all(0 <= i < 5 for pair in seen for i in pair)


def test_bad_inputs_are_named():
    x, y = _separable(8)
    classifier = _classifier()
    # The stopped fit frees its data iterator at once (see the helper).
    with leaves_no_data_iterator(), pytest.raises(
            ValueError, match=r"not a class index in \[0, 3\)"):
        classifier.fit(x, y + 1, batch_size=8, epochs=1, verbose=0)
    with leaves_no_data_iterator(), pytest.raises(
            ValueError, match=r"not a class index in \[0, 3\)"):
        classifier.evaluate(x, y - 1, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match="num_classes=3 columns"):
        classifier.train_on_batch(x, np.eye(4, dtype="float32")[y])
    with pytest.raises(ValueError, match=r"\(images, labels\)"):
        classifier.fit(x, batch_size=8, epochs=1, verbose=0)
    with pytest.raises(ValueError, match="num_classes"):
        SlimClassifier(_backbone(), num_classes=1)
    with pytest.raises(ValueError, match="label_smoothing"):
        SlimClassifier(_backbone(), num_classes=3, label_smoothing=1.0)
    with pytest.raises(ValueError, match="0.3"):
        classifier.predict(x, width=0.3)


def test_a_backbone_with_fixed_size_features_feeds_the_whole_head():
    from keras_slim.backbones import SlimMobileNetV2
    classifier = SlimClassifier(
        SlimMobileNetV2(widths=[1.0, 0.5], input_shape=(32, 32, 3)),
        num_classes=3)
    assert not classifier.head.slice_input
    x = np.zeros((2, 32, 32, 3), "float32")
    for width in (1.0, 0.5):
        assert classifier.predict(x, width=width, verbose=0).shape == (2, 3)


def test_one_hot_labels_train_like_class_indices():
    x, y = _separable(8)
    by_index, by_one_hot = _classifier(), _classifier()
    by_one_hot.set_weights(by_index.get_weights())
    a = by_index.train_on_batch(x, y, return_dict=True)
    b = by_one_hot.train_on_batch(x, np.eye(3, dtype="float32")[y],
                                  return_dict=True)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=1e-6)
