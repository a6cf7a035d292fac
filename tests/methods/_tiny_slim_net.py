"""The methods' test backbone: one SlimResNet residual block, nothing more."""

import keras

from keras_slim.backbones._resnet_blocks import ResidualBlock
from keras_slim.backbones.slim_backbone import SlimBackbone
from keras_slim.layers import SlimConv2D
from keras_slim.layers import slim_batch_norm


@keras.saving.register_keras_serializable(package="keras_slim_tests")
class TinySlimNet(SlimBackbone):
    """A slimmable stem and one downsampling SlimResNet block, pooled.

    A recipe test checks what the recipe does with the widths (which update,
    which loss, which trace), not the depth of the network. Tracing a
    SlimResNet-18 (17 convolutions, each sliced per width, twice per step
    for two views and again for a teacher) took most of such a test's time;
    this network has the same kinds of layers (an unsliced-input stem, a
    residual block with a projection shortcut, switchable or slim BN) and
    the features of `SlimResNet(base_width=b)` (`8 * b` channels at width
    1.0), in a fraction of the trace.

    Args:
        widths: a `keras_slim.Widths`, a width list or its config dict.
        base_width: the stem's channels; the block has `8 * base_width`.
        input_shape: image shape `(height, width, channels)`.
        synchronized: bool, cross-replica BatchNorm statistics.
        bn_momentum: float, moving-average momentum of a width list's
            BatchNorm statistics (a range's are calibrated instead).
        **kwargs: base `keras.Model` arguments (`name`, `dtype`).

    Example:

    ```python
    import numpy as np
    from tests.methods._tiny_slim_net import TinySlimNet

    backbone = TinySlimNet(widths=[1.0, 0.5], base_width=4)
    assert backbone(np.zeros((2, 8, 8, 3)), width=0.5).shape == (2, 16)
    ```
    """

    def __init__(self, widths=(1.0, 0.5), base_width=4,
                 input_shape=(None, None, 3), synchronized=False,
                 bn_momentum=0.9, **kwargs):
        super().__init__(widths=widths, input_shape=input_shape,
                         synchronized=synchronized, **kwargs)
        self.base_width = int(base_width)
        self.bn_momentum = float(bn_momentum)
        norm_kwargs = {"synchronized": self.synchronized}
        if not self.widths.is_range:
            norm_kwargs["momentum"] = self.bn_momentum
        self.stem_conv = SlimConv2D(self.base_width, 3, self.widths,
                                    slice_input=False, name="stem_conv")
        self.stem_norm = slim_batch_norm(self.widths, name="stem_bn",
                                         **norm_kwargs)
        self.block = ResidualBlock(
            8 * self.base_width, strides=2, in_channels=self.base_width,
            bottleneck=False, widths=self.widths, norm_kwargs=norm_kwargs,
            zero_init_residual=False, name="block")
        self.build()

    def forward(self, x, run):
        x = run.relu(run.norm(self.stem_norm, run.conv(self.stem_conv, x)))
        x = run.stage(self.block.forward(x, run), 2)
        return run.global_pool(x)

    def feature_dim(self, width=None):
        return self.widths.channels(8 * self.base_width, width)

    def get_config(self):
        config = super().get_config()
        config.update(base_width=self.base_width,
                      bn_momentum=self.bn_momentum)
        return config
