"""Tests of keras_slim.optimizers.WarmupCosine and SlowStartCosine."""

import json
import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_slim.optimizers import SlowStartCosine
from keras_slim.optimizers import WarmupCosine


def _values(schedule, steps):
    return np.array([float(schedule(s)) for s in steps])


def _cosine(peak, end, progress):
    return end + 0.5 * (peak - end) * (1 + math.cos(math.pi * progress))


# -------------------------------------------------------------- WarmupCosine
def test_warmup_cosine_key_points():
    s = WarmupCosine(peak=1.0, total_steps=110, warmup_steps=10)
    # step 0, mid-warmup, end of warmup, cosine midpoint, end, after the end.
    np.testing.assert_allclose(
        _values(s, [0, 5, 10, 60, 110, 500]),
        [0.0, 0.5, 1.0, 0.5, 0.0, 0.0], atol=1e-6)
    # A quarter of the way through the cosine: 0.5 * (1 + cos(pi/4)).
    np.testing.assert_allclose(float(s(35)), _cosine(1.0, 0.0, 0.25),
                               rtol=1e-6)


def test_warmup_cosine_start_and_end_values():
    s = WarmupCosine(peak=0.4, total_steps=20, warmup_steps=4,
                     warmup_start=0.2, end=0.1)
    np.testing.assert_allclose(
        _values(s, [0, 2, 4, 12, 20, 21, 10_000]),
        [0.2, 0.3, 0.4, _cosine(0.4, 0.1, 0.5), 0.1, 0.1, 0.1], rtol=1e-6)


def test_warmup_cosine_without_warmup_starts_at_peak():
    s = WarmupCosine(peak=2.0, total_steps=4)
    np.testing.assert_allclose(_values(s, [0, 1, 2, 3, 4]),
                               [2.0, _cosine(2, 0, 0.25), 1.0,
                                _cosine(2, 0, 0.75), 0.0], atol=1e-6)


def test_warmup_cosine_whole_run_is_warmup():
    s = WarmupCosine(peak=1.0, total_steps=4, warmup_steps=4, end=0.25)
    np.testing.assert_allclose(_values(s, [0, 2, 3, 4, 9]),
                               [0.0, 0.5, 0.75, 0.25, 0.25], atol=1e-6)


def test_warmup_cosine_matches_numpy_everywhere():
    s = WarmupCosine(peak=0.3, total_steps=50, warmup_steps=7,
                     warmup_start=0.01, end=0.003)
    steps = np.arange(0, 60)
    expected = []
    for t in steps:
        if t < 7:
            expected.append(0.01 + (0.3 - 0.01) * t / 7)
        else:
            expected.append(_cosine(0.3, 0.003, min((t - 7) / 43, 1.0)))
    got = np.asarray(s(tf.constant(steps, "int64")))  # vectorized call
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("dtype", ["int32", "int64", "float32", "float64"])
def test_step_dtypes(dtype):
    s = WarmupCosine(peak=1.0, total_steps=110, warmup_steps=10)
    value = s(tf.constant(60, dtype))
    assert value.dtype == tf.float32
    np.testing.assert_allclose(float(value), 0.5, atol=1e-6)
    # A fractional step interpolates the warmup.
    np.testing.assert_allclose(float(s(2.5)), 0.25, rtol=1e-6)


# ----------------------------------------------------------- SlowStartCosine
def test_slow_start_restarts_and_follows_second_schedule():
    s = SlowStartCosine(peak=1.0, total_steps=100, slow_start_steps=40,
                        warmup_steps=10, restart_peak=0.5,
                        restart_warmup_steps=10)
    first = WarmupCosine(peak=1.0, total_steps=40, warmup_steps=10)
    second = WarmupCosine(peak=0.5, total_steps=60, warmup_steps=10)
    for t in range(0, 40):
        np.testing.assert_allclose(float(s(t)), float(first(t)), atol=1e-6)
    for t in range(40, 120):
        np.testing.assert_allclose(float(s(t)), float(second(t - 40)),
                                   atol=1e-6)
    np.testing.assert_allclose(
        _values(s, [0, 10, 25, 40, 45, 50, 75, 100]),
        [0.0, 1.0, 0.5, 0.0, 0.25, 0.5, 0.25, 0.0], atol=1e-6)


def test_slow_start_jumps_back_up_without_restart_warmup():
    s = SlowStartCosine(peak=0.3, total_steps=20, slow_start_steps=10,
                        warmup_steps=2, end=0.01)
    before, at, after = _values(s, [9, 10, 15])
    # Last step of the first phase: one step before its cosine ends.
    np.testing.assert_allclose(before, _cosine(0.3, 0.01, 7 / 8), rtol=1e-5)
    np.testing.assert_allclose(at, 0.3, rtol=1e-6)  # restart_peak = peak
    np.testing.assert_allclose(after, _cosine(0.3, 0.01, 0.5), rtol=1e-5)
    assert at > 5 * before
    np.testing.assert_allclose(float(s(20)), 0.01, rtol=1e-6)


def test_slow_start_restart_warmup_starts_from_first_phase_end():
    s = SlowStartCosine(peak=1.0, total_steps=30, slow_start_steps=10,
                        restart_peak=0.6, restart_warmup_steps=4,
                        slow_start_end=0.2, end=0.0)
    np.testing.assert_allclose(_values(s, [0, 5, 10, 12, 14, 30]),
                               [1.0, 0.6, 0.2, 0.4, 0.6, 0.0], atol=1e-6)


