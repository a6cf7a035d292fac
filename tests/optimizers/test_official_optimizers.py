"""Optimizers and schedules equal the official SlimCLR code's numbers.

`tools/make_golden_slimclr.py` drove the official `utils/lr_scheduler.py`
as `main_ssl.py` does and ran `torch.optim.SGD` (with `utils/optim.py`'s
parameter groups, whose weight decay the scheduler resets every step) and the
official `LARS` on a small module for three steps (tests/golden/).
"""

import json
import os

import keras
import numpy as np
import pytest

from keras_slim.config import load_config
from keras_slim.optimizers import LARS
from keras_slim.optimizers import CoupledSGD
from keras_slim.optimizers import SlimStartCosine
from keras_slim.runs.builders import build_optimizer
from tests.optimizers.test_lars import _apply
from tests.optimizers.test_lars import _untagged_variable
from tests.optimizers.test_lars import _variable

GOLDEN = os.path.join(os.path.dirname(__file__), os.pardir, "golden")
# Keras paths of the official module's parameters. The variables are untagged
# (no keras_slim layer made them), so LARS leaves out those of rank <= 1,
# as the official LARS does (`p.ndim > 1`): BatchNorm's and the bias.
PATHS = {"conv1.weight": ("conv1", "kernel"), "bn1.weight": ("bn1", "gamma"),
         "bn1.bias": ("bn1", "beta"), "fc.weight": ("fc", "kernel"),
         "fc.bias": ("fc", "bias")}


def _golden(name):
    with open(os.path.join(GOLDEN, name)) as f:
        return json.load(f)


def _schedule_cases():
    return _golden("slimclr_lr_schedule.json")["cases"]


def _schedule(settings):
    steps = settings["steps_per_epoch"]
    start = settings["slim_start_epoch"]
    return SlimStartCosine(
        peak=settings["lr"], total_steps=int(settings["all_iters"]),
        slim_start_step=max(start, 0) * steps,
        slim_start_learning_rate=settings["slim_start_lr"],
        warmup_steps=settings["slow_start_iters"],
        warmup_start=settings["slow_start_lr"], end=settings["end_lr"])


@pytest.mark.parametrize("case", _schedule_cases(), ids=lambda c: c["name"])
def test_slim_start_cosine_is_the_official_schedule(case):
    schedule = _schedule(case["settings"])
    rates = [float(schedule(step)) for step in range(len(case["lr"]))]
    # float32, as Keras computes it: absolute 1e-6 of the peak.
    np.testing.assert_allclose(rates, case["lr"], rtol=2e-6,
                               atol=1e-6 * max(case["lr"]))


def test_the_config_builds_the_official_mocov2_schedule():
    case = next(c for c in _schedule_cases() if c["name"] == "mocov2_script")
    settings = case["settings"]
    config = load_config(None, [
        "method.slow_start=0.5", "train.epochs=20", "train.learning_rate=0.2",
        "train.warmup_epochs=1.0", "train.weight_decay=1e-4",
        "data.image_size=32"])
    optimizer = build_optimizer(config, settings["steps_per_epoch"])
    assert isinstance(optimizer, CoupledSGD)
    assert optimizer.coupled_weight_decay == 1e-4
    schedule = optimizer._learning_rate
    assert isinstance(schedule, SlimStartCosine)
    rates = [float(schedule(step)) for step in range(200)]
    # float32, as Keras computes it: absolute 1e-6 of the peak.
    np.testing.assert_allclose(rates, case["lr"], rtol=2e-6,
                               atol=1e-6 * max(case["lr"]))


def _run_three_steps(optimizer, case):
    variables = {name: _untagged_variable(np.asarray(value, "float32"),
                                          PATHS[name][0], name=PATHS[name][1])
                 for name, value in case["initial"].items()}
    names = list(variables)
    for step, grads in enumerate(case["grads"]):
        optimizer.learning_rate = case["lr"][step]
        _apply(optimizer, [grads[n] for n in names],
               [variables[n] for n in names])
        for name in names:
            np.testing.assert_allclose(
                variables[name].numpy(), case["after"][step][name],
                rtol=1e-5, atol=1e-7,
                err_msg=f"{case['name']} step {step} {name}")


