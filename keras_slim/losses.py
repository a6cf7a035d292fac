"""Self-supervised losses and metrics for slimmable pretraining.

Small pure functions: tensors in, tensors out.

Conventions shared by every function here:

* Losses return a **per-example** vector of shape `(batch,)`. The caller sums
  it and divides by the *global* batch size (`keras.losses` style reduction
  under `tf.distribute`: each replica contributes `sum(local) / global_batch`
  and the gradients are summed across replicas). The only scalar outputs are
  `group_regularization` (a weight penalty) and the monitoring metrics
  `alignment`, `uniformity` and `embedding_std`.
* Inputs may be float16 / bfloat16 / float32; they are cast to float32 first,
  and every output is float32 (softmax, log-softmax and norms are never
  computed in half precision).
* Everything is traceable by `tf.function(jit_compile=True)`: static shapes,
  no Python branching on tensor values. Branches only look at static
  properties (dtypes, static shapes, the number of replicas in sync).
"""

import numpy as np
import tensorflow as tf
from keras import ops

__all__ = [
    "alignment",
    "byol_loss",
    "contrastive_accuracy",
    "contrastive_loss",
    "distillation_loss",
    "embedding_std",
    "group_regularization",
    "l2_normalize",
    "moco_logits",
    "negative_cosine",
    "simclr_logits",
    "uniformity",
]

# Added to masked logits (self-similarities of NT-Xent). Large enough that
# exp(logit - max) underflows to exactly 0 in float32, small enough to stay
# finite after subtraction of any realistic logit.
_MASK_VALUE = -1e9


def _f32(x):
    """Converts `x` to a float32 tensor (upcasting half precision inputs)."""
    x = ops.convert_to_tensor(x)
    if x.dtype != "float32":
        x = ops.cast(x, "float32")
    return x


def _scalar_f32(x):
    """A Python number or tensor (e.g. a temperature) as float32."""
    if isinstance(x, (int, float)):
        return float(x)
    return _f32(x)


def l2_normalize(x, axis=-1, epsilon=1e-12):
    """L2-normalizes `x` along `axis`, in float32.

    `x / sqrt(max(sum(x ** 2, axis), epsilon))`, the same convention as
    `tf.math.l2_normalize` (a zero vector stays zero, no NaN).

    Args:
        x: tensor of any floating dtype; it is cast to float32 first.
        axis: axis to normalize over.
        epsilon: lower bound on the squared norm.

    Returns:
        float32 tensor of the shape of `x`.
    """
    x = _f32(x)
    square_sum = ops.sum(ops.square(x), axis=axis, keepdims=True)
    return x * ops.rsqrt(ops.maximum(square_sum, epsilon))


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
    queue = ops.stop_gradient(_f32(queue))
    positive = ops.sum(q * k, axis=-1, keepdims=True)
    negatives = ops.matmul(q, ops.transpose(queue))
    logits = ops.concatenate([positive, negatives], axis=-1)
    return logits / _scalar_f32(temperature)


def _gather_from_replicas(tensors, gather_across_replicas):
    """All-gathers `tensors` along axis 0 over the replicas in sync.

    Returns `(gathered, offset)` where `offset` is the row of this replica's
    first example in the gathered tensors. Outside a strategy (default replica
    context), in cross-replica context, with one replica, or when
    `gather_across_replicas` is False, returns the local tensors and 0.
    """
    ctx = tf.distribute.get_replica_context()
    if (not gather_across_replicas or ctx is None
            or ctx.num_replicas_in_sync == 1):
        return list(tensors), 0
    gathered = ctx.all_gather(list(tensors), axis=0)
    local_batch = ops.shape(tensors[0])[0]
    replica_id = ops.cast(ctx.replica_id_in_sync_group, "int32")
    return gathered, replica_id * local_batch


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
    (z1_all, z2_all), offset = _gather_from_replicas(
        [z1, z2], gather_across_replicas)
    n = ops.shape(z1)[0]
    global_n = ops.shape(z1_all)[0]
    labels = ops.arange(n, dtype="int32") + offset
    self_mask = ops.cast(ops.one_hot(labels, global_n), "bool")
    temperature = _scalar_f32(temperature)

    def _logits(q, other_all, same_all):
        cross = ops.matmul(q, ops.transpose(other_all)) / temperature
        same = ops.matmul(q, ops.transpose(same_all)) / temperature
        same = ops.where(self_mask, ops.cast(_MASK_VALUE, "float32"), same)
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
    (k_all,), offset = _gather_from_replicas([l2_normalize(keys)], True)
    logits = ops.matmul(q, ops.transpose(k_all)) / _scalar_f32(temperature)
    labels = ops.arange(ops.shape(q)[0], dtype="int32") + offset
    return logits, labels


def _labels_or_zeros(logits, labels):
    if labels is None:
        return ops.zeros((ops.shape(logits)[0],), dtype="int32")
    return ops.cast(labels, "int32")


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
    logits = _f32(logits)
    labels = _labels_or_zeros(logits, labels)
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
    logits = _f32(logits)
    labels = _labels_or_zeros(logits, labels)
    predicted = ops.cast(ops.argmax(logits, axis=-1), "int32")
    return ops.cast(ops.equal(predicted, labels), "float32")


