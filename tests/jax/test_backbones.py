"""Backbones on JAX: `backbone(x, width=w)`, `subnetwork(w)` and `profile`."""

import keras
import numpy as np
import pytest

from keras_slim import profile
from keras_slim.backbones import SlimMobileNetV2
from keras_slim.backbones import SlimResNet

# The same profiles printed on KERAS_BACKEND=tensorflow (2026-12-05): the
# cost of a width does not depend on the backend.
TENSORFLOW_PROFILES = {
    ("resnet", 1.0): (176952, 175752, 8871936),
    ("resnet", 0.5): (44892, 44292, 2273280),
    ("mobilenet", 1.0): (2257984, 2223872, 6112128),
    ("mobilenet", 0.5): (706224, 687680, 1956160),
}


def _backbone(name):
    keras.utils.set_random_seed(0)
    if name == "resnet":
        return SlimResNet(depth=18, stem="cifar", base_width=8,
                          widths=[1.0, 0.5])
    return SlimMobileNetV2(widths=[1.0, 0.5], input_shape=(32, 32, 3))


@pytest.mark.parametrize("name", ["resnet", "mobilenet"])
def test_subnetworks_and_profiles_match_the_backbone(name):
    backbone = _backbone(name)
    x = np.random.default_rng(0).random((2, 32, 32, 3)).astype("float32")
    for width in (1.0, 0.5):
        expected = keras.ops.convert_to_numpy(backbone(x, width=width))
        plain = backbone.subnetwork(width)
        np.testing.assert_allclose(keras.ops.convert_to_numpy(plain(x)),
                                   expected, atol=1e-6)
        cost = profile(backbone, width, input_shape=(32, 32, 3))
        assert (cost.params, cost.trainable_params, cost.flops) == (
            TENSORFLOW_PROFILES[(name, width)])
        assert cost.params == plain.count_params()
