import numpy as np
import pytest
import tensorflow as tf

from keras_slim import Widths
from keras_slim.methods import US3L
from keras_slim.methods._plan import sandwich_draws
from keras_slim.methods._plan import width_grid
from tests.methods._helpers import compile_sgd
from tests.methods._helpers import random_pairs
from tests.methods._helpers import tiny_backbone
from tests.methods._helpers import weights_of

RANGE = Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.5, 0.25])


def us3l(**kwargs):
    kwargs.setdefault("hidden_dim", 32)
    kwargs.setdefault("projection_dim", 16)
    kwargs.setdefault("grid_step", 0.25)
    return US3L(tiny_backbone(widths=RANGE), **kwargs)


def test_width_grid_runs_from_largest_to_smallest():
    assert width_grid(1.0, 0.25, 0.25) == (1.0, 0.75, 0.5, 0.25)
    assert width_grid(1.0, 0.3, 0.25) == (1.0, 0.75, 0.5, 0.3)


def test_sandwich_draws_are_distinct_inside_and_reproducible():
    seen = set()
    for step in range(50):
        draws = sandwich_draws(7, step, grid_size=13, valid_count=13, draws=3)
        values = draws.numpy().tolist()
        assert len(set(values)) == 3
        assert all(0 < v < 12 for v in values)
        again = sandwich_draws(7, step, 13, 13, 3).numpy().tolist()
        assert values == again
        assert values == sorted(values)  # largest width first
        seen.update(values)
    assert seen == set(range(1, 12))
    # Too few widths between max and min: the extra draws are skipped (13).
    few = sandwich_draws(0, 0, grid_size=13, valid_count=3, draws=3).numpy()
    assert few.tolist() == [1, 13, 13]


@pytest.mark.parametrize("base", ["simclr", "byol"])
def test_trains_sandwich_widths_in_one_trace(base, monkeypatch):
    model = us3l(base=base, num_widths=3, grid_step=0.375, momentum=0.0)
    traced = []
    original = model.width_outputs
    monkeypatch.setattr(
        model, "width_outputs",
        lambda width, *a, **k: traced.append(width) or original(width, *a, **k),
    )
    compile_sgd(model)
    before = weights_of(model.backbone)
    history = model.fit(random_pairs(steps=2), epochs=1, verbose=0)
    logs = history.history
    assert np.isfinite(logs["loss"]).all()
    for slot in ("w1", "wmin", "wrand1"):
        assert np.isfinite(logs[f"{slot}/loss"]).all()
        assert logs[f"{slot}/grad_norm"][0] > 0.0
    assert logs["wmin/ssl_loss"] == [0.0]  # sub-widths only distill
    assert -2.0 <= logs["wmin/distill_loss"][0] <= 2.0  # two -cos terms
    assert logs["w1/distill_loss"] == [0.0]
    after = weights_of(model.backbone)
    assert any(not np.array_equal(a, b) for a, b in zip(before, after))
    # The grid (1.0, 0.625, 0.25) is traced once: the teacher, the widths
    # the random slot can draw (never the largest), the smallest; more steps
    # and epochs add no trace.
    assert traced == [1.0, 0.625, 0.25, 0.25]
    count = len(traced)
    model.fit(random_pairs(steps=2, seed=1), epochs=2, verbose=0)
    assert len(traced) == count
    # momentum 0: the EMA teacher becomes a copy of the online network at
    # the start of the next step (the official order: EMA, then teacher).
    model.before_targets()
    for teacher, online in zip(model.teacher_backbone.trainable_weights,
                               model.backbone.trainable_weights):
        np.testing.assert_allclose(np.array(teacher), np.array(online),
                                   atol=1e-6)


