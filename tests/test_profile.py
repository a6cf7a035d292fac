"""profile(): hand-counted parameters and multiply-adds of tiny backbones."""

import keras
import pytest

import keras_slim
from keras_slim.backbones import SlimBackbone
from keras_slim.layers import SlimConv2D
from keras_slim.layers import SlimDepthwiseConv2D
from keras_slim.layers import slim_batch_norm


@keras.saving.register_keras_serializable(package="tests")
class TinyBackbone(SlimBackbone):
    """conv 3x3 (3->8, stride 2) - BN - ReLU - depthwise 3x3 - BN - pool."""

    def __init__(self, **kwargs):
        kwargs.setdefault("widths", [1.0, 0.5])
        super().__init__(**kwargs)
        self.conv = SlimConv2D(8, 3, self.widths, strides=2,
                               slice_input=False, name="conv")
        self.norm = slim_batch_norm(self.widths, name="bn")
        self.depthwise = SlimDepthwiseConv2D(3, self.widths, use_bias=True,
                                             name="dw")
        self.norm2 = slim_batch_norm(self.widths, name="bn2")
        self.build()

    def forward(self, x, run):
        x = run.relu(run.norm(self.norm, run.conv(self.conv, x)))
        x = run.norm(self.norm2, run.conv(self.depthwise, x))
        return run.global_pool(x)

    def feature_dim(self, width=None):
        return self.widths.channels(8, width)


@pytest.mark.parametrize(
    "width,channels", [(1.0, 8), (0.5, 4)],
)
def test_hand_counted_parameters_and_flops(width, channels):
    backbone = TinyBackbone()
    cost = keras_slim.profile(backbone, width, (6, 6, 3))
    conv = 3 * 3 * 3 * channels            # no bias
    depthwise = 3 * 3 * channels + channels  # with bias
    norms = 2 * 4 * channels               # gamma, beta, mean, variance
    assert cost.params == conv + depthwise + norms
    assert cost.trainable_params == conv + depthwise + 2 * 2 * channels
    # Stride 2 'same' on 6x6 -> 3x3 outputs; the depthwise keeps 3x3.
    assert cost.flops == 9 * (3 * 3 * 3 * channels) + 9 * (3 * 3 * channels)
    assert cost.params == backbone.subnetwork(width).count_params()


def test_profile_needs_a_known_image_size():
    with pytest.raises(ValueError, match="input_shape"):
        keras_slim.profile(TinyBackbone(), 1.0)
    with pytest.raises(ValueError, match="not one of"):
        keras_slim.profile(TinyBackbone(), 0.3, (6, 6, 3))
