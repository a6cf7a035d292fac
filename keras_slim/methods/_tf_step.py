"""The TensorFlow step of the slimmable recipes: everything backend-specific.

The recipes, their bases and heads compute with `keras.ops` only; what needs
TensorFlow itself lives here, so that another backend's step (JAX) can sit
beside this module:

* the training step: one `GradientTape` per width, each width's gradient
  ordered before the next width runs (control dependencies), the optimizer
  applied once per step or once per width;
* the width slots: the step's phase and each random slot's width chosen in
  the graph with `tf.switch_case` (static shapes, a bounded trace count);
* the replicas: the global-batch mean of a loss, the logs Keras can reduce
  under `MultiWorkerMirroredStrategy` (the gathers of negatives, queue keys
  and Shuffle-BN images use `keras_slim._backend.replica_context()`);
* the non-finite check that stops a step (`check_numerics`).

`keras_slim/methods/_jax_step.py` is the same step on JAX.
"""

import tensorflow as tf
from keras import ops

from keras_slim.methods._plan import branch_table
from keras_slim.methods._plan import phase_draws
from keras_slim.methods._step_logs import NONFINITE
from keras_slim.methods._step_logs import add_gradient
from keras_slim.methods._step_logs import checks_gradients
from keras_slim.methods._step_logs import NONFINITE_GRADIENT
from keras_slim.methods._step_logs import nonfinite_detail
from keras_slim.methods._step_logs import slot_keys
from keras_slim.methods._step_logs import width_values

# What a failed `check_numerics` raises out of `model.fit`.
STEP_ERROR = tf.errors.InvalidArgumentError


# ------------------------------------------------------------ small pieces
def multi_worker_safe(logs):
    """Logs that Keras 3.15 can reduce under MultiWorkerMirroredStrategy.

    There Keras reduces each log with `strategy.reduce("MEAN", v, axis=0)`,
    which fails on scalars (keras issue 20585); a one-element vector reduces
    to the same mean.
    """
    strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return {k: tf.reshape(v, [1]) for k, v in logs.items()}
    return logs


def fit_callbacks(model):
    """Callbacks `SlimSSL.fit` adds on TensorFlow: none."""
    return []


# ------------------------------------------------------------ the steps
def train_step(model, views):
    """One training step of `model` (a `SlimSSL`) on a pair of views."""
    model.before_targets()
    targets = model.step_targets(views, training=True)
    grads, values = _run_phases(model, views, targets, training=True)
    if not model.per_width_update:
        # After every width's gradient check (in its logged norm).
        with tf.control_dependencies([values[f"{name}/grad_norm"]
                                      for name in model.slot_names()]):
            _apply(model, grads)
    # Ordered after the gradients (which depend on the loss checks), so a
    # failed step is not counted.
    with tf.control_dependencies([g for g in grads if g is not None]):
        model.after_update(views, targets)
        model.ssl_step.assign_add(1)
    return multi_worker_safe(model.record(values))


def test_step(model, views):
    """The step's losses without an update."""
    targets = model.step_targets(views, training=False)
    _, values = _run_phases(model, views, targets, training=False)
    return multi_worker_safe(model.record(values))


def _run_phases(model, views, targets, training):
    phases = model.phases()
    step = ops.convert_to_tensor(model.ssl_step)
    if len(phases) == 1:
        return _run_slots(model, phases[0][1], views, targets, step,
                          training, dense=False)
    phase = tf.add_n([
        tf.cast(step >= start, tf.int32) for start, _ in phases[1:]
    ])
    branches = [
        (lambda slots=slots: _run_slots(model, slots, views, targets, step,
                                        training, dense=True))
        for _, slots in phases
    ]
    return tf.switch_case(phase, branches)


