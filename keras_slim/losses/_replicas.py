"""The TensorFlow-specific part of the losses: negatives from every replica.

NT-Xent and InfoNCE take their negatives from the global batch. Under
`tf.distribute` that is an all-gather over the replicas in sync, which only
TensorFlow's replica context provides; every other line of `keras_slim.losses`
is `keras.ops`. A second backend's gather (e.g. `jax.lax.all_gather` under
`pmap`/`shard_map`) would sit beside this module with the same signature.
"""

import tensorflow as tf
from keras import ops


def gather_from_replicas(tensors, gather_across_replicas):
    """All-gathers `tensors` along axis 0 over the replicas in sync.

    Returns `(gathered, offset)` where `offset` is the row of this replica's
    first example in the gathered tensors. Outside a strategy (default replica
    context), in cross-replica context, with one replica, or when
    `gather_across_replicas` is False, returns the local tensors and 0.

    The gradient of `ReplicaContext.all_gather` sums the incoming gradients
    over replicas, so per-replica gradients of `sum(loss) / global_batch` add
    up to the single-device gradient.
    """
    ctx = tf.distribute.get_replica_context()
    if (not gather_across_replicas or ctx is None
            or ctx.num_replicas_in_sync == 1):
        return list(tensors), 0
    gathered = ctx.all_gather(list(tensors), axis=0)
    local_batch = ops.shape(tensors[0])[0]
    replica_id = ops.cast(ctx.replica_id_in_sync_group, "int32")
    return gathered, replica_id * local_batch
