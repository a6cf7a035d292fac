import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_slim
from keras_slim.methods import SlimCLR
from keras_slim.methods._per_batch_rate import PerBatchRate
from tests._stopped_fit import leaves_no_data_iterator
from tests.methods._helpers import compile_sgd
from tests.methods._helpers import random_pairs
from tests.methods._helpers import tiny_backbone
from tests.methods._helpers import weights_of

METRICS = ("loss", "ssl_loss", "distill_loss", "accuracy", "grad_norm",
           "embedding_std")


@pytest.mark.parametrize("base", ["mocov2", "simclr", "mocov3"])
def test_every_base_trains_every_width_with_fit(base):
    model = SlimCLR(tiny_backbone(), base=base, queue_size=32)
    compile_sgd(model)
    before = weights_of(model.backbone)
    history = model.fit(random_pairs(), epochs=2, verbose=0)
    logs = history.history
    for width in ("w1", "w0.5"):
        for metric in METRICS:
            values = logs[f"{width}/{metric}"]
            assert np.isfinite(values).all(), (width, metric)
    assert logs["w1/distill_loss"] == [0.0, 0.0]  # the teacher distills none
    assert min(logs["w0.5/distill_loss"]) > 0.0
    assert min(logs["w0.5/grad_norm"]) > 0.0
    changed = [
        not np.array_equal(a, b)
        for a, b in zip(before, weights_of(model.backbone))
    ]
    assert sum(changed) > 0.9 * len(changed)


def test_mocov2_queue_and_key_encoder_follow_the_online_network():
    model = SlimCLR(tiny_backbone(), base="mocov2", queue_size=32,
                    momentum=0.5)
    compile_sgd(model)
    queue_before = np.array(model.queue)
    key_before = weights_of(model.key_backbone)
    model.fit(random_pairs(batch=8, steps=3), epochs=1, verbose=0)
    assert int(model.queue_pointer) == 24
    queue = np.array(model.queue)
    assert not np.allclose(queue[:24], queue_before[:24])
    np.testing.assert_array_equal(queue[24:], queue_before[24:])
    np.testing.assert_allclose(np.linalg.norm(queue, axis=1), 1.0, atol=1e-5)
    key_after = weights_of(model.key_backbone)
    assert any(not np.array_equal(a, b) for a, b in zip(key_before, key_after))
    # The key encoder gets no gradient: it is no trainable weight of the model.
    trainable = {id(v) for v in model.trainable_weights}
    assert not any(id(v) in trainable for v in model.key_backbone.weights)


