"""Contrastive (InfoNCE / NT-Xent) logits, loss and accuracy, per example."""

from keras import ops

from keras_slim.losses._replicas import gather_from_replicas
from keras_slim.losses._tensors import MASK_VALUE
from keras_slim.losses._tensors import as_float32
from keras_slim.losses._tensors import l2_normalize
from keras_slim.losses._tensors import labels_or_zeros
from keras_slim.losses._tensors import scalar_float32


def moco_logits(query, key, queue, temperature):
    """MoCo logits: positive key at column 0, queue negatives after it.

    `logits = [q . k, q . queue^T] / temperature`, with `q` and `k`
    L2-normalized here (He et al. 2020, "Momentum Contrast for Unsupervised
    Visual Representation Learning", arXiv 1911.05722; MoCo v2 arXiv
    2003.04297). SlimCLR (Zhao et al., arXiv 2209.15525) uses it per width:
    `l_w = [q_w . k, q_w . queue]` with `k` from the full-width momentum
    encoder. Pair it with `contrastive_loss(logits)` (labels 0).

    No gradient flows into `key` or `queue` (they are constants in MoCo: the
    momentum encoder is not trained by backpropagation).

    Args:
        query: `(batch, dim)` queries (normalized or not).
        key: `(batch, dim)` positive keys (normalized or not).
        queue: `(queue_size, dim)` negative keys, already L2-normalized
            (the queue stores normalized keys; it is not re-normalized here).
        temperature: positive float or scalar tensor.

    Returns:
        float32 logits of shape `(batch, 1 + queue_size)`.
    """
    q = l2_normalize(query)
    k = ops.stop_gradient(l2_normalize(key))
    queue = ops.stop_gradient(as_float32(queue))
    positive = ops.sum(q * k, axis=-1, keepdims=True)
    negatives = ops.matmul(q, ops.transpose(queue))
    logits = ops.concatenate([positive, negatives], axis=-1)
    return logits / scalar_float32(temperature)


def simclr_logits(z1, z2, temperature, gather_across_replicas=True):
    """NT-Xent logits of SimCLR, with negatives from every replica.

    Chen, Kornblith, Norouzi, Hinton 2020, "A Simple Framework for Contrastive
    Learning of Visual Representations", arXiv 2002.05709. For a local batch
    of `n` examples, two views `z1`, `z2` (L2-normalized here), and the
    global (all-replica) batches `z1_all`, `z2_all` of `N` examples (the
    concatenation over replicas in replica order; `N = n` on one device):

        logits_a = [z1 . z2_all^T  |  z1 . z1_all^T (self masked)] / T
        logits_b = [z2 . z1_all^T  |  z2 . z2_all^T (self masked)] / T

    Layout (both of shape `(n, 2 * N)`):

    * columns `[0, N)`: similarity to every example of the *other* view; the
      positive of local row `i` is column `labels[i] = offset + i`, where
      `offset = replica_id * n` is this replica's first row in the gathered
      batch;
    * columns `[N, 2N)`: similarity to every example of the *same* view; the
      self-similarity (column `N + labels[i]`) is set to -1e9 (after the
      division by `T`), so it takes no softmax mass.

    Every example thus has 1 positive and `2N - 2` negatives. The SimCLR loss
    is `contrastive_loss(logits_a, labels) + contrastive_loss(logits_b,
    labels)` per example; summed over the local batch and divided by
    `2 * global_batch` it is the paper's mean over the `2N` augmented samples.

    Under `tf.distribute` (replica context, more than one replica in sync) the
    views are gathered with `ReplicaContext.all_gather`, whose gradient sums
    the incoming gradients over replicas, so per-replica gradients of
    `sum(loss) / global_batch` add up to the single-device gradient.

    Args:
        z1: `(batch, dim)` embeddings of the first view.
        z2: `(batch, dim)` embeddings of the second view.
        temperature: positive float or scalar tensor (0.1 to 0.5 usual).
        gather_across_replicas: if False, negatives come from the local
            batch only (and `labels = arange(batch)`).

    Returns:
        `(logits_a, logits_b, labels)`: float32 logits of shape
        `(batch, 2 * global_batch)` for view-1 and view-2 queries, and int32
        labels of shape `(batch,)` shared by both.
    """
    z1 = l2_normalize(z1)
    z2 = l2_normalize(z2)
    (z1_all, z2_all), offset = gather_from_replicas(
        [z1, z2], gather_across_replicas)
    n = ops.shape(z1)[0]
    global_n = ops.shape(z1_all)[0]
    labels = ops.arange(n, dtype="int32") + offset
    self_mask = ops.cast(ops.one_hot(labels, global_n), "bool")
    temperature = scalar_float32(temperature)

    def _logits(q, other_all, same_all):
        cross = ops.matmul(q, ops.transpose(other_all)) / temperature
        same = ops.matmul(q, ops.transpose(same_all)) / temperature
        same = ops.where(self_mask, ops.cast(MASK_VALUE, "float32"), same)
        return ops.concatenate([cross, same], axis=-1)

    logits_a = _logits(z1, z2_all, z1_all)
    logits_b = _logits(z2, z1_all, z2_all)
    return logits_a, logits_b, labels


