"""Alignment and uniformity of normalized features (Wang and Isola, 2020).

Alignment measures how close the two views of an example land (lower is
better); uniformity how evenly the examples spread over the hypersphere
(lower, i.e. more negative, is more uniform). A collapsed representation has
perfect alignment (0) and the worst uniformity (0).
"""

import numpy as np

from keras_slim.evaluation import _inputs
from keras_slim.evaluation.features import extract_features

# Rows of the pairwise distance matrix computed at once in `uniformity`.
_ROWS_PER_BLOCK = 512


def alignment_uniformity(
    backbone, view1, view2, width=None, alpha=2, t=2, batch_size=256
):
    """Alignment and uniformity of the backbone's features at a width.

    Features are extracted in inference mode and L2-normalized.

    Args:
        backbone: a `keras_slim.backbones.SlimBackbone`.
        view1: images `(N, H, W, C)`: one augmented view of N examples.
        view2: images `(N, H, W, C)`: another view of the same N examples,
            in the same order (positive pairs).
        width: a width of the backbone (default: the largest).
        alpha: float > 0, exponent of the alignment distance.
        t: float > 0, temperature of the uniformity kernel.
        batch_size: int, images per forward pass.

    Returns:
        dict with `"alignment"`: `E ||f(x) - f(y)||^alpha` over positive
        pairs, and `"uniformity"`: `log E exp(-t ||f(x_i) - f(x_j)||^2)` over
        pairs of distinct examples, averaged over the two views.

    Example:

    ```python
    import numpy as np
    from keras_slim.backbones import SlimResNet
    from keras_slim.evaluation import alignment_uniformity

    rng = np.random.default_rng(0)
    crops_a, crops_b = rng.random((2, 8, 8, 8, 3), "float32")
    backbone = SlimResNet(depth=10, base_width=8, widths=[1.0, 0.5])
    metrics = alignment_uniformity(backbone, crops_a, crops_b, width=0.5)
    assert sorted(metrics) == ["alignment", "uniformity"]
    ```

    References:
        - [Wang and Isola, Understanding Contrastive Representation Learning
          through Alignment and Uniformity on the Hypersphere, ICML 2020](
          https://arxiv.org/abs/2005.10242)
    """
    view1 = _inputs.as_images(view1, "view1")
    view2 = _inputs.as_images(view2, "view2")
    if view1.shape != view2.shape:
        raise ValueError(
            f"`view1` and `view2` must be two views of the same examples, "
            f"same shape; got {view1.shape} and {view2.shape}."
        )
    first = extract_features(backbone, view1, width, batch_size)
    second = extract_features(backbone, view2, width, batch_size)
    return {
        "alignment": alignment(first, second, alpha=alpha),
        "uniformity": (uniformity(first, t=t) + uniformity(second, t=t)) / 2,
    }


def alignment(features1, features2, alpha=2):
    """`E ||f(x) - f(y)||^alpha` of row-paired features, L2-normalized first.

    Args:
        features1: float array `(N, D)`.
        features2: float array `(N, D)`, row i the positive of row i of
            `features1`.
        alpha: float > 0.

    Returns:
        float in [0, 2^alpha].
    """
    alpha = _inputs.check_positive_float(alpha, "alpha")
    a = _normalized(features1, "features1")
    b = _normalized(features2, "features2")
    if a.shape != b.shape:
        raise ValueError(
            f"`features1` and `features2` must pair row by row, got shapes "
            f"{a.shape} and {b.shape}."
        )
    distances = np.linalg.norm(a - b, axis=1)
    return float(np.mean(distances**alpha))


def uniformity(features, t=2):
    """`log E exp(-t ||f(x_i) - f(x_j)||^2)` over pairs i < j, normalized.

    Computed in blocks of rows, so memory stays linear in N.

    Args:
        features: float array `(N, D)` with N >= 2.
        t: float > 0.

    Returns:
        float in [-4t, 0].
    """
    t = _inputs.check_positive_float(t, "t")
    x = _normalized(features, "features")
    n = len(x)
    if n < 2:
        raise ValueError(
            "Uniformity compares distinct examples: give at least 2, got "
            f"{n}."
        )
    total = 0.0
    for start in range(0, n, _ROWS_PER_BLOCK):
        rows = x[start:start + _ROWS_PER_BLOCK]
        # For unit vectors ||a - b||^2 = 2 - 2 a.b (clipped: rounding).
        squared = np.maximum(2.0 - 2.0 * rows @ x.T, 0.0)
        later = np.arange(n)[None, :] > np.arange(start, start + len(rows))[
            :, None
        ]
        total += float(np.sum(np.exp(-t * squared[later])))
    pairs = n * (n - 1) / 2
    return float(np.log(total / pairs))


def _normalized(features, name):
    array = _inputs.as_feature_matrix(features, name, "float64")
    norms = np.linalg.norm(array, axis=1, keepdims=True)
    return array / np.maximum(norms, 1e-12)
