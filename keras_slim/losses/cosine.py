"""Losses of a prediction against a stopped-gradient target: SimSiam, BYOL."""

from keras import ops

from keras_slim.losses._tensors import l2_normalize


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