def distillation_loss(student_logits, teacher_logits, temperature,
                      form="kl"):
    """SlimCLR's online distillation from the full width, per example.

    `KD_i = T^2 * KL(softmax(sg(t_i) / T) || softmax(s_i / T))`
    (Zhao et al., "Slimmable Networks for Contrastive Self-supervised
    Learning", arXiv 2209.15525; Hinton et al. 2015 for the `T^2` factor),
    where `t` are the full-width logits of the same step and `s` the logits of
    a smaller width. The teacher's gradient is stopped here. SlimCLR writes it
    as the cross-entropy `-T^2 sum p_t log p_s`; the KL differs from it by the
    teacher entropy, a constant for the student, so the gradient w.r.t. `s`
    is the same, `T * (softmax(s / T) - softmax(t / T))`, while the logged
    value reads 0 when the student matches the teacher.

    Args:
        student_logits: `(batch, classes)` logits of the student (sub-width).
        teacher_logits: `(batch, classes)` logits of the teacher (full width).
        temperature: positive float or scalar tensor (SlimCLR: 5 for MoCo v2
            and SimCLR, 1 for MoCo v3).
        form: `"kl"` (reads 0 when the student matches) or
            `"cross_entropy"`, `-T^2 sum p_t log p_s` (SlimCLR's
            `kd_distill_loss_v2`, whose value includes the teacher's entropy).
            Same gradient.

    Returns:
        float32 vector of shape `(batch,)`.
    """
    if form not in ("kl", "cross_entropy"):
        raise ValueError(
            f"`form` must be 'kl' or 'cross_entropy', got {form!r}.")
    temperature = _scalar_f32(temperature)
    teacher = ops.stop_gradient(_f32(teacher_logits))
    student = _f32(student_logits)
    teacher_log_probs = ops.log_softmax(teacher / temperature, axis=-1)
    student_log_probs = ops.log_softmax(student / temperature, axis=-1)
    teacher_probs = ops.exp(teacher_log_probs)
    if form == "cross_entropy":
        value = -ops.sum(teacher_probs * student_log_probs, axis=-1)
    else:
        value = ops.sum(
            teacher_probs * (teacher_log_probs - student_log_probs), axis=-1)
    return value * (temperature * temperature)


def _cosine_to_constant(p, z):
    p = l2_normalize(p)
    z = ops.stop_gradient(l2_normalize(z))
    return ops.sum(p * z, axis=-1)


def negative_cosine(p, z):
    """Negative cosine similarity `-cos(p, sg(z))`, per example.

    SimSiam's loss term `D(p, z) = -p/||p|| . sg(z)/||z||` (Chen & He 2021,
    "Exploring Simple Siamese Representation Learning", arXiv 2011.10566);
    also US3L's sub-width distillation `-cos(pred(f_w(x_s)), sg(EMA(x_t)))`
    (Cao, Sun, Zhou, CVPR 2023). No gradient flows into `z`.
    The symmetric SimSiam loss is `0.5 * (D(p1, z2) + D(p2, z1))`.

    Args:
        p: `(batch, dim)` predictions.
        z: `(batch, dim)` targets (gradient stopped).

    Returns:
        float32 vector of shape `(batch,)`, in `[-1, 1]`.
    """
    return -_cosine_to_constant(p, z)


def byol_loss(p, z):
    """BYOL regression loss `||p/|p| - sg(z)/|z|||^2 = 2 - 2 cos(p, sg(z))`.

    Grill et al. 2020, "Bootstrap Your Own Latent", arXiv 2006.07733, per
    example; `z` is the target network's projection (gradient stopped). The
    symmetric BYOL loss adds the term with the views swapped.

    Args:
        p: `(batch, dim)` online predictions.
        z: `(batch, dim)` target projections.

    Returns:
        float32 vector of shape `(batch,)`, in `[0, 4]`.
    """
    return 2.0 - 2.0 * _cosine_to_constant(p, z)


