"""Pyramid outputs (`subnetwork(w, outputs="pyramid")`) convert to LiteRT."""

import os

import numpy as np
import pytest

from keras_slim.backbones import SlimMobileNetV2
from keras_slim.backbones import SlimResNet
from keras_slim.export._graphs import save_bundle
from keras_slim.export._graphs import serving_function
from keras_slim.export.conversion import convert_saved_model
from keras_slim.export.verification import litert_ops
from keras_slim.export.verification import run_litert

BACKBONES = {
    "resnet10": (lambda: SlimResNet(depth=10, stem="imagenet", base_width=8,
                                    widths=[1.0, 0.5]), 32),
    "mobilenet_v2": (lambda: SlimMobileNetV2(widths=[1.0, 0.5]), 32),
}


@pytest.mark.parametrize("name", sorted(BACKBONES))
def test_every_width_s_feature_maps_run_in_litert_as_in_keras(name,
                                                              tmp_path):
    make, size = BACKBONES[name]
    backbone = make()
    shape = (size, size, 3)
    images = np.random.default_rng(0).random((4, *shape), "float32")
    for width in backbone.widths:
        pyramid = backbone.subnetwork(width, input_shape=shape,
                                      outputs="pyramid")
        folder = str(tmp_path / f"{name}_{width:g}")
        # As the exporter does: the converter reads the weights as
        # constants (a SavedModel of variables converts to NaN outputs).
        save_bundle({"serving_default": serving_function(pyramid, shape)},
                    folder)
        path = os.path.join(folder, "model.tflite")
        with open(path, "wb") as f:
            f.write(convert_saved_model(folder, "float32"))
        assert not [op for op in litert_ops(path) if "Flex" in op]
        got = run_litert(path, images)
        want = {k: np.asarray(v) for k, v in pyramid(images).items()}
        assert sorted(got) == sorted(want)
        for level, value in want.items():
            assert got[level].shape == value.shape
            scale = max(1.0, float(np.abs(value).max()))
            np.testing.assert_allclose(got[level], value, rtol=0,
                                       atol=1e-4 * scale)
