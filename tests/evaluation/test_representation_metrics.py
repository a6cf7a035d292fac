import math

import numpy as np
import pytest

from keras_slim.evaluation import alignment
from keras_slim.evaluation import alignment_uniformity
from keras_slim.evaluation import uniformity
from tests.methods._helpers import tiny_backbone


def test_hand_computed_values():
    # Three unit vectors: squared distances 2 (x, y), 4 (x, -x), 2 (y, -x).
    points = np.array([[3.0, 0.0], [0.0, 0.5], [-2.0, 0.0]])
    expected = math.log((math.exp(-4) + math.exp(-8) + math.exp(-4)) / 3)
    assert uniformity(points, t=2) == pytest.approx(expected, rel=1e-12)
    assert uniformity(points, t=1) == pytest.approx(
        math.log((2 * math.exp(-2) + math.exp(-4)) / 3), rel=1e-12)
    # Pairs: identical direction (0), orthogonal (sqrt 2), opposite (2).
    views = np.array([[5.0, 0.0], [1.0, 0.0], [2.0, 0.0]])
    assert alignment(points, views, alpha=2) == pytest.approx((0 + 2 + 4) / 3)
    assert alignment(points, views, alpha=1) == pytest.approx(
        (0 + math.sqrt(2) + 2) / 3)


def test_collapse_and_blocked_computation_against_brute_force(rng):
    collapsed = np.ones((5, 4))
    assert alignment(collapsed, 2 * collapsed) == 0.0
    assert uniformity(collapsed) == pytest.approx(0.0, abs=1e-12)
    # More rows than one block (512): the blocked sum equals the full one.
    x = rng.normal(size=(700, 3))
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    squared = ((unit[:, None] - unit[None]) ** 2).sum(-1)
    upper = squared[np.triu_indices(700, k=1)]
    assert uniformity(x, t=2) == pytest.approx(
        np.log(np.mean(np.exp(-2 * upper))), rel=1e-9)


def test_backbone_features_at_a_width(rng):
    backbone = tiny_backbone()
    view1 = rng.random((6, 8, 8, 3), dtype="float32")
    view2 = np.clip(view1 + rng.normal(0, 0.05, view1.shape), 0, 1)
    result = alignment_uniformity(backbone, view1, view2, width=0.5)
    f1 = np.asarray(backbone(view1, width=0.5), "float64")
    f2 = np.asarray(backbone(view2.astype("float32"), width=0.5), "float64")
    assert set(result) == {"alignment", "uniformity"}
    assert result["alignment"] == pytest.approx(alignment(f1, f2), rel=1e-4)
    assert result["uniformity"] == pytest.approx(
        (uniformity(f1) + uniformity(f2)) / 2, rel=1e-4)
    assert 0 < result["alignment"] < 4 and -8 < result["uniformity"] < 0


def test_bad_input(rng):
    backbone = tiny_backbone()
    x = rng.random((4, 8, 8, 3))
    with pytest.raises(ValueError, match="same shape"):
        alignment_uniformity(backbone, x, x[:3])
    with pytest.raises(ValueError, match="at least 2"):
        uniformity(np.ones((1, 3)))
    with pytest.raises(ValueError, match="pair row by row"):
        alignment(np.ones((3, 2)), np.ones((2, 2)))
    with pytest.raises(ValueError, match="`alpha`"):
        alignment(np.ones((3, 2)), np.ones((3, 2)), alpha=0)
    with pytest.raises(ValueError, match="`t`"):
        uniformity(np.ones((3, 2)), t=-2)
    with pytest.raises(ValueError, match=r"\(N, dim\)"):
        uniformity(np.ones(3))
