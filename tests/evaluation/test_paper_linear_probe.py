"""SlimCLR's linear protocol: augmented crops, frozen BN, SGD, joint probe."""

import numpy as np
import pytest

from keras_slim.evaluation import paper_linear_probe
from tests.evaluation._data import colour_images
from tests.methods._helpers import tiny_backbone


@pytest.fixture(scope="module")
def data():
    return colour_images(24, size=8), colour_images(10, size=8, seed=1)


def _weights(backbone):
    return [np.array(w) for w in backbone.weights]


def test_every_width_learns_and_the_backbone_is_untouched(data):
    (x, y), (xt, yt) = data
    backbone = tiny_backbone(widths=[1.0, 0.5])
    before = _weights(backbone)
    results = {joint: paper_linear_probe(
        backbone, x, y, xt, yt, epochs=30, batch_size=24, learning_rate=2.0,
        milestones=(20,), joint=joint) for joint in (True, False)}
    for result in results.values():
        assert sorted(result.accuracies) == [0.5, 1.0]
        for width, accuracy in result.accuracies.items():
            assert accuracy >= 0.9, (width, accuracy)  # colours: separable
            assert result.classifiers[width].kernel.shape == (
                backbone.feature_dim(width), 3)
    # The largest width learns from the labels alone either way (same seed,
    # same crops); the sub-width's probe also distills it when joint.
    joint, alone = results[True].classifiers, results[False].classifiers
    np.testing.assert_allclose(joint[1.0].kernel, alone[1.0].kernel,
                               rtol=1e-5, atol=1e-6)
    assert np.abs(np.array(joint[0.5].kernel)
                  - np.array(alone[0.5].kernel)).max() > 1e-3
    # Frozen: BatchNorm statistics included (inference mode).
    for a, b in zip(before, _weights(backbone)):
        np.testing.assert_array_equal(a, b)


def test_bad_inputs_are_named(data):
    (x, y), (xt, yt) = data
    backbone = tiny_backbone(widths=[1.0, 0.5])
    with pytest.raises(ValueError, match="one label each"):
        paper_linear_probe(backbone, x, y[:-1], xt, yt, epochs=1)
    with pytest.raises(ValueError):
        paper_linear_probe(backbone, x, y, xt, yt, widths=[0.3], epochs=1)
