import keras

from keras_slim.backbones.slim_backbone import SlimBackbone
from keras_slim.layers import SlimConv2D
from keras_slim.layers import SlimDepthwiseConv2D
from keras_slim.layers import slim_batch_norm
from keras_slim.width import Widths

# (expansion t, output channels c, repeats n, first stride s), as in the paper.
_INVERTED_RESIDUALS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]
_STEM_CHANNELS = 32
_LAST_CHANNELS = 1280


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimMobileNetV2(SlimBackbone):
    """Slimmable MobileNetV2, the edge backbone, returning pooled features.

    The layout of `keras.applications.MobileNetV2` (inverted residual blocks,
    ReLU6, the fixed 1280-channel last convolution), with channels at width `w`
    rounded as that model rounds them for `alpha=w` (`make_divisible(c * w,
    8)`): `subnetwork(w)` has the layers and parameter count of
    `keras.applications.MobileNetV2(alpha=w, include_top=False,
    pooling="avg")`. Convolutions use `"same"` padding.

    Args:
        widths: a `keras_slim.Widths`, a width list (channel divisor 8 is
            applied to a plain list) or its config dict. Widths must be <= 1.
        input_shape: image shape `(height, width, channels)`.
        synchronized: bool, cross-replica BatchNorm statistics.
        bn_momentum: float, moving-average momentum (Keras convention).
        bn_epsilon: float.
        **kwargs: base `keras.Model` arguments (`name`, `dtype`).

    Example:

    ```python
    import numpy as np
    from keras_slim.backbones import SlimMobileNetV2

    backbone = SlimMobileNetV2(widths=[1.0, 0.35])
    features = backbone(np.zeros((1, 32, 32, 3)), width=0.35)
    assert features.shape == (1, 1280)  # the last layer keeps 1280 channels
    ```

    References:
        - [Sandler et al., MobileNetV2, CVPR 2018](https://arxiv.org/abs/1801.04381)
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
    """

    def __init__(
        self,
        widths=(1.0, 0.75, 0.5, 0.35),
        input_shape=(None, None, 3),
        synchronized=False,
        bn_momentum=0.999,
        bn_epsilon=1e-3,
        **kwargs,
    ):
        if not isinstance(widths, (Widths, dict)):
            widths = Widths(list(widths), divisor=8)
        super().__init__(
            widths=widths, input_shape=input_shape,
            synchronized=synchronized, **kwargs,
        )
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        w = self.widths
        self.stem_conv = SlimConv2D(
            _STEM_CHANNELS, 3, w, strides=2, slice_input=False,
            name="stem_conv",
        )
        self.stem_norm = self._norm("stem_bn")
        self.blocks = []
        self.block_strides = []  # total stride after each block (stem: 2)
        stride = 2
        in_channels = _STEM_CHANNELS
        for stage, (t, c, n, s) in enumerate(_INVERTED_RESIDUALS):
            for index in range(n):
                stride *= s if index == 0 else 1
                self.block_strides.append(stride)
                name = f"block{stage + 1}_{index + 1}"
                self.blocks.append(
                    self._inverted_residual(
                        name, in_channels, t, c, s if index == 0 else 1
                    )
                )
                in_channels = c
        self.last_conv = SlimConv2D(
            _LAST_CHANNELS, 1, w, slice_output=False, name="last_conv"
        )
        self.last_norm = self._norm("last_bn", slice_channels=False)
        self.build()

    def _norm(self, name, **kwargs):
        extra = {"epsilon": self.bn_epsilon, "synchronized": self.synchronized}
        if not self.widths.is_range:
            extra["momentum"] = self.bn_momentum
        return slim_batch_norm(self.widths, name=name, **extra, **kwargs)

    def _inverted_residual(self, name, in_channels, t, out_channels, stride):
        w = self.widths
        block = {"residual": stride == 1 and in_channels == out_channels}
        if t != 1:
            block["expand"] = SlimConv2D(
                in_channels * t, 1, w, expansion=t, name=f"{name}_expand"
            )
            block["expand_bn"] = self._norm(f"{name}_expand_bn", expansion=t)
        block["depthwise"] = SlimDepthwiseConv2D(
            3, w, strides=stride, expansion=t, name=f"{name}_depthwise"
        )
        block["depthwise_bn"] = self._norm(f"{name}_depthwise_bn", expansion=t)
        block["project"] = SlimConv2D(
            out_channels, 1, w, input_expansion=t, name=f"{name}_project"
        )
        block["project_bn"] = self._norm(f"{name}_project_bn")
        return block

    def forward(self, x, run):
        x = run.relu6(run.norm(self.stem_norm, run.conv(self.stem_conv, x)))
        for block, stride in zip(self.blocks, self.block_strides):
            y = x
            if "expand" in block:
                y = run.conv(block["expand"], y)
                y = run.relu6(run.norm(block["expand_bn"], y))
            y = run.conv(block["depthwise"], y)
            y = run.relu6(run.norm(block["depthwise_bn"], y))
            y = run.norm(block["project_bn"], run.conv(block["project"], y))
            x = run.stage(run.add(x, y) if block["residual"] else y, stride)
        x = run.relu6(run.norm(self.last_norm, run.conv(self.last_conv, x)))
        return run.global_pool(run.stage(x, self.block_strides[-1]))

    def feature_dim(self, width=None):
        self.widths.validate(width)
        return _LAST_CHANNELS

    def get_config(self):
        config = super().get_config()
        config.update(
            {"bn_momentum": self.bn_momentum, "bn_epsilon": self.bn_epsilon}
        )
        return config