def test_dynamic_sampling_widens_the_range_in_four_phases():
    model = us3l(total_steps=8, num_widths=3)
    phases = model.phases()
    assert [start for start, _ in phases] == [0, 2, 4, 6]
    assert [s.name for s in phases[0][1]] == ["w1"]
    lowest = [slots[-1].candidates[0] for _, slots in phases[1:]]
    assert lowest == [0.75, 0.5, 0.25]
    for _, slots in phases[1:]:  # trained largest first (official order)
        assert [s.name for s in slots] == ["w1", "wrand1", "wmin"]


def test_group_regularization_adds_a_penalty_that_ramps():
    model = us3l(total_steps=4, group_lambda=1.0)
    start = float(model.regularization(1.0))
    model.ssl_step.assign(4)
    ramped = float(model.regularization(1.0))
    assert start > 0.0
    assert ramped < start  # later groups get less penalty once alpha > 0


def test_refuses_bad_arguments():
    with pytest.raises(ValueError, match="base"):
        us3l(base="mocov2")
    with pytest.raises(ValueError, match="num_widths"):
        us3l(num_widths=1)
    with pytest.raises(ValueError, match="Lower `grid_step`"):
        us3l(num_widths=4, grid_step=0.375,  # grid 1.0, 0.625, 0.25
             sampling="distinct")
    with pytest.raises(ValueError, match="sampling"):
        us3l(sampling="grid")
    with pytest.raises(ValueError, match="steps_per_epoch"):
        us3l(steps_per_epoch=-1)


def test_save_and_load_round_trip(tmp_path):
    import keras

    model = us3l(num_widths=3, grid_step=0.375)
    path = str(tmp_path / "us3l.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.get_config() == model.get_config()
    x = np.random.default_rng(2).random((4, 16, 16, 3), dtype="float32")
    for width in (1.0, 0.6, 0.25):
        np.testing.assert_array_equal(
            loaded.backbone(x, width=width, training=True),
            model.backbone(x, width=width, training=True),
        )


def test_simsiam_base_has_no_teacher_and_distills_the_full_projections():
    # The official utils/ssl_algorithms/simsiam.py: 3-layer projector ending
    # in an affine-free BN, one predictor, -cos(p, sg(z)) across the views;
    # sub-widths' predictions against the full width's detached projections.
    model = us3l(base="simsiam", num_widths=3, grid_step=0.375)
    assert not hasattr(model, "teacher_backbone")
    assert model.projector.num_layers == 3
    assert not model.projector.output_bn_affine
    compile_sgd(model)
    before = weights_of(model.backbone)
    logs = model.fit(random_pairs(steps=2), epochs=1, verbose=0).history
    for slot in ("w1", "wmin", "wrand1"):
        assert -1.0 <= logs[f"{slot}/loss"][0] <= 1.0
    assert logs["w1/distill_loss"] == [0.0] and logs["wmin/ssl_loss"] == [0.0]
    # A mean of -cos terms, really computed (not the zero of a skipped slot).
    assert -1.0 <= logs["wmin/distill_loss"][0] <= 1.0
    assert logs["wmin/distill_loss"][0] != 0.0
    assert any(not np.array_equal(a, b)
               for a, b in zip(before, weights_of(model.backbone)))
    restored = type(model).from_config(model.get_config())
    assert restored.base == "simsiam"


def test_one_update_per_width_with_the_rate_read_per_batch():
    # The official loop: optimizer.step() inside the width loop, the rate
    # set by the epoch/batch (not by the number of updates).
    import keras

    from keras_slim.methods._per_batch_rate import PerBatchRate

    model = us3l(num_widths=3, grid_step=0.375, group_lambda=0.0)
    assert model.per_width_update
    schedule = keras.optimizers.schedules.PolynomialDecay(0.1, 4, 0.0)
    model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9))
    assert isinstance(model.optimizer._learning_rate, PerBatchRate)
    model.fit(random_pairs(steps=2), epochs=1, verbose=0)
    assert int(model.optimizer.iterations) == 6  # 2 batches x 3 widths
    assert int(model.ssl_step) == 2
    np.testing.assert_allclose(float(model.optimizer.learning_rate),
                               float(schedule(2)), rtol=1e-6)
