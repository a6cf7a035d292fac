"""SlimClassifier under tf.distribute and mixed precision.

Logical CPU devices must be configured before TensorFlow starts, so the
mirrored scenario runs on the two logical CPUs of `tests/_two_cpus.py`.
"""

import textwrap

import keras
import numpy as np
import pytest

from keras_slim.backbones import SlimResNet
from keras_slim.tasks import SlimClassifier
from tests._two_cpus import two_cpu_result

# Three scenarios in one process (a TensorFlow start each would cost more
# than the steps): a width list and a range's sandwich ends, each one step
# on one device and on two replicas, and drawn widths refused.
MIRRORED = textwrap.dedent(
    """
    import keras, numpy as np
    from keras_slim.tasks import SlimClassifier
    from keras_slim.width import Widths
    from tests.methods._tiny_slim_net import TinySlimNet

    rng = np.random.default_rng(0)
    x = rng.random((16, 16, 16, 3), dtype="float32")
    y = rng.integers(0, 4, 16)

    def build(widths, drawn, initial=None):
        keras.utils.set_random_seed(0)
        # Synchronized BN: both replicas normalize by the global batch's
        # statistics, as one device does.
        backbone = TinySlimNet(widths=widths, base_width=8,
                               synchronized=True)
        model = SlimClassifier(backbone, num_classes=4, seed=3,
                               num_random_widths=drawn)
        if initial is not None:
            model.set_weights(initial)
        model.compile(optimizer=keras.optimizers.SGD(0.001, momentum=0.9))
        return model

    def step(model):
        data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
        history = model.fit(data, epochs=1, verbose=0, shuffle=False)
        return model.get_weights(), history.history["loss"][0]

    def max_diff(a, b):  # over the weights (not the int step counter)
        return max(float(np.abs(p - q).max()) for p, q in zip(a, b)
                   if p.dtype.kind == "f")

    def same_step(widths):
        single = build(widths, 0)
        initial = single.get_weights()
        reference, loss = step(single)
        with strategy.scope():
            mirrored = build(widths, 0, initial)
        distributed, mirrored_loss = step(mirrored)
        return {"moved": max_diff(initial, reference),
                "diff": max_diff(reference, distributed),
                "loss": loss, "mirrored_loss": mirrored_loss}

    def drawn_refusal():
        with strategy.scope():
            mirrored = build(Widths(min_width=0.25, max_width=1.0), 2)
        try:  # drawn widths cannot all-reduce inside tf.switch_case
            step(mirrored)
        except ValueError as error:
            return str(error)
        return None

    print("RESULT" + json.dumps({
        "list": same_step([1.0, 0.5]),
        "range_sandwich_ends": same_step(
            Widths(min_width=0.25, max_width=1.0)),
        "drawn_error": drawn_refusal()}))
    """
)


@pytest.fixture(scope="module")
def mirrored():
    return two_cpu_result(MIRRORED)


@pytest.mark.parametrize("widths", ["list", "range_sandwich_ends"])
def test_two_replicas_take_the_one_device_step(mirrored, widths):
    out = mirrored[widths]
    assert out["moved"] > 1e-4, out  # the weights did train
    # The same update: the losses are sums over examples / the global batch.
    assert out["diff"] < 2e-5, out
    assert out["mirrored_loss"] == pytest.approx(out["loss"], rel=1e-4)


def test_drawn_widths_with_synchronized_batch_norm_are_refused_clearly(
        mirrored):
    error = mirrored["drawn_error"]
    assert error is not None, "drawn widths trained on 2 replicas"
    assert "cannot train a synchronized-BatchNorm backbone on 2 replicas" \
        in error
    assert "num_random_widths=0" in error


def test_mixed_float16_fine_tunes_with_float32_logits_and_weights():
    keras.mixed_precision.set_dtype_policy("mixed_float16")
    try:
        backbone = SlimResNet(widths=[1.0, 0.5], depth=10, base_width=8,
                              input_shape=(8, 8, 3))
        classifier = SlimClassifier(backbone, num_classes=3)
        classifier.compile(optimizer=keras.optimizers.SGD(0.05))
        rng = np.random.default_rng(0)
        x = rng.random((16, 8, 8, 3), "float32")
        y = np.arange(16) % 3
        before = [w.copy() for w in classifier.get_weights()]
        history = classifier.fit(x, y, batch_size=8, epochs=2, verbose=0)
        # Keras wraps the optimizer in a LossScaleOptimizer under the
        # mixed policy; SlimClassifier scales each width's loss through it.
        assert isinstance(classifier.optimizer,
                          keras.optimizers.LossScaleOptimizer)
        assert all(np.isfinite(history.history["w0.5/loss"]))
        assert all(w.dtype == "float32" for w in classifier.get_weights()
                   if w.dtype.kind == "f")
        moved = max(float(np.abs(a - b).max())
                    for a, b in zip(before, classifier.get_weights()))
        assert moved > 1e-4
        logits = classifier.predict(x, width=0.5, verbose=0)
        assert logits.dtype == np.float32 and np.isfinite(logits).all()
    finally:
        keras.mixed_precision.set_dtype_policy("float32")
