import keras
from keras import ops

from keras_slim.layers._banded import band_edges
from keras_slim.layers._slim_kernel import SlimConvLayer


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimConv2D(SlimConvLayer):
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

    ```python
    import numpy as np
    from keras_slim.layers import SlimConv2D

    conv = SlimConv2D(64, 3, widths=[1.0, 0.5])
    assert conv(np.zeros((2, 8, 8, 32)), width=1.0).shape == (2, 8, 8, 64)
    # Width 0.5 reads the leading 16 input and writes 32 output channels.
    assert conv(np.zeros((2, 8, 8, 16)), width=0.5).shape == (2, 8, 8, 32)
    plain = conv.to_keras_layer(0.5)  # a keras.layers.Conv2D of that slice
    assert plain.filters == 32
    ```

    References:
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
    """

    bias_axis = 3
    convolution = staticmethod(ops.conv)

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
        super().__init__(
            kernel_size, strides, padding, widths, use_bias, input_channels,
            kernel_initializer, bias_initializer, kernel_regularizer, **kwargs
        )
        self.filters = int(filters)
        self.slice_input = bool(slice_input)
        self.slice_output = bool(slice_output)
        self.expansion = int(expansion)
        self.input_expansion = int(input_expansion)
        self.widths.channels(self.filters, expansion=self.expansion)

    def _band_edges(self):
        edges = {}
        if self.slice_input:
            edges[2] = band_edges(
                self.widths, self.input_channels, self.input_expansion
            )
        if self.slice_output:
            edges[3] = band_edges(self.widths, self.filters, self.expansion)
        return edges

    def _kernel_shape(self):
        return self.kernel_size + (self.input_channels, self.filters)

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

    def _sizes_at(self, width):
        return {2: self.input_channels_at(width),
                3: self.output_channels_at(width)}

    def _plain_layer(self, width, name):
        return keras.layers.Conv2D(
            self.output_channels_at(width), self.kernel_size,
            **self._plain_options(name),
        )

    _config_keys = ("filters", "slice_input", "slice_output", "expansion",
                    "input_expansion")
