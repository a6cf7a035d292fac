import keras
from keras import ops

from keras_slim.layers._banded import BandedKernelMixin
from keras_slim.layers._banded import BandedWeight
from keras_slim.layers._banded import band_edges
from keras_slim.layers._utils import check_channels
from keras_slim.layers._utils import check_rank
from keras_slim.layers._utils import pair
from keras_slim.width import Widths


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimDepthwiseConv2D(BandedKernelMixin, keras.layers.Layer):
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
        expansion: int, channels at width `w` are
            `expansion * channels(full // expansion, w)` (MobileNetV2's
            expanded channels).
        input_channels: int or `None`, channels at the largest width; inferred
            from the first input when `None` (build it at the largest width).
        depthwise_initializer, bias_initializer, depthwise_regularizer: as in
            `keras.layers.DepthwiseConv2D`.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> dw = SlimDepthwiseConv2D(3, widths=[1.0, 0.5], input_channels=32)
    >>> dw(np.zeros((2, 8, 8, 16)), width=0.5).shape
    (2, 8, 8, 16)

    References:
        - [Sandler et al., MobileNetV2, CVPR 2018](https://arxiv.org/abs/1801.04381)
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
    """

    def __init__(
        self,
        kernel_size,
        widths,
        strides=1,
        padding="same",
        use_bias=False,
        expansion=1,
        input_channels=None,
        depthwise_initializer="he_normal",
        bias_initializer="zeros",
        depthwise_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.widths = Widths.coerce(widths)
        self.strides = pair(strides, "strides")
        if padding not in ("same", "valid"):
            raise ValueError(
                f"`padding` must be 'same' or 'valid', got {padding!r}."
            )
        self.padding = padding
        self.use_bias = bool(use_bias)
        self.expansion = int(expansion)
        self.input_channels = input_channels
        self.depthwise_initializer = keras.initializers.get(
            depthwise_initializer
        )
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.depthwise_regularizer = keras.regularizers.get(
            depthwise_regularizer
        )

    def build(self, input_shape):
        if self.input_channels is None:
            self.input_channels = int(input_shape[-1])
        edges = band_edges(self.widths, self.input_channels, self.expansion)
        self._kernel = BandedWeight(
            self, "depthwise_kernel",
            self.kernel_size + (self.input_channels, 1), {2: edges},
            self.depthwise_initializer, self.depthwise_regularizer,
        )
        self._bias = None
        if self.use_bias:
            self._bias = BandedWeight(
                self, "bias", (self.input_channels,), {0: edges},
                self.bias_initializer,
            )

    def channels_at(self, width):
        return self.widths.channels(self.input_channels, width, self.expansion)

    def call(self, inputs, width=None):
        width = self.widths.validate(width)
        check_rank(self, inputs, 4, "images (batch, height, width, channels)")
        check_channels(self, inputs, self.channels_at(width), width)
        kernel, bias = self.sliced_weights(width)
        outputs = ops.depthwise_conv(
            inputs, kernel, strides=self.strides, padding=self.padding
        )
        if self.use_bias:
            outputs = ops.add(outputs, bias)
        return outputs

    def sliced_weights(self, width):
        """The (kernel, bias) used at `width`; bias is None if unused."""
        channels = self.channels_at(width)
        kernel = self._kernel.leading({2: channels})
        bias = None
        if self._bias is not None:
            bias = self._bias.leading({0: channels})
        return kernel, bias

    def to_keras_layer(self, width=None, name=None):
        """A built `keras.layers.DepthwiseConv2D` with the slice at `width`."""
        width = self.widths.validate(width)
        layer = keras.layers.DepthwiseConv2D(
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            use_bias=self.use_bias,
            name=name or self.name,
        )
        layer.build((None, None, None, self.channels_at(width)))
        kernel, bias = self.sliced_weights(width)
        values = [kernel] + ([bias] if self.use_bias else [])
        layer.set_weights([ops.convert_to_numpy(v) for v in values])
        return layer

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "kernel_size": self.kernel_size,
                "widths": self.widths.get_config(),
                "strides": self.strides,
                "padding": self.padding,
                "use_bias": self.use_bias,
                "expansion": self.expansion,
                "input_channels": self.input_channels,
                "depthwise_initializer": keras.initializers.serialize(
                    self.depthwise_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "depthwise_regularizer": keras.regularizers.serialize(
                    self.depthwise_regularizer
                ),
            }
        )
        return config
