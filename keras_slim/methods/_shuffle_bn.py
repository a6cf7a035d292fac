"""MoCo's Shuffle-BN of the key encoder, across replicas or split on one.

MoCo's key encoder runs in training mode, so its BatchNorm statistics come
from the batch it encodes. Computed on each replica's own queries' batch, the
statistics would leak which examples share a replica (a shortcut the
contrastive task can exploit). The official code (`_batch_shuffle_ddp` in
SlimCLR's `models/s_moco.py`, MoCo's `moco/builder.py`) shuffles the key
images across GPUs first and unshuffles the keys after; its one-GPU CIFAR
demo emulates the same with a BatchNorm over 8 splits of the batch.
`shuffled_keys` does both: the global batch is permuted (one permutation,
the same on every replica and backend, drawn from `(seed, step)`), each
replica encodes its share in `splits` separately normalized chunks, and the
keys are put back in order.

On JAX the step is one program over the global batch (no replicas), so only
the splits change the statistics there, as on one TensorFlow device.
"""

from keras import ops

from keras_slim import _backend
from keras_slim._stateless_random import stateless_uniform


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
    local = images.shape[0]
    if splits > 1 and local is not None and local % splits:
        raise ValueError(
            f"key_bn_splits={splits} must divide each replica's batch of "
            f"{local} key images. Use a batch size that is a multiple "
            f"of {splits} per replica, or change key_bn_splits.")
    replicas = _backend.replica_context()
    if local is None:  # a batch distributed by a strategy
        local = ops.shape(images)[0]
    all_images, offset = _gather_by_sum(images, local, replicas)
    total = all_images.shape[0] or ops.shape(all_images)[0]
    permutation = ops.argsort(stateless_uniform(total, seed, step))
    mine = ops.take(all_images, _rows(permutation, offset, local), axis=0)
    chunks = ops.split(mine, splits, axis=0) if splits > 1 else [mine]
    keys = ops.concatenate([encode(chunk) for chunk in chunks], axis=0)
    all_keys, _ = _gather_by_sum(keys, local, replicas)
    unshuffled = ops.take(all_keys, ops.argsort(permutation), axis=0)
    return ops.take(unshuffled, _rows(ops.arange(total), offset, local),
                    axis=0)


def _rows(indices, offset, count):
    """`indices[offset:offset + count]` with a static length."""
    if isinstance(offset, int) and isinstance(count, int):
        return indices[offset:offset + count]
    return ops.slice(indices, [offset], [count])


def _gather_by_sum(x, local, replicas):
    """All-gathers `x` along axis 0 as a sum of zero-padded copies.

    `ReplicaContext.all_gather` of image batches fails under
    `MultiWorkerMirroredStrategy` in TF 2.21 ("destinations can not be
    empty"); an all-reduce of each replica's rows placed in a zero tensor of
    the global batch gives the same tensor with the collective every
    strategy supports.
    """
    if replicas is None:
        return x, 0
    offset = replicas.replica_id * local
    total = local * replicas.num_replicas
    rows = ops.reshape(offset + ops.arange(local, dtype="int32"), (-1, 1))
    padded = ops.scatter(rows, x, (total,) + tuple(x.shape[1:]))
    return replicas.all_reduce_sum(padded), offset