# ---------------------------------------------------------------------- XLA
@pytest.mark.parametrize(
    "schedule",
    [
        WarmupCosine(peak=0.5, total_steps=30, warmup_steps=5, end=0.01),
        SlowStartCosine(peak=0.5, total_steps=30, slow_start_steps=12,
                        warmup_steps=3, restart_warmup_steps=2),
    ],
    ids=["WarmupCosine", "SlowStartCosine"],
)
def test_jit_compile_matches_eager(schedule):
    compiled = tf.function(schedule, jit_compile=True)
    counter = tf.Variable(0, dtype=tf.int64)

    @tf.function(jit_compile=True)
    def from_variable():
        counter.assign_add(1)
        return schedule(counter)

    for t in range(0, 35):
        eager = float(schedule(t))
        np.testing.assert_allclose(
            float(compiled(tf.constant(t, tf.int64))), eager, atol=1e-6)
        np.testing.assert_allclose(
            float(compiled(tf.constant(t, tf.float32))), eager, atol=1e-6)
        np.testing.assert_allclose(
            float(from_variable()), float(schedule(t + 1)), atol=1e-6)


def test_schedule_drives_an_optimizer():
    s = WarmupCosine(peak=0.5, total_steps=4, warmup_steps=2)
    opt = keras.optimizers.SGD(learning_rate=s)
    var = keras.Variable(np.zeros(1, "float32"))
    seen = []
    for _ in range(5):
        seen.append(float(opt.learning_rate))
        opt.apply_gradients([(tf.ones(1), var)])
    np.testing.assert_allclose(seen, [0.0, 0.25, 0.5, 0.25, 0.0], atol=1e-6)
    np.testing.assert_allclose(var.numpy(), [-1.0], atol=1e-6)


# ----------------------------------------------------------- serialization
@pytest.mark.parametrize(
    "schedule",
    [
        WarmupCosine(peak=0.5, total_steps=30, warmup_steps=5,
                     warmup_start=0.05, end=0.01, name="wc"),
        WarmupCosine(peak=0.5, total_steps=30, warmup_steps=5,
                     steps_per_epoch=5, name="per_epoch"),
        SlowStartCosine(peak=0.5, total_steps=30, slow_start_steps=12,
                        warmup_steps=3, restart_peak=0.25,
                        restart_warmup_steps=2, warmup_start=0.1,
                        slow_start_end=0.02, end=0.001, name="ssc"),
    ],
    ids=["WarmupCosine", "WarmupCosine_per_epoch", "SlowStartCosine"],
)
def test_config_round_trip(schedule):
    config = schedule.get_config()
    restored = type(schedule).from_config(config)
    assert restored.get_config() == config
    serialized = keras.optimizers.schedules.serialize(schedule)
    assert serialized["registered_name"] == (
        f"keras_slim>{type(schedule).__name__}")
    again = keras.optimizers.schedules.deserialize(
        json.loads(json.dumps(serialized)))
    assert type(again) is type(schedule)
    steps = [0, 3, 5, 12, 14, 29, 30, 40]
    np.testing.assert_allclose(_values(again, steps), _values(schedule, steps))


def test_slow_start_defaults_in_config():
    config = SlowStartCosine(peak=0.3, total_steps=10,
                             slow_start_steps=5, end=0.01).get_config()
    assert config["restart_peak"] == 0.3
    assert config["restart_warmup_steps"] == 0
    assert config["slow_start_end"] == 0.01


# --------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(peak=1.0, total_steps=0), r"`total_steps` must be >= 1"),
        (dict(peak=1.0, total_steps=10, warmup_steps=-1),
         r"`warmup_steps` must be >= 0"),
        (dict(peak=1.0, total_steps=10, warmup_steps=11),
         r"`warmup_steps` must be <= `total_steps`"),
        (dict(peak=-0.1, total_steps=10), r"`peak` must be a finite float"),
        (dict(peak=float("nan"), total_steps=10), r"`peak` must be a finite"),
        (dict(peak=1.0, total_steps=10, end=-1.0), r"`end` must be"),
        (dict(peak=1.0, total_steps=10.5), r"`total_steps` must be an int"),
        (dict(peak=1.0, total_steps="10"), r"`total_steps` must be an int"),
        (dict(peak="1", total_steps=10), r"`peak` must be a float"),
        (dict(peak=1.0, total_steps=10, steps_per_epoch=0),
         r"`steps_per_epoch` must be >= 1"),
        (dict(peak=1.0, total_steps=10, steps_per_epoch=2.5),
         r"`steps_per_epoch` must be an int"),
    ],
)
def test_warmup_cosine_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        WarmupCosine(**kwargs)


def test_integral_float_steps_are_accepted():
    assert WarmupCosine(peak=1.0, total_steps=10.0).total_steps == 10


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(slow_start_steps=10), r"`slow_start_steps` must be < "
                                    r"`total_steps`"),
        (dict(slow_start_steps=12), r"`slow_start_steps` must be <"),
        (dict(slow_start_steps=0), r"`slow_start_steps` must be >= 1"),
        (dict(slow_start_steps=-3), r"`slow_start_steps` must be >= 1"),
        (dict(slow_start_steps=4, warmup_steps=5),
         r"`warmup_steps` must be <= `slow_start_steps`"),
        (dict(slow_start_steps=4, restart_warmup_steps=7),
         r"`restart_warmup_steps` must be <= `total_steps - "
         r"slow_start_steps` \(6\)"),
        (dict(slow_start_steps=4, restart_peak=-1.0), r"`restart_peak` must"),
        (dict(slow_start_steps=4, slow_start_end=-1.0),
         r"`slow_start_end` must"),
    ],
)
def test_slow_start_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SlowStartCosine(peak=1.0, total_steps=10, **kwargs)
