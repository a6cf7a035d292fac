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
class SlimConv2D(BandedKernelMixin, keras.layers.Layer):
    """A 2D convolution whose kernel is shared by every width.

    One full-size kernel `[kh, kw, in, filters]` is stored. At width `w` the
    layer convolves with the leading slice `[:, :, :in(w), :out(w)]`, where
    `out(w) = widths.channels(filters, w)`: the computation is exactly that of
    a `keras.layers.Conv2D` with `out(w)` filters, and no full-width tensor is
    ever masked.

    Args:
        filters: int, output channels at the largest width.
        kernel_size: int or pair of ints.
        widths: a `keras_slim.Widths`, a width list, or its config dict.
        strides: int or pair of ints.
        padding: `"same"` or `"valid"`.
        use_bias: bool.
        slice_input: bool, whether the input channels follow the width. False
            for a layer that reads the image itself.
        slice_output: bool, whether the output channels follow the width.
            False for a fixed-size output (e.g. an embedding).
        expansion: int, output channels at width `w` are
            `expansion * channels(filters // expansion, w)`: the rounding of
            MobileNetV2's expansion convolutions.
        input_expansion: int, the same rounding for the input channels (a
            projection convolution reading expanded channels).
        input_channels: int or `None`, input channels at the largest width.
            Inferred from the first input when `None`, so build the layer (or
            call it first) at the largest width, or pass it.
        kernel_initializer, bias_initializer, kernel_regularizer: as in
            `keras.layers.Conv2D`.
        **kwargs: base `keras.layers.Layer` arguments (`name`, `dtype`, ...).

    Example:

    >>> conv = SlimConv2D(64, 3, widths=[1.0, 0.5])
    >>> conv(np.zeros((2, 8, 8, 32)), width=1.0).shape
    (2, 8, 8, 64)
    >>> conv(np.zeros((2, 8, 8, 16)), width=0.5).shape
    (2, 8, 8, 32)

    References:
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
    """

    def __init__(
        self,
        filters,
        kernel_size,
        widths,
        strides=1,
        padding="same",
        use_bias=False,
        slice_input=True,
        slice_output=True,
        expansion=1,
        input_expansion=1,
        input_channels=None,
        kernel_initializer="he_normal",
        bias_initializer="zeros",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.widths = Widths.coerce(widths)
        self.strides = pair(strides, "strides")
        if padding not in ("same", "valid"):
            raise ValueError(
                f"`padding` must be 'same' or 'valid', got {padding!r}."
            )
        self.padding = padding
        self.use_bias = bool(use_bias)
        self.slice_input = bool(slice_input)
        self.slice_output = bool(slice_output)
        self.expansion = int(expansion)
        self.input_expansion = int(input_expansion)
        self.input_channels = input_channels
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)
        self.widths.channels(self.filters, expansion=self.expansion)

    def build(self, input_shape):
        if self.input_channels is None:
            self.input_channels = int(input_shape[-1])
        edges = {}
        if self.slice_input:
            edges[2] = band_edges(
                self.widths, self.input_channels, self.input_expansion
            )
        if self.slice_output:
            edges[3] = band_edges(self.widths, self.filters, self.expansion)
        self._kernel = BandedWeight(
            self, "kernel",
            self.kernel_size + (self.input_channels, self.filters),
            edges, self.kernel_initializer, self.kernel_regularizer,
        )
        self._bias = None
        if self.use_bias:
            self._bias = BandedWeight(
                self, "bias", (self.filters,),
                {0: edges[3]} if 3 in edges else {}, self.bias_initializer,
            )

    def input_channels_at(self, width):
        if not self.slice_input:
            return self.input_channels
        return self.widths.channels(
            self.input_channels, width, self.input_expansion
        )

    def output_channels_at(self, width):
        if not self.slice_output:
            return self.filters
        return self.widths.channels(self.filters, width, self.expansion)

    def call(self, inputs, width=None):
        width = self.widths.validate(width)
        check_rank(self, inputs, 4, "images (batch, height, width, channels)")
        in_c = self.input_channels_at(width)
        check_channels(self, inputs, in_c, width)
        out_c = self.output_channels_at(width)
        kernel, bias = self.sliced_weights(width)
        outputs = ops.conv(
            inputs, kernel, strides=self.strides, padding=self.padding
        )
        if self.use_bias:
            outputs = ops.add(outputs, bias)
        return outputs

    def sliced_weights(self, width):
        """The (kernel, bias) the layer uses at `width`; bias is None if unused.

        Only the weight bands of `width` are read, so the bands of larger
        widths get neither gradient nor update.
        """
        out_c = self.output_channels_at(width)
        kernel = self._kernel.leading(
            {2: self.input_channels_at(width), 3: out_c}
        )
        bias = None if self._bias is None else self._bias.leading({0: out_c})
        return kernel, bias

    def to_keras_layer(self, width=None, name=None):
        """A built `keras.layers.Conv2D` holding this layer's slice at `width`."""
        width = self.widths.validate(width)
        layer = keras.layers.Conv2D(
            self.output_channels_at(width),
            self.kernel_size,
            strides=self.strides,
            padding=self.padding,
            use_bias=self.use_bias,
            name=name or self.name,
        )
        layer.build((None, None, None, self.input_channels_at(width)))
        kernel, bias = self.sliced_weights(width)
        values = [kernel] + ([bias] if self.use_bias else [])
        layer.set_weights([ops.convert_to_numpy(v) for v in values])
        return layer

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "filters": self.filters,
                "kernel_size": self.kernel_size,
                "widths": self.widths.get_config(),
                "strides": self.strides,
                "padding": self.padding,
                "use_bias": self.use_bias,
                "slice_input": self.slice_input,
                "slice_output": self.slice_output,
                "expansion": self.expansion,
                "input_expansion": self.input_expansion,
                "input_channels": self.input_channels,
                "kernel_initializer": keras.initializers.serialize(
                    self.kernel_initializer
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                "kernel_regularizer": keras.regularizers.serialize(
                    self.kernel_regularizer
                ),
            }
        )
        return config

