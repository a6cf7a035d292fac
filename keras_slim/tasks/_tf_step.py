"""The TensorFlow step of `SlimClassifier`: everything backend-specific.

`SlimClassifier` computes its logits, losses and metrics with `keras.ops`;
what needs TensorFlow itself lives here, beside the recipes' own step
module (`keras_slim.methods._tf_step`), so another backend's step can sit
beside it:

* the training step: one `GradientTape` per width of the step, each width
  ordered after the previous one's gradients (memory), one optimizer update
  of their sum;
* the drawn widths of a range, chosen in the graph with `tf.switch_case`
  over the plan's grid (`keras_slim.tasks._sandwich`), seeded by
  `(seed, step)`;
* the replicas: a mean over the global batch;
* the label check that stops a step, and the error it raises out of `fit`.
"""

import tensorflow as tf
from keras import ops

BAD_LABEL = "A label is not a class index in [0, num_classes)"
# What a failed label check raises out of `model.fit` / `evaluate`.
STEP_ERROR = tf.errors.InvalidArgumentError


def train_step(model, images, targets):
    """One update of every width of `model.plan`; `{slot name: (loss,
    logits)}` of the step."""
    _check_drawn_widths_can_sync(model)
    indices = draws(model.plan, model.seed, model.step_counter)
    variables = model.trainable_variables
    # None where no width of the step reached a variable yet: a band no
    # width uses costs no zero tensor, no addition and no update.
    total = [None] * len(variables)
    logs, teacher = {}, None
    for slot in model.plan.slots:
        images = _after(images, total)
        grads, loss, logits = run_slot(
            slot, indices, lambda w, dense: _width_gradients(
                model, w, images, targets, teacher, variables, dense))
        if teacher is None and model.distills:
            teacher = ops.stop_gradient(ops.softmax(logits))
        total = [_add(t, g) for t, g in zip(total, grads)]
        logs[slot.name] = (loss, logits)
    pairs = [(g, v) for g, v in zip(total, variables) if g is not None]
    model.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])
    with tf.control_dependencies([g for g, _ in pairs]):
        model.step_counter.assign_add(1)
    return logs


def _check_drawn_widths_can_sync(model):
    """A drawn width runs inside `tf.switch_case`, where TensorFlow cannot
    all-reduce across replicas: synchronized BatchNorm cannot run there."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    if (model.plan.num_draws and replicas > 1
            and getattr(model.backbone, "synchronized", False)):
        raise ValueError(
            f"A width range with num_random_widths="
            f"{model.num_random_widths} cannot train a synchronized-BatchNorm "
            f"backbone on {replicas} replicas: each drawn width runs inside "
            f"a tf.switch_case, where TensorFlow cannot all-reduce the "
            f"batch statistics. Use num_random_widths=0 (the largest and "
            f"smallest widths), or a backbone with synchronized=False "
            f"(per-replica statistics).")


def draws(plan, seed, step):
    """One grid index per random slot: uniform, stateless in (seed, step)."""
    count = plan.num_draws
    if not count:
        return None
    size = len(next(s for s in plan.slots if s.draw >= 0).candidates)
    pair = tf.stack([tf.cast(seed, tf.int64), tf.cast(step, tf.int64)])
    return tf.random.stateless_uniform(
        [count], seed=pair, minval=0, maxval=size, dtype=tf.int32)


def run_slot(slot, indices, run_width):
    """`run_width(w, dense)` at the slot's width, or at its drawn grid width.

    A drawn width runs in a `tf.switch_case`, whose branches must return
    tensors of one structure: `dense=True` asks for no `None` gradient.
    """
    if slot.draw < 0:
        return run_width(slot.candidates[0], False)
    branches = [lambda w=w: run_width(w, True) for w in slot.candidates]
    return tf.switch_case(indices[slot.draw], branches)


def global_mean(per_example):
    """The sum over this replica's examples / the global batch size: summed
    over the replicas, the exact mean of the global batch."""
    replicas = tf.distribute.get_strategy().num_replicas_in_sync
    count = ops.cast(ops.shape(per_example)[0] * replicas, "float32")
    return ops.sum(per_example) / count


def replica_mean(loss):
    """A replica's `global_mean` loss as its own examples' mean: Keras
    averages the replicas' metric values, which then give the global mean."""
    return loss * tf.distribute.get_strategy().num_replicas_in_sync


def checked_one_hot(labels, num_classes):
    """One-hot rows of integer `labels`, after checking each is a class."""
    labels = ops.cast(labels, "int32")
    checks = [tf.debugging.assert_less(labels, num_classes,
                                       message=BAD_LABEL),
              tf.debugging.assert_non_negative(labels, message=BAD_LABEL)]
    with tf.control_dependencies(checks):
        return ops.one_hot(tf.identity(labels), num_classes)


def _width_gradients(model, width, images, targets, teacher, variables,
                     dense):
    with tf.GradientTape() as tape:
        logits = model(images, width=width, training=True)
        soft = targets if teacher is None else teacher
        loss = model.mean_loss(soft, logits)
        scaled = (model.optimizer.scale_loss(loss)
                  if hasattr(model.optimizer, "scale_loss") else loss)
    grads = [None if g is None else ops.convert_to_tensor(g)
             for g in tape.gradient(scaled, variables)]
    if dense:  # the branches of a drawn width return one structure
        grads = [ops.zeros_like(v) if g is None else g
                 for g, v in zip(grads, variables)]
    return grads, loss, logits


def _after(images, grads):
    """Orders the next width after the previous one's gradients (memory)."""
    with tf.control_dependencies([g for g in grads if g is not None]):
        return tf.identity(images)


def _add(total, grad):
    if grad is None:
        return total
    return grad if total is None else total + grad
