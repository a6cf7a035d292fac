"""Representation monitors: alignment, uniformity, embedding spread."""

from keras import ops

from keras_slim.losses._tensors import MASK_VALUE
from keras_slim.losses._tensors import l2_normalize


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
        off_diagonal, exponent, ops.cast(MASK_VALUE, "float32"))
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