def _run_slots(model, slots, views, targets, step, training, dense):
    variables = model.online_variables
    total = [None] * len(variables)
    values = _empty_values(model)
    teacher = None
    draws, drawable = phase_draws(model, slots, step)
    dense = dense or draws is not None
    for slot in slots:
        views = _after(views, total)
        if slot.is_static:
            grads, slot_values, out = _run_width(
                model, slot, slot.candidates[0], views, targets, teacher,
                training, dense,
            )
            if slot.is_teacher:
                teacher = tf.nest.map_structure(tf.stop_gradient,
                                                out["teacher"])
        else:
            grads, slot_values = _run_random(
                model, slot, draws[slot.draw], drawable, views, targets,
                teacher, training,
            )
        total = [add_gradient(t, g) for t, g in zip(total, grads)]
        values.update(slot_values)
    values["loss"] = tf.add_n([
        values[f"{n}/loss"] * values[f"{n}/active"]
        for n in model.slot_names()
    ])
    if dense:
        total = _dense(total, variables)
    return total, values


def _run_random(model, slot, index, drawable, views, targets, teacher,
                training):
    def branch(width):
        def run():
            grads, values, _ = _run_width(model, slot, width, views, targets,
                                          teacher, training, dense=True)
            return grads, values
        return run

    def skip():
        values = {k: tf.zeros(()) for k in slot_keys(slot.name)}
        return [tf.zeros_like(v) for v in model.online_variables], values

    live, table = branch_table(len(slot.candidates), drawable)
    branches = [branch(slot.candidates[i]) for i in live] + [skip]
    return tf.switch_case(tf.gather(table, index), branches)


def _run_width(model, slot, width, views, targets, teacher, training, dense):
    variables = model.online_variables
    with tf.GradientTape() as tape:
        out = model.width_outputs(width, views, targets, teacher, training)
        ssl = _global_mean(out["ssl"])
        distill = 0.0
        if out.get("distill") is not None:
            distill = _global_mean(out["distill"])
        # Computed once per width: US3L's assembles every full kernel.
        penalty = tf.cast(model.regularization(width), tf.float32)
        loss = model.combine(slot, ssl, distill) + penalty
        # The gradient, hence the update, depends on the check: a
        # non-finite loss stops the step before any weight changes.
        loss = tf.debugging.check_numerics(
            tf.cast(loss, tf.float32),
            f"{NONFINITE}{nonfinite_detail(width, slot.name)}; lower the "
            f"learning rate or check the inputs for NaN/Inf.",
        )
        scaled = _scale(model, loss)
    grads = [None] * len(variables)
    if training:
        grads = tape.gradient(scaled, variables)
    norm = _grad_norm(model, grads)
    if training and checks_gradients(model.optimizer):
        # A finite loss can still have a NaN gradient: the updates wait for
        # this check (the gradients themselves are left as they are).
        norm = tf.debugging.check_numerics(
            norm, f"{NONFINITE_GRADIENT}{nonfinite_detail(width, slot.name)}"
                  f"; lower the learning rate or check the inputs for "
                  f"NaN/Inf.")
    if training and model.per_width_update:
        with tf.control_dependencies([norm]):
            _apply(model, grads)
    if dense:
        grads = _dense(grads, variables)
    return grads, width_values(model, slot, out, penalty, norm), out


def _empty_values(model):
    return {key: tf.zeros(()) for name in model.slot_names()
            for key in slot_keys(name)}


def _after(views, grads):
    """Orders the next width after the previous width's gradients."""
    done = [g for g in grads if g is not None]
    if not done:
        return views
    with tf.control_dependencies(done):
        return tuple(tf.identity(v) for v in views)


def _dense(grads, variables):
    return [tf.zeros_like(v) if g is None else g
            for g, v in zip(grads, variables)]


def _global_mean(per_example):
    per_example = tf.cast(per_example, tf.float32)
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    count = tf.cast(tf.shape(per_example)[0] * replicas, tf.float32)
    return tf.reduce_sum(per_example) / count


def _scale(model, loss):
    if hasattr(model.optimizer, "scale_loss"):
        return model.optimizer.scale_loss(loss)
    return loss


def _grad_norm(model, grads):
    present = [tf.cast(g, tf.float32) for g in grads if g is not None]
    if not present:
        return tf.zeros(())
    norm = tf.linalg.global_norm(present)
    scale = getattr(model.optimizer, "scale_loss", None)
    if scale is not None:
        norm = norm / tf.cast(model.optimizer.scale_loss(1.0), tf.float32)
    return norm


def _apply(model, grads):
    pairs = [(g, v) for g, v in zip(grads, model.online_variables)
             if g is not None]
    model.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
