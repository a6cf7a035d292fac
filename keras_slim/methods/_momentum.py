"""Momentum (EMA) encoders and the MoCo key queue, distribution-safe."""

import keras
import numpy as np
from keras import ops

from keras_slim import _backend
from keras_slim import losses


def clone_layer(layer, name, input_shape=None):
    """A fresh copy of a Keras layer/model, named `name`, same weights."""
    config = dict(layer.get_config(), name=name)
    copy = layer.__class__.from_config(config)
    if not copy.built:
        copy.build(input_shape)
    for target, source in zip(copy.weights, layer.weights):
        # A copy of the value: on JAX the two variables would otherwise
        # share one buffer, which a jitted step cannot donate twice.
        target.assign(ops.convert_to_numpy(source))
    return copy


def ema_update(targets, sources, momentum):
    """`t = m * t + (1 - m) * s` for each pair.

    The sources are mirrored (identical on every replica), so every replica
    computes the same new value: the encoders stay in sync without a
    cross-replica reduction. Computed in float32, or float64 for float64
    weights.
    """
    for target, source in zip(targets, sources):
        dtype = "float64" if target.dtype == "float64" else "float32"
        # A Python momentum straight to `dtype` (a cast would round it to
        # float32 first); a scheduled (tensor) momentum is cast.
        if isinstance(momentum, (int, float)):
            m = ops.convert_to_tensor(momentum, dtype)
        else:
            m = ops.cast(momentum, dtype)
        value = ops.convert_to_tensor(source)
        new = m * ops.cast(target, dtype) + (1.0 - m) * ops.cast(value, dtype)
        target.assign(ops.cast(new, target.dtype))


def cosine_momentum(base, step, total_steps):
    """MoCo v3/BYOL schedule: `1 - (1 - base) * (cos(pi * t / T) + 1) / 2`."""
    if not total_steps:
        return ops.convert_to_tensor(base, "float32")
    progress = ops.minimum(
        ops.cast(step, "float32") / float(total_steps), 1.0
    )
    return 1.0 - (1.0 - base) * (ops.cos(np.pi * progress) + 1.0) / 2.0


class KeyQueue:
    """MoCo's queue of negative keys, identical on every replica.

    Keys are gathered from all replicas before they are enqueued, and the
    queue variables are aggregated `only_first_replica`: every replica holds
    and writes the same global keys (a queue with default aggregation would
    silently diverge across replicas).
    """

    def __init__(self, model, size, dim, seed=0):
        self.size = int(size)
        self.dim = int(dim)
        rng = np.random.default_rng(seed)
        initial = rng.standard_normal((self.size, self.dim)).astype("float32")
        initial /= np.linalg.norm(initial, axis=1, keepdims=True)
        model.queue = keras.Variable(
            initial, trainable=False, name="queue",
            aggregation="only_first_replica",
        )
        model.queue_pointer = keras.Variable(
            0, dtype="int32", trainable=False, name="queue_pointer",
            aggregation="only_first_replica",
        )
        self.model = model

    def enqueue(self, keys):
        keys = _gather_replicas(keys)
        keys = ops.cast(losses.l2_normalize(keys), "float32")
        batch = keys.shape[0]
        if batch is not None and self.size % batch:
            raise ValueError(
                f"The queue size ({self.size}) must be a multiple of the "
                f"global batch size ({batch}). Change `queue_size` or the "
                f"batch size, and batch with drop_remainder=True."
            )
        if batch is None:  # e.g. a dataset distributed by a strategy
            batch = ops.shape(keys)[0]
        queue = self.model.queue
        pointer = ops.convert_to_tensor(self.model.queue_pointer)
        updated = ops.scatter_update(
            ops.convert_to_tensor(queue),
            ops.reshape(pointer + ops.arange(batch, dtype="int32"), (-1, 1)),
            keys,
        )
        queue.assign(updated)
        self.model.queue_pointer.assign((pointer + batch) % self.size)


def _gather_replicas(x):
    """`x` of every replica in sync, concatenated along axis 0 in order."""
    replicas = _backend.replica_context()
    return x if replicas is None else replicas.all_gather(x, axis=0)
