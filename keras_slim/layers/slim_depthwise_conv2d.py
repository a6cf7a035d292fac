import keras
from keras import ops

from keras_slim.layers._banded import band_edges
from keras_slim.layers._slim_kernel import SlimConvLayer


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimDepthwiseConv2D(SlimConvLayer):
    """A depthwise 2D convolution whose kernel is shared by every width.

    One full-size depthwise kernel `[kh, kw, channels, 1]` is stored; at width
    `w` the layer filters the leading `channels(w)` channels with the leading
    slice of the kernel, exactly as a `keras.layers.DepthwiseConv2D` of that
    many channels would.

    Args:
        kernel_size: int or pair of ints.
        widths: a `keras_slim.Widths`, a width list, or its config dict.
        strides: int or pair of ints.
        padding: `"same"` or `"valid"`.
        use_bias: bool.
        depthwise_initializer, bias_initializer, depthwise_regularizer: as in
            `keras.layers.DepthwiseConv2D` (whose argument order this follows,
            keras_slim's own arguments last).
        expansion: int, channels at width `w` are
            `expansion * channels(full // expansion, w)` (MobileNetV2's
            expanded channels).
        input_channels: int or `None`, channels at the largest width; inferred
            from the first input when `None` (build it at the largest width).
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    ```python
    import numpy as np
    from keras_slim.layers import SlimDepthwiseConv2D

    depthwise = SlimDepthwiseConv2D(3, widths=[1.0, 0.5], input_channels=32)
    # One filter per channel: width 0.5 keeps 16 of the 32 channels.
    out = depthwise(np.zeros((2, 8, 8, 16)), width=0.5)
    assert out.shape == (2, 8, 8, 16)
    ```

    References:
        - [Sandler et al., MobileNetV2, CVPR 2018](https://arxiv.org/abs/1801.04381)
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
    """

    kernel_name = "depthwise_kernel"
    bias_axis = 2
    convolution = staticmethod(ops.depthwise_conv)

    def __init__(
        self,
        kernel_size,
        widths,
        strides=1,
        padding="same",
        use_bias=False,
        depthwise_initializer="he_normal",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        expansion=1,
        input_channels=None,
        **kwargs,
    ):
        super().__init__(
            kernel_size, strides, padding, widths, use_bias, input_channels,
            depthwise_initializer, bias_initializer, depthwise_regularizer,
            **kwargs
        )
        self.expansion = int(expansion)

    def _band_edges(self):
        return {2: band_edges(self.widths, self.input_channels, self.expansion)}

    def _kernel_shape(self):
        return self.kernel_size + (self.input_channels, 1)

    def channels_at(self, width):
        return self.widths.channels(self.input_channels, width, self.expansion)

    def _sizes_at(self, width):
        return {2: self.channels_at(width)}

    # A depthwise convolution's input and output channels are the same.
    input_channels_at = channels_at
    output_channels_at = channels_at

    def _plain_layer(self, width, name):
        return keras.layers.DepthwiseConv2D(
            self.kernel_size, **self._plain_options(name)
        )

    _config_keys = ("expansion",)