def _optimizer_case(name):
    return next(c for c in _golden("slimclr_optimizers.json")["cases"]
                if c["name"] == name)


def test_coupled_sgd_is_torch_sgd_as_the_official_loop_runs_it():
    # The scheduler gives every group weight decay 1e-4: all parameters decay.
    case = _optimizer_case("sgd_main_ssl")
    assert case["weight_decay"] == [[1e-4, 1e-4]] * 3
    _run_three_steps(CoupledSGD(0.2, momentum=0.9, weight_decay=1e-4), case)


def test_coupled_sgd_excludes_what_it_is_told_to():
    # utils/optim.py's groups as built (no scheduler): no decay on biases.
    case = _optimizer_case("sgd_groups_as_constructed")
    optimizer = CoupledSGD(0.2, momentum=0.9, weight_decay=1e-4)
    optimizer.exclude_from_weight_decay(var_names=["bias", "beta"])
    _run_three_steps(optimizer, case)


def test_lars_is_the_official_lars_while_the_rate_changes():
    case = _optimizer_case("lars_mocov3")
    _run_three_steps(LARS(1.2, momentum=0.9, weight_decay=1e-6, eta=1e-3),
                     case)


def test_lars_with_the_rate_in_the_velocity_differs_when_it_changes():
    case = _optimizer_case("lars_mocov3")
    with pytest.raises(AssertionError, match="step 1"):
        _run_three_steps(LARS(1.2, momentum=0.9, weight_decay=1e-6, eta=1e-3,
                              learning_rate_in_velocity=True), case)


def test_coupled_sgd_saves_and_restores():
    optimizer = CoupledSGD(0.1, momentum=0.8, weight_decay=3e-4,
                           nesterov=True)
    restored = CoupledSGD.from_config(optimizer.get_config())
    assert (restored.momentum, restored.coupled_weight_decay,
            restored.nesterov) == (0.8, 3e-4, True)
    with pytest.raises(ValueError, match="momentum"):
        CoupledSGD(momentum=1.0)
    with pytest.raises(ValueError, match="weight_decay"):
        CoupledSGD(weight_decay=-1.0)
    assert keras.optimizers.deserialize(
        keras.optimizers.serialize(optimizer)).nesterov


@pytest.mark.parametrize("skip", [True, False])
def test_a_weight_that_got_no_gradient_is_left_alone_as_in_pytorch(skip):
    # keras_slim hands zeros to the weights of widths that did not run;
    # PyTorch skips a parameter without gradient (no decay, no momentum).
    used = _variable([1.0, 2.0], "a", name="kernel")
    unused = _variable([3.0, 4.0], "b", name="kernel")
    optimizer = CoupledSGD(0.1, momentum=0.9, weight_decay=0.5,
                           skip_zero_gradients=skip)
    _apply(optimizer, [[1.0, 1.0], [0.0, 0.0]], [used, unused])
    np.testing.assert_allclose(used.numpy(), [1.0 - 0.1 * 1.5,
                                              2.0 - 0.1 * 2.0], rtol=1e-6)
    expected = [3.0, 4.0] if skip else [3.0 - 0.1 * 1.5, 4.0 - 0.1 * 2.0]
    np.testing.assert_allclose(unused.numpy(), expected, rtol=1e-6)


def test_slim_start_cosine_saves_and_refuses_bad_settings():
    schedule = SlimStartCosine(0.2, total_steps=100, slim_start_step=50,
                               slim_start_learning_rate=1e-4,
                               warmup_steps=5.0)
    restored = keras.optimizers.schedules.deserialize(
        keras.optimizers.schedules.serialize(schedule))
    for step in (0, 3, 49, 50, 99):
        assert float(restored(step)) == float(schedule(step))
    with pytest.raises(ValueError, match="slim_start_step"):
        SlimStartCosine(0.2, total_steps=100, slim_start_step=100)
    with pytest.raises(ValueError, match="warmup_steps"):
        SlimStartCosine(0.2, total_steps=100, warmup_steps=100)
    with pytest.raises(ValueError, match="peak"):
        SlimStartCosine(-1.0, total_steps=100)
