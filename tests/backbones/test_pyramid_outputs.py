"""subnetwork(w, outputs="pyramid"): the stage feature maps at every width."""

import numpy as np
import pytest

from keras_slim.backbones import SlimMobileNetV2
from keras_slim.backbones import SlimResNet
from keras_slim.backbones._runners import SlimRunner


class _RecordingRunner(SlimRunner):
    """Runs the slimmable network and keeps each stage's feature map."""

    def __init__(self, width):
        super().__init__(width, training=False)
        self.maps = {}

    def stage(self, x, stride):
        self.maps[f"P{int(stride).bit_length() - 1}"] = x
        return x


def _slim_maps(backbone, images, width):
    runner = _RecordingRunner(width)
    backbone.forward(backbone._check_images(images), runner)
    return runner.maps


BACKBONES = {
    "resnet10_imagenet": (lambda: SlimResNet(
        depth=10, stem="imagenet", base_width=8, widths=[1.0, 0.5, 0.25]),
        64, {"P2": 16, "P3": 8, "P4": 4, "P5": 2}),
    "resnet50_cifar": (lambda: SlimResNet(
        depth=50, stem="cifar", base_width=4, widths=[1.0, 0.5]),
        16, {"P0": 16, "P1": 8, "P2": 4, "P3": 2}),
    "mobilenet_v2": (lambda: SlimMobileNetV2(widths=[1.0, 0.5]),
                     64, {"P1": 32, "P2": 16, "P3": 8, "P4": 4, "P5": 2}),
}


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_pyramid_maps_equal_the_slim_network_at_every_width(name):
    make, size, sides = BACKBONES[name]
    backbone = make()
    images = np.random.default_rng(0).random((2, size, size, 3), "float32")
    for width in backbone.widths:
        pyramid = backbone.subnetwork(width, input_shape=(size, size, 3),
                                      outputs="pyramid")
        maps = pyramid(images)
        want = _slim_maps(backbone, images, width)
        assert sorted(maps) == sorted(sides) == sorted(want)
        for level, side in sides.items():
            assert maps[level].shape[:3] == (2, side, side)
            np.testing.assert_allclose(np.asarray(maps[level]),
                                       np.asarray(want[level]),
                                       rtol=1e-4, atol=1e-5)
        # The deepest map is what the pooled features average.
        top = max(maps, key=lambda level: int(level[1:]))
        assert maps[top].shape[-1] == backbone.feature_dim(width)
        pooled = backbone(images, width=width, training=False)
        np.testing.assert_allclose(np.asarray(maps[top]).mean(axis=(1, 2)),
                                   np.asarray(pooled), rtol=1e-4, atol=1e-5)


def test_a_bad_outputs_value_is_named():
    backbone = SlimResNet(depth=18, base_width=4, widths=[1.0, 0.5])
    with pytest.raises(ValueError, match="'pooled' or 'pyramid'"):
        backbone.subnetwork(0.5, outputs="stages")
