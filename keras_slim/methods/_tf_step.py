"""The TensorFlow step of the slimmable recipes: everything backend-specific.

The recipes, their bases and heads compute with `keras.ops` only; what needs
TensorFlow itself lives here, so that another backend's step (JAX) can sit
beside this module:

* the training step: one `GradientTape` per width, each width's gradient
  ordered before the next width runs (control dependencies), the optimizer
  applied once per step or once per width;
* the width slots: the step's phase and each random slot's width chosen in
  the graph with `tf.switch_case` (static shapes, a bounded trace count);
* the replicas: the global-batch mean of a loss, the all-gather of MoCo's
  queue keys, the logs Keras can reduce under `MultiWorkerMirroredStrategy`;
* MoCo's Shuffle-BN of the key encoder, a permutation across replicas;
* the stateless random numbers seeded by `(seed, step)` (`keras.random` takes
  no tensor seed) and the non-finite check that stops a step.
"""

import tensorflow as tf
from keras import ops

from keras_slim import losses

NONFINITE = "Non-finite loss at width"
METRICS = ("loss", "ssl_loss", "distill_loss", "accuracy", "grad_norm",
           "embedding_std")
# What a failed `check_numerics` raises out of `model.fit`.
STEP_ERROR = tf.errors.InvalidArgumentError


# ------------------------------------------------------------ small pieces
def stateless_uniform(shape, seed, step, dtype="float32"):
    """Uniform [0, 1) numbers of `shape`, the same wherever `(seed, step)` is."""
    return tf.random.stateless_uniform(
        shape, seed=tf.stack([tf.cast(seed, tf.int64),
                              tf.cast(step, tf.int64)]),
        dtype=dtype,
    )


def add_n(tensors):
    """The sum of a list of tensors, in TensorFlow's `add_n` order."""
    return tf.add_n(list(tensors))


def gather_replicas(x):
    """`x` of every replica in sync, concatenated along axis 0 in order."""
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x
    return ctx.all_gather(x, axis=0)


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


def nonfinite_message(error, step):
    """The `FloatingPointError` text of a failed step, or None if another."""
    if NONFINITE not in str(error):
        return None
    detail = str(error).split(NONFINITE, 1)[1].split(";")[0]
    return (f"{NONFINITE}{detail} at training step {step} (counted from 0; "
            f"the weights are those before it): lower the learning rate, "
            f"check the inputs for NaN/Inf, or use mixed precision with "
            f"loss scaling.")


# ------------------------------------------------------------ the steps
def train_step(model, views):
    """One training step of `model` (a `SlimSSL`) on a pair of views."""
    model.before_targets()
    targets = model.step_targets(views, training=True)
    grads, values = _run_phases(model, views, targets, training=True)
    if not model.per_width_update:
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
    draws = None
    if any(not s.is_static for s in slots):
        dense = True
        draws = model.draw_indices(slots, step)
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
                model, slot, draws[slot.draw], views, targets, teacher,
                training,
            )
        total = [_add(t, g) for t, g in zip(total, grads)]
        values.update(slot_values)
    values["loss"] = tf.add_n([
        values[f"{n}/loss"] * values[f"{n}/active"]
        for n in model.slot_names()
    ])
    if dense:
        total = _dense(total, variables)
    return total, values


def _run_random(model, slot, index, views, targets, teacher, training):
    def branch(width):
        def run():
            grads, values, _ = _run_width(model, slot, width, views, targets,
                                          teacher, training, dense=True)
            return grads, values
        return run

    def skip():
        values = {k: tf.zeros(()) for k in _slot_keys(slot.name)}
        return [tf.zeros_like(v) for v in model.online_variables], values

    branches = [branch(w) for w in slot.candidates] + [skip]
    return tf.switch_case(index, branches)


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
            f"{NONFINITE} {width:g} ({slot.name}); lower the learning "
            f"rate or check the inputs for NaN/Inf.",
        )
        scaled = _scale(model, loss)
    grads = [None] * len(variables)
    if training:
        grads = tape.gradient(scaled, variables)
        if model.per_width_update:
            _apply(model, grads)
    if dense:
        grads = _dense(grads, variables)
    return grads, _width_values(model, slot, out, penalty, grads), out