def key_logits(queries, keys, temperature):
    """Logits of local queries against the keys of every replica.

    MoCo v3's contrastive logits (Chen, Xie, He 2021, arXiv 2104.02057), also
    US3L's SimCLR-momentum loss: `logits = q . k_all^T / T` with `q`, `k`
    L2-normalized and `k_all` the keys gathered from all replicas (in replica
    order); the positive of local row `i` is `labels[i] = offset + i`.

    Returns:
        `(logits, labels)`: float32 `(batch, global_batch)` and int32
        `(batch,)`.
    """
    q = l2_normalize(queries)
    (k_all,), offset = gather_from_replicas([l2_normalize(keys)], True)
    logits = ops.matmul(q, ops.transpose(k_all)) / scalar_float32(temperature)
    labels = ops.arange(ops.shape(q)[0], dtype="int32") + offset
    return logits, labels


def contrastive_loss(logits, labels=None):
    """Per-example softmax cross-entropy `-log softmax(logits)[label]`.

    InfoNCE (van den Oord et al. 2018, arXiv 1807.03748) as used by MoCo and
    SimCLR: `L_i = -logits[i, y_i] + logsumexp_j logits[i, j]`. The logits are
    expected already divided by the temperature (`moco_logits`,
    `simclr_logits` do it).

    Args:
        logits: `(batch, classes)` logits.
        labels: `(batch,)` integer index of the positive; None means 0 for
            every example (the MoCo layout, positive at column 0).

    Returns:
        float32 vector of shape `(batch,)`.
    """
    logits = as_float32(logits)
    labels = labels_or_zeros(logits, labels)
    log_probs = ops.log_softmax(logits, axis=-1)
    picked = ops.take_along_axis(log_probs, labels[:, None], axis=-1)
    return -picked[:, 0]


def contrastive_accuracy(logits, labels=None):
    """Per-example top-1 accuracy of the positive: 1.0 if `argmax == label`.

    Ties resolve to the lowest index (`argmax`).

    Args:
        logits: `(batch, classes)` logits.
        labels: `(batch,)` integer labels; None means 0 (MoCo layout).

    Returns:
        float32 vector of 0.0 / 1.0, shape `(batch,)`.
    """
    logits = as_float32(logits)
    labels = labels_or_zeros(logits, labels)
    predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
    return ops.cast(ops.equal(predicted, labels), "float32")


def nt_xent_v2(q, k, temperature):
    """US3L's NT-Xent of online rows against momentum-teacher rows, per example.

    `InfoNCEv2_distill.py` `nt_xentv2` (Cao, Sun, Zhou, CVPR 2023): the 2N
    normalized rows `x = [q; sg(k)]`, similarities `x x^T / T` without the
    diagonal, row `i`'s positive its partner (`q_i <-> k_i`), cross-entropy
    averaged over the 2N rows: the denominators hold online-online and
    teacher-teacher pairs too, and the teacher rows' terms reach `q` through
    their negatives. Local to each replica, as the official code (no gather).

    Args:
        q: `(batch, dim)` online embeddings.
        k: `(batch, dim)` teacher embeddings (gradient stopped).
        temperature: positive float.

    Returns:
        float32 vector `(batch,)`: the mean of row `q_i`'s and row `k_i`'s
        terms, so its mean over the batch is the official loss.
    """
    q = l2_normalize(q)
    k = ops.stop_gradient(l2_normalize(k))
    x = ops.concatenate([q, k], axis=0)
    n = ops.shape(q)[0]
    logits = ops.matmul(x, ops.transpose(x)) / scalar_float32(temperature)
    eye = ops.eye(2 * n, dtype="bool")
    logits = ops.where(eye, ops.cast(MASK_VALUE, "float32"), logits)
    partner = ops.concatenate([ops.arange(n) + n, ops.arange(n)], axis=0)
    rows = contrastive_loss(logits, partner)
    return 0.5 * (rows[:n] + rows[n:])
