"""US3L's schedules against the official loop's (`us3l_schedule.json`).

`tools/make_golden_us3l.py` ran the official `workers/ssl.py`
(`generate_widths_train`, `adjust_learning_rate`, `GroupReg.cal_lambda`)
over an 8-epoch x 5-batch run and over the released 400-epoch config. Here
keras_slim's US3L, given the run's `steps_per_epoch`, must move through the
same sampling phases, the same regularization ramp and (with
`WarmupCosine(steps_per_epoch=...)`) the same learning rate at every step.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_slim import Widths
from keras_slim.methods import US3L
from keras_slim.methods._plan import traced_candidates
from keras_slim.methods._plan import uniform_drawable
from keras_slim.methods._plan import uniform_draws
from keras_slim.optimizers import WarmupCosine
from tests.methods._helpers import tiny_backbone

GOLDEN = os.path.join(os.path.dirname(__file__), os.pardir, "golden",
                      "us3l_schedule.json")
RANGE = Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.5, 0.25])


@pytest.fixture(scope="module")
def golden():
    with open(GOLDEN) as f:
        return json.load(f)


def _model(epochs, steps_per_epoch, **kwargs):
    return US3L(tiny_backbone(widths=RANGE), hidden_dim=8, projection_dim=4,
                total_steps=epochs * steps_per_epoch,
                steps_per_epoch=steps_per_epoch, **kwargs)


def _phase_at(model, step):
    return [slots for start, slots in model.phases() if step >= start][-1]


@pytest.mark.parametrize("case, epochs", [("sampler_phases", 8),
                                          ("sampler_phases_released_config",
                                           400)])
def test_sampling_phases_follow_the_official_epochs(golden, case, epochs):
    steps = 3
    model = _model(epochs, steps)
    for phase in golden[case]:
        for epoch in phase["epochs"]:
            for step in (epoch * steps, epoch * steps + steps - 1):
                slots = _phase_at(model, step)
                assert len(slots) == phase["num_widths"], (epoch, step)
                assert slots[0].candidates == (phase["max"],)
                assert slots[-1].candidates == (phase["min"],)
                widths = model.sampled_widths(step)
                assert widths == sorted(widths, reverse=True)  # max first
                assert widths.count(1.0) == 1  # one teacher pass
                assert phase["min"] <= min(widths) <= max(widths) <= 1.0


def test_regularization_ramp_follows_the_official_epochs(golden):
    steps = 5
    model = _model(8, steps, group_alpha=0.05)
    expected = golden["group_reg_alpha"]
    for epoch, alpha in zip(expected["epoch"], expected["alpha_t"]):
        for batch in (0, steps - 1):
            model.ssl_step.assign(epoch * steps + batch)
            ramp = float(model._regularization_ramp())
            np.testing.assert_allclose(0.05 * ramp, alpha, rtol=1e-6,
                                       atol=1e-12)
    released = golden["group_reg_alpha_released_config"]
    model = _model(400, 2, group_alpha=0.05)
    for epoch, alpha in zip(released["epoch"], released["alpha_t"]):
        model.ssl_step.assign(epoch * 2 + 1)
        np.testing.assert_allclose(0.05 * float(model._regularization_ramp()),
                                   alpha, rtol=1e-6, atol=1e-12)


def test_learning_rate_is_set_once_per_epoch_as_officially(golden):
    steps = golden["settings"]["batches_per_epoch"]
    epochs = golden["settings"]["TRAIN.EPOCHS"]
    schedule = WarmupCosine(0.5, total_steps=epochs * steps,
                            steps_per_epoch=steps)
    for row in golden["lr_per_step"]:
        step = row["epoch"] * steps + row["batch"]
        np.testing.assert_allclose(float(schedule(step)), row["lr"],
                                   rtol=1e-5)  # a float32 schedule
    released = golden["lr_released_config"]
    schedule = WarmupCosine(0.5, total_steps=400 * 7, steps_per_epoch=7)
    for epoch, rate in zip(released["epoch"], released["lr"]):
        np.testing.assert_allclose(float(schedule(epoch * 7 + 6)), rate,
                                   rtol=1e-5, atol=1e-8)
    per_batch = WarmupCosine(0.5, total_steps=epochs * steps)
    assert float(per_batch(steps - 1)) < 0.5  # the default moves every step


def test_uniform_draws_cover_the_range_rounded_to_the_grid():
    grid = (1.0, 0.75, 0.5, 0.25)
    # Traced once, as the compiled step draws (2,000 eager calls took 12 s),
    # and equal to the eager draws.
    draw = tf.function(lambda step: uniform_draws(3, step, grid, 0.25, 2))
    for step in (0, 7, 1999):
        np.testing.assert_array_equal(
            draw(tf.constant(step)), uniform_draws(3, step, grid, 0.25, 2))
    counts = np.zeros(len(grid))
    for step in range(2000):
        index = draw(tf.constant(step)).numpy()
        assert list(index) == sorted(index)
        np.add.at(counts, index, 1)
    again = uniform_draws(3, 7, grid, 0.25, 2).numpy()
    assert list(again) == list(uniform_draws(3, 7, grid, 0.25, 2).numpy())
    # Uniform on [0.25, 1], rounded to the grid below the largest: 0.75
    # takes [0.625, 1] (the largest would train as the teacher), the
    # smallest's cell is half as wide as 0.5's.
    share = counts / counts.sum()
    np.testing.assert_allclose(share, [0.0, 1 / 2, 1 / 3, 1 / 6],
                               atol=0.03)
    # A phase whose smallest width is 0.5 never draws 0.25.
    index = np.concatenate([uniform_draws(3, s, grid, 0.5, 1).numpy()
                            for s in range(200)])
    assert set(index.tolist()) == {1, 2}


@pytest.mark.parametrize("sampling", ["uniform", "distinct"])
def test_each_phase_traces_exactly_the_widths_it_can_draw(sampling):
    # The compiled step gives a branch only to `drawable_indices`: every
    # index a phase draws must be one of them, and each of them is drawn.
    model = _model(8, 5, sampling=sampling, grid_step=0.125)  # 7 widths
    skip = len(model.grid)
    for start, slots in model.phases()[1:]:
        drawn = set()
        for step in range(start, start + 60):
            drawn.update(model.draw_indices(slots, step).numpy().tolist())
        drawn.discard(skip)
        assert sorted(drawn) == list(model.drawable_indices(slots)), start


def test_a_subclass_with_undeclared_draws_traces_every_candidate():
    class OwnDraws(US3L):  # draws its own way, declares nothing
        def draw_indices(self, slots, step):
            return super().draw_indices(slots, step)

    declared = _model(8, 5, grid_step=0.125)
    own = OwnDraws(tiny_backbone(widths=RANGE), hidden_dim=8,
                   projection_dim=4, total_steps=40, steps_per_epoch=5,
                   grid_step=0.125)
    slots = declared.phases()[1][1]  # lowest 0.75: 0.875 and 0.75 drawable
    assert traced_candidates(declared, slots) == (1, 2)
    assert traced_candidates(own, slots) == tuple(range(7))


def test_a_phase_with_no_width_inside_draws_the_largest():
    # A grid too coarse for the phase (its smallest width is the largest):
    # every distance is infinite and the draw is index 0, which the step
    # must then trace.
    assert uniform_drawable((1.0, 0.25), 1.0) == (0,)
    assert uniform_drawable((1.0, 0.5, 0.25), 0.5) == (1,)
    assert {int(i) for s in range(20)
            for i in uniform_draws(0, s, (1.0, 0.25), 1.0, 1)} == {0}


def test_distinct_sampling_keeps_the_earlier_behaviour():
    model = _model(8, 5, sampling="distinct", grid_step=0.25)
    for step in range(30, 40):
        widths = model.sampled_widths(step)
        assert len(set(widths)) == 3 and widths[0] == 1.0
        assert widths[-1] == 0.25 and 0.25 < widths[1] < 1.0