def _width_values(model, slot, out, penalty, grads):
    # Logged values are this replica's means; Keras averages the metrics
    # over replicas, which gives the global means (the gradient uses the
    # global-batch scaling instead).
    ssl_mean = tf.reduce_mean(tf.cast(out["ssl"], tf.float32))
    distill_mean = tf.zeros(())
    if out.get("distill") is not None:
        distill_mean = tf.reduce_mean(tf.cast(out["distill"], tf.float32))
    accuracy = out.get("accuracy")
    name = slot.name
    return {
        f"{name}/loss": model.combine(slot, ssl_mean, distill_mean) + penalty,
        f"{name}/ssl_loss": ssl_mean,
        f"{name}/distill_loss": distill_mean,
        f"{name}/accuracy": (
            tf.zeros(()) if accuracy is None
            else tf.reduce_mean(tf.cast(accuracy, tf.float32))
        ),
        f"{name}/grad_norm": _grad_norm(model, grads),
        f"{name}/embedding_std": losses.embedding_std(out["embedding"]),
        f"{name}/active": tf.ones(()),
    }


def _slot_keys(name):
    return [f"{name}/{m}" for m in METRICS] + [f"{name}/active"]


def _empty_values(model):
    return {key: tf.zeros(()) for name in model.slot_names()
            for key in _slot_keys(name)}


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


def _add(total, grad):
    if grad is None:
        return total
    if total is None:
        return grad
    return total + grad


# ------------------------------------------------------------ Shuffle-BN
# MoCo's Shuffle-BN for the key encoder, across replicas or split on one.
#
# MoCo's key encoder runs in training mode, so its BatchNorm statistics come
# from the batch it encodes. Computed on each replica's own queries' batch, the
# statistics would leak which examples share a replica (a shortcut the
# contrastive task can exploit). The official code (`_batch_shuffle_ddp` in
# SlimCLR's `models/s_moco.py`, MoCo's `moco/builder.py`) shuffles the key
# images across GPUs first and unshuffles the keys after; its one-GPU CIFAR
# demo emulates the same with a BatchNorm over 8 splits of the batch.
# `shuffled_keys` does both: the global batch is permuted (one permutation,
# the same on every replica, drawn from `(seed, step)`), each replica encodes
# its share in `splits` separately normalized chunks, and the keys are put back
# in order.
def shuffled_keys(encode, images, seed, step, splits=1):
    """`encode(images)` with Shuffle-BN; `encode` maps images to keys.

    Args:
        encode: the key encoder (images -> keys), run in training mode.
        images: this replica's key images.
        seed: int; with `step`, seeds the permutation.
        step: int tensor, the training step.
        splits: chunks each replica's share is encoded in (BatchNorm
            statistics per chunk): the one-device emulation of several GPUs.

    Returns:
        this replica's keys, in the order of `images`.
    """
    local_static = images.shape[0]
    if splits > 1 and local_static is not None and local_static % splits:
        raise ValueError(
            f"key_bn_splits={splits} must divide each replica's batch of "
            f"{local_static} key images. Use a batch size that is a multiple "
            f"of {splits} per replica, or change key_bn_splits.")
    all_images, offset = _gather_by_sum(images)
    local = tf.shape(images)[0]
    total = tf.shape(all_images)[0]
    noise = tf.random.stateless_uniform(
        [total], seed=tf.stack([tf.cast(seed, tf.int64),
                                tf.cast(step, tf.int64)]))
    permutation = tf.argsort(noise)
    mine = tf.gather(all_images, permutation[offset:offset + local])
    mine.set_shape(images.shape)  # gather loses the static image shape
    chunks = tf.split(mine, splits, axis=0) if splits > 1 else [mine]
    keys = tf.concat([encode(chunk) for chunk in chunks], axis=0)
    all_keys, _ = _gather_by_sum(keys)
    unshuffled = tf.gather(all_keys, tf.argsort(permutation))
    mine_keys = unshuffled[offset:offset + local]
    mine_keys.set_shape(keys.shape)
    return mine_keys


def _gather_by_sum(x):
    """All-gathers `x` along axis 0 as a sum of zero-padded copies.

    `ReplicaContext.all_gather` of image batches fails under
    `MultiWorkerMirroredStrategy` in TF 2.21 ("destinations can not be
    empty"); an all-reduce of each replica's rows placed in a zero tensor of
    the global batch gives the same tensor with the collective every
    strategy supports.
    """
    ctx = tf.distribute.get_replica_context()
    if ctx is None or ctx.num_replicas_in_sync == 1:
        return x, 0
    local = tf.shape(x)[0]
    replica = tf.cast(ctx.replica_id_in_sync_group, tf.int32)
    offset = replica * local
    total = local * ctx.num_replicas_in_sync
    rows = tf.reshape(offset + tf.range(local), (-1, 1))
    padded = tf.scatter_nd(rows, x, tf.concat([[total], tf.shape(x)[1:]], 0))
    gathered = ctx.all_reduce(tf.distribute.ReduceOp.SUM, padded)
    gathered.set_shape([None] + list(x.shape[1:]))
    return gathered, offset
