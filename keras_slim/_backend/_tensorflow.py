"""The TensorFlow side of `keras_slim._backend`: `tf.distribute` replicas."""

import functools

import keras
import tensorflow as tf


class _Replicas:
    """The replica context of a `tf.distribute` step (several replicas)."""

    def __init__(self, context):
        self._context = context
        self.num_replicas = context.num_replicas_in_sync

    @property
    def replica_id(self):
        return tf.cast(self._context.replica_id_in_sync_group, tf.int32)

    def all_reduce_sum(self, values):
        return self._context.all_reduce(tf.distribute.ReduceOp.SUM, values)

    def all_gather(self, values, axis=0):
        return self._context.all_gather(values, axis=axis)


def replica_context():
    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return None
    return _Replicas(context)


def init_scope():
    return tf.init_scope()


def _backend_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def all_reduce_gradients(optimizer, grads, variables):
    # Keras's TF optimizer all-reduces the gradients in replica context (a
    # no-op without a strategy).
    reduced = optimizer._all_reduce_sum_gradients(
        list(zip(grads, [_backend_variable(v) for v in variables])))
    return [g for g, _ in reduced]


def update_each_variable(optimizer, update, updates, learning_rate):
    # Keras's TF optimizer updates each variable in a cross-replica
    # merge_call, once per copy, with that copy's replica's arguments.
    # `update` is bound into the merged function, not passed as an argument:
    # merge_call regroups its arguments per replica.
    backend_updates = [(g, s, _backend_variable(v)) for g, s, v in updates]
    tf.__internal__.distribute.interim.maybe_merge_call(
        functools.partial(_update_copies, update=update),
        optimizer._distribution_strategy, backend_updates, learning_rate)


def _update_copies(distribution, updates, learning_rate, update):
    for grad, step_size, variable in updates:
        distribution.extended.update(
            variable, update, args=(grad, step_size, learning_rate),
            group=False)