def test_one_update_applies_the_sum_of_weighted_width_losses():
    """The step equals one SGD step on L = sum of the recipe's width losses."""
    model = SlimCLR(tiny_backbone(), base="simclr", width_weights=[2.0, 1.0],
                    distill_weight=0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    views = next(iter(random_pairs(steps=1)))
    variables = model.trainable_variables
    start = [np.array(v) for v in variables]
    with tf.GradientTape() as tape:
        full = model.width_outputs(1.0, views, {}, None, True)
        teacher = tf.nest.map_structure(tf.stop_gradient, full["teacher"])
        half = model.width_outputs(0.5, views, {}, teacher, True)
        mean = lambda v: tf.reduce_mean(v)
        total = 2.0 * mean(full["ssl"]) + 1.0 * (
            0.5 * mean(half["ssl"]) + 0.5 * mean(half["distill"])
        )
    grads = tape.gradient(total, variables)
    expected = [
        s - 0.1 * (0 if g is None else np.array(g))
        for s, g in zip(start, grads)
    ]
    for v, s in zip(variables, start):
        v.assign(s)
    # Training-mode outputs use batch statistics, so the moving statistics
    # the manual pass updated do not change the step below.
    model.train_on_batch(views)
    got = [np.array(v) for v in variables]
    for g, e in zip(got, expected):
        np.testing.assert_allclose(g, e, atol=2e-5)


def test_slow_start_trains_only_the_full_width_first():
    model = SlimCLR(tiny_backbone(), base="simclr", slow_start_steps=2)
    compile_sgd(model)
    half_bn = model.backbone.stem_norm.norm_at(0.5)
    gamma = np.array(half_bn.gamma)
    data = random_pairs(steps=1)
    logs = model.train_on_batch(next(iter(data)), return_dict=True)
    np.testing.assert_array_equal(np.array(half_bn.gamma), gamma)
    assert logs["w0.5/loss"] == 0.0  # inactive: no sample in the mean yet
    model.train_on_batch(next(iter(data)))
    logs = model.train_on_batch(next(iter(data)), return_dict=True)
    assert not np.array_equal(np.array(half_bn.gamma), gamma)
    assert logs["w0.5/loss"] > 0.0


def test_default_width_weights_follow_the_paper():
    model = SlimCLR(tiny_backbone(widths=[1.0, 0.75, 0.5, 0.25]),
                    base="simclr")
    assert model.width_weights == [2.5, 1.0, 1.0, 1.0]


def test_trains_with_xla():
    model = SlimCLR(tiny_backbone(), base="mocov2", queue_size=32)
    compile_sgd(model, jit_compile=True)
    history = model.fit(random_pairs(), epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"]).all()


def test_predict_and_evaluate_work():
    model = SlimCLR(tiny_backbone(), base="mocov2", queue_size=32)
    compile_sgd(model)
    pairs = random_pairs()
    logs = model.evaluate(pairs, verbose=0, return_dict=True)
    assert np.isfinite(logs["w0.5/ssl_loss"])
    features = model.predict(pairs.map(lambda a, b: a), verbose=0)
    assert features.shape == (16, 32)


def test_save_and_load_round_trip(tmp_path):
    model = SlimCLR(tiny_backbone(), base="mocov2", queue_size=32)
    compile_sgd(model)
    model.fit(random_pairs(), epochs=1, verbose=0)
    path = str(tmp_path / "slimclr.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == model.get_config()
    x = np.random.default_rng(1).random((2, 16, 16, 3), dtype="float32")
    for width in (1.0, 0.5):
        np.testing.assert_array_equal(
            loaded.backbone(x, width=width), model.backbone(x, width=width)
        )
    np.testing.assert_array_equal(np.array(loaded.queue), np.array(model.queue))
    # Compiled as saved, optimizer state included: training can go on.
    assert loaded.compiled and int(loaded.optimizer.iterations) == 2
    assert loaded.optimizer.get_config() == model.optimizer.get_config()
    for mine, theirs in zip(loaded.optimizer.variables,
                            model.optimizer.variables):
        np.testing.assert_array_equal(np.array(mine), np.array(theirs))


def test_a_saved_per_width_update_recipe_comes_back_with_its_schedule(
        tmp_path):
    model = SlimCLR(tiny_backbone(), base="simclr", per_width_update=True)
    schedule = keras.optimizers.schedules.CosineDecay(0.1, decay_steps=100)
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9))
    model.fit(random_pairs(steps=2), verbose=0)
    path = str(tmp_path / "per_width.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    rate = loaded.optimizer._learning_rate
    # Read at the loaded recipe's step (2 batches), not its 4 updates.
    assert isinstance(rate, PerBatchRate) and rate.step is loaded.ssl_step
    assert float(loaded.optimizer.learning_rate) == float(schedule(2))
    assert int(loaded.optimizer.iterations) == 4
    loaded.fit(random_pairs(steps=2), verbose=0)
    assert int(loaded.optimizer.iterations) == 8 and int(loaded.ssl_step) == 4


def test_a_saved_recipe_whose_schedule_cannot_be_rebuilt_loads_uncompiled(
        tmp_path):
    class Unregistered(keras.optimizers.schedules.LearningRateSchedule):
        def __call__(self, step):
            return 0.1

        def get_config(self):
            return {}

    model = SlimCLR(tiny_backbone(), base="simclr")
    model.compile(optimizer=keras.optimizers.SGD(Unregistered()))
    path = str(tmp_path / "unregistered.keras")
    model.save(path)
    with pytest.warns(UserWarning, match="loaded uncompiled.*Unregistered"):
        loaded = keras.saving.load_model(path)
    assert getattr(loaded, "optimizer", None) is None  # not compiled
    with pytest.raises(RuntimeError, match=r"call compile\(\) before fit"):
        loaded.fit(random_pairs(), verbose=0)
    x = np.zeros((1, 8, 8, 3), "float32")
    np.testing.assert_array_equal(loaded.backbone(x), model.backbone(x))


def test_bad_inputs_are_refused_with_clear_messages():
    model = SlimCLR(tiny_backbone(), base="simclr")
    compile_sgd(model)
    x = np.zeros((8, 16, 16, 3), "float32")
    singles = tf.data.Dataset.from_tensor_slices(x).batch(4)
    with pytest.raises(ValueError, match="view pairs"):
        model.fit(singles, verbose=0)
    mismatched = tf.data.Dataset.from_tensor_slices(
        (x, np.zeros((8, 12, 12, 3), "float32"))
    ).batch(4)
    with pytest.raises(ValueError, match="same image shape"):
        model.fit(mismatched, verbose=0)
    with pytest.raises(ValueError, match="width range"):
        SlimCLR(tiny_backbone(widths=keras_slim.Widths(min_width=0.25,
                                                        max_width=1.0)))
    with pytest.raises(ValueError, match="base"):
        SlimCLR(tiny_backbone(), base="swav")
    with pytest.raises(ValueError, match="one weight per width"):
        SlimCLR(tiny_backbone(), width_weights=[1.0])


def test_nan_loss_stops_training_naming_the_width():
    model = SlimCLR(tiny_backbone(), base="simclr")
    compile_sgd(model)
    x = np.full((8, 16, 16, 3), np.nan, "float32")
    # Batched as `random_pairs` (a static batch size): the second fit reuses
    # the first one's traced step instead of tracing another.
    pairs = tf.data.Dataset.from_tensor_slices((x, x)).batch(
        8, drop_remainder=True)
    model.fit(random_pairs(steps=2), verbose=0)
    before = weights_of(model)
    with leaves_no_data_iterator(), pytest.raises(
            FloatingPointError,
            match=r"Non-finite loss at width 1 \(w1\) at training step 2"):
        model.fit(pairs, verbose=0)
    trainable = {id(v) for v in model.trainable_weights}
    for variable, value in zip(model.weights, before):
        if id(variable) in trainable:  # no update from the failed step
            np.testing.assert_array_equal(np.array(variable), value)


def test_a_nan_gradient_under_a_finite_loss_stops_training_too(monkeypatch):
    # A projection head whose outputs gain sqrt((0 * y)^2): zero on the way
    # forward (the loss stays finite), 0 * inf = NaN on the way back, in
    # every kernel. (A NaN pixel does this only where the kernels' ReLU
    # drops NaN, as oneDNN's does: tests/runs/test_resume.py.)
    call = keras_slim.heads.SlimMLPHead.call

    def finite_forward_nan_backward(self, inputs, **kwargs):
        outputs = call(self, inputs, **kwargs)
        return outputs + keras.ops.sqrt(keras.ops.square(0.0 * outputs))

    monkeypatch.setattr(keras_slim.heads.SlimMLPHead, "call",
                        finite_forward_nan_backward)
    model = SlimCLR(tiny_backbone(base_width=2), base="mocov2", queue_size=16)
    compile_sgd(model)
    rng = np.random.default_rng(0)
    x = rng.random((8, 12, 12, 3), dtype="float32")
    second = np.flip(x, axis=2).copy()
    before = weights_of(model)
    # The step stops instead of writing NaN into every weight.
    with leaves_no_data_iterator(), pytest.raises(
            FloatingPointError,
            match=r"Non-finite gradient at width 1 \(w1\) at "
                  r"training step 0"):
        model.fit((x, second), batch_size=8, verbose=0)
    trainable = {id(v) for v in model.trainable_weights}
    for variable, value in zip(model.weights, before):
        if id(variable) in trainable:  # no update from the failed step
            np.testing.assert_array_equal(np.array(variable), value)


def test_per_width_update_applies_one_update_per_width():
    model = SlimCLR(tiny_backbone(), base="simclr", per_width_update=True)
    compile_sgd(model)
    logs = model.fit(random_pairs(steps=2), epochs=1, verbose=0).history
    assert np.isfinite(logs["loss"]).all()
    assert int(model.optimizer.iterations) == 4  # 2 steps x 2 widths
    assert int(model.ssl_step) == 2
