"""The JAX side of `keras_slim._backend`: one global program, no replicas.

Under `keras.distribution` JAX compiles the step once for the global arrays
and shards them over the devices: a batch mean, an all-pairs similarity or a
concatenation already covers the global batch, so nothing is gathered by
hand.
"""

import contextlib


def replica_context():
    return None


def init_scope():
    return contextlib.nullcontext()


def all_reduce_gradients(optimizer, grads, variables):
    return list(grads)


def update_each_variable(optimizer, update, updates, learning_rate):
    for grad, step_size, variable in updates:
        update(variable, grad, step_size, learning_rate)