def _group_index(channels, groups):
    """Static group index of each output channel (numpy float array).

    As the official GroupReg: groups of `channels // groups` channels, the
    last one taking the remainder; with fewer channels than groups every
    channel is in the last group.
    """
    groups = max(1, int(groups))
    size = channels // groups
    if size == 0:
        return np.full(channels, groups - 1, "float32")
    index = np.minimum(np.arange(channels) // size, groups - 1)
    return index.astype("float32")


def group_regularization(kernel, strength, alpha, groups=8, binned=True):
    """US3L group regularization of a kernel, a scalar penalty.

    Cao, Sun, Zhou, "Three Guidelines You Should Know for Universally
    Slimmable Self-Supervised Learning" (US3L), CVPR 2023. The output channels
    (last axis) are split into `groups` contiguous groups of
    `C // groups` channels, the last group also taking the remainder; group
    `i` (0-based, 0 = leading channels, those shared by every width) gets the
    L2 coefficient `strength * (1 - alpha * i)`:

        R = sum_i strength * (1 - alpha * i) * sum(kernel[..., group_i] ** 2)

    so trailing channels (used only by wide networks) are decayed less. US3L:
    `groups = 8`, `strength = 5e-5` (ResNet-18), `alpha` ramping 0 -> 0.05
    over the first half of training; it replaces weight decay. As the
    official `losses/regularizers/GroupReg.py`: a tensor with fewer output
    channels than groups gets the last group's coefficient throughout, and a
    dense kernel (`binned=False`) gets `strength` throughout.

    Args:
        kernel: weight tensor or variable, output channels on the last axis
            (conv `(kh, kw, in, out)`, dense `(in, out)`) with a static last
            dimension. Pass the kernel (or slice) being regularized.
        strength: float or scalar tensor, `lambda`.
        alpha: float or scalar tensor (may change during training).
        groups: number of groups (a Python int).
        binned: False: plain L2 `strength * sum(kernel ** 2)` (the official
            treatment of 2-D linear weights).

    Returns:
        float32 scalar.
    """
    kernel = _f32(kernel)
    if not binned:
        return _scalar_f32(strength) * ops.sum(ops.square(kernel))
    channels = kernel.shape[-1]
    if channels is None:
        raise ValueError(
            "group_regularization needs a static number of output channels "
            f"(last axis). Received a kernel of shape {kernel.shape}."
        )
    if int(groups) < 1:
        raise ValueError(f"`groups` must be >= 1. Received: groups={groups}")
    reduce_axes = tuple(range(len(kernel.shape) - 1))
    per_channel = ops.sum(ops.square(kernel), axis=reduce_axes)
    index = ops.convert_to_tensor(_group_index(channels, groups))
    coefficients = _scalar_f32(strength) * (1.0 - _scalar_f32(alpha) * index)
    return ops.sum(coefficients * per_channel)


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
    logits = ops.matmul(x, ops.transpose(x)) / _scalar_f32(temperature)
    eye = ops.eye(2 * n, dtype="bool")
    logits = ops.where(eye, ops.cast(_MASK_VALUE, "float32"), logits)
    partner = ops.concatenate([ops.arange(n) + n, ops.arange(n)], axis=0)
    rows = contrastive_loss(logits, partner)
    return 0.5 * (rows[:n] + rows[n:])


def alignment(z1, z2, alpha=2):
    """Alignment metric `E ||f(x) - f(y)||_2^alpha` over positive pairs.

    Wang & Isola 2020, "Understanding Contrastive Representation Learning
    through Alignment and Uniformity on the Hypersphere", arXiv 2005.10242.
    Embeddings are L2-normalized here. Lower is better; in `[0, 2^alpha]`.

    Args:
        z1: `(batch, dim)` embeddings of one view.
        z2: `(batch, dim)` embeddings of the other view (row-aligned).
        alpha: positive exponent (2 in the paper).

    Returns:
        float32 scalar.
    """
    z1 = l2_normalize(z1)
    z2 = l2_normalize(z2)
    squared = ops.sum(ops.square(z1 - z2), axis=-1)
    if alpha == 2:
        powered = squared
    else:
        powered = ops.power(ops.maximum(squared, 0.0), alpha / 2.0)
    return ops.mean(powered)


def uniformity(z, t=2):
    """Uniformity metric `log E_{i != j} exp(-t ||f(x_i) - f(x_j)||^2)`.

    Wang & Isola 2020 (arXiv 2005.10242), over all distinct pairs of the
    batch, embeddings L2-normalized here; computed with a log-sum-exp. Lower
    is more uniform: about `-t * 2 = -4` (t=2) for a uniform spread in high
    dimension, 0 for a collapsed batch. Needs a batch of at least 2.

    Args:
        z: `(batch, dim)` embeddings.
        t: positive temperature (2 in the paper).

    Returns:
        float32 scalar.
    """
    z = l2_normalize(z)
    n = ops.shape(z)[0]
    gram = ops.matmul(z, ops.transpose(z))
    squared_distance = ops.maximum(2.0 - 2.0 * gram, 0.0)
    exponent = -float(t) * squared_distance
    off_diagonal = ops.logical_not(ops.cast(ops.eye(n), "bool"))
    exponent = ops.where(
        off_diagonal, exponent, ops.cast(_MASK_VALUE, "float32"))
    n_float = ops.cast(n, "float32")
    log_pairs = ops.log(n_float * (n_float - 1.0))
    return ops.logsumexp(exponent) - log_pairs


def embedding_std(z):
    """Mean over dimensions of the per-dimension std of normalized embeddings.

    The collapse monitor of SimSiam (Chen & He 2021, arXiv 2011.10566, Fig. 2):
    `mean_d std_batch(z / ||z||)_d`. About `1 / sqrt(dim)` for embeddings
    spread over the sphere, 0 for a collapsed (constant) output. The std is
    the population std (divides by `batch`).

    Args:
        z: `(batch, dim)` embeddings.

    Returns:
        float32 scalar.
    """
    z = l2_normalize(z)
    return ops.mean(ops.std(z, axis=0))
