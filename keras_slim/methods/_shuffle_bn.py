"""MoCo's Shuffle-BN for the key encoder, across replicas or split on one.

MoCo's key encoder runs in training mode, so its BatchNorm statistics come
from the batch it encodes. Computed on each replica's own queries' batch, the
statistics would leak which examples share a replica (a shortcut the
contrastive task can exploit). The official code (`_batch_shuffle_ddp` in
SlimCLR's `models/s_moco.py`, MoCo's `moco/builder.py`) shuffles the key
images across GPUs first and unshuffles the keys after; its one-GPU CIFAR
demo emulates the same with a BatchNorm over 8 splits of the batch.
`shuffled_keys` does both: the global batch is permuted (one permutation,
the same on every replica, drawn from `(seed, step)`), each replica encodes
its share in `splits` separately normalized chunks, and the keys are put back
in order.
"""

import tensorflow as tf


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
