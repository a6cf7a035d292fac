"""Negatives from every replica: the one cross-replica part of the losses.

NT-Xent and InfoNCE take their negatives from the global batch. Under
`tf.distribute` each replica runs its own step, so that is an all-gather over
the replicas in sync; on JAX the step is one program over the global batch
(`keras.distribution` shards it), which needs no gather. Every other line of
`keras_slim.losses` is `keras.ops`.
"""

from keras import ops

from keras_slim import _backend


def gather_from_replicas(tensors, gather_across_replicas):
    """All-gathers `tensors` along axis 0 over the replicas in sync.

    Returns `(gathered, offset)` where `offset` is the row of this replica's
    first example in the gathered tensors. Outside a strategy (default replica
    context), in cross-replica context, with one replica, on JAX, or when
    `gather_across_replicas` is False, returns the local tensors and 0.

    The gradient of `ReplicaContext.all_gather` sums the incoming gradients
    over replicas, so per-replica gradients of `sum(loss) / global_batch` add
    up to the single-device gradient.
    """
    replicas = _backend.replica_context()
    if not gather_across_replicas or replicas is None:
        return list(tensors), 0
    gathered = replicas.all_gather(list(tensors), axis=0)
    local_batch = ops.shape(tensors[0])[0]
    return gathered, replicas.replica_id * local_batch
