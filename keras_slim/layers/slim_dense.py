import keras
from keras import ops

from keras_slim.layers._banded import BandedKernelMixin
from keras_slim.layers._banded import BandedWeight
from keras_slim.layers._banded import band_edges
from keras_slim.layers._utils import check_channels
from keras_slim.layers._utils import check_min_rank
from keras_slim.width import Widths


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimDense(BandedKernelMixin, keras.layers.Layer):
    """A dense layer whose kernel is shared by every width.

    One full-size kernel `[in, units]` is stored; at width `w` the layer
    multiplies by the leading slice `[:in(w), :out(w)]`. Set
    `slice_output=False` for a fixed-size output (an embedding, class logits)
    and `slice_input=False` for a fixed-size input.

    Args:
        units: int, output units at the largest width.
        widths: a `keras_slim.Widths`, a width list, or its config dict.
        use_bias: bool.
        slice_input: bool, whether the input units follow the width.
        slice_output: bool, whether the output units follow the width.
        input_channels: int or `None`, input units at the largest width;
            inferred from the first input when `None`.
        kernel_initializer, bias_initializer, kernel_regularizer: as in
            `keras.layers.Dense`.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> head = SlimDense(128, widths=[1.0, 0.5], slice_output=False)
    >>> head(np.zeros((4, 256)), width=1.0).shape
    (4, 128)
    >>> head(np.zeros((4, 128)), width=0.5).shape
    (4, 128)

    References:
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
    """

    def __init__(
        self,
        units,
        widths,
        use_bias=True,
        slice_input=True,
        slice_output=True,
        input_channels=None,
        kernel_initializer="glorot_uniform",
        bias_initializer="zeros",
        kernel_regularizer=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.units = int(units)
        self.widths = Widths.coerce(widths)
        self.use_bias = bool(use_bias)
        self.slice_input = bool(slice_input)
        self.slice_output = bool(slice_output)
        self.input_channels = input_channels
        self.kernel_initializer = keras.initializers.get(kernel_initializer)
        self.bias_initializer = keras.initializers.get(bias_initializer)
        self.kernel_regularizer = keras.regularizers.get(kernel_regularizer)

    def build(self, input_shape):
        if self.input_channels is None:
            self.input_channels = int(input_shape[-1])
        edges = {}
        if self.slice_input:
            edges[0] = band_edges(self.widths, self.input_channels)
        if self.slice_output:
            edges[1] = band_edges(self.widths, self.units)
        self._kernel = BandedWeight(
            self, "kernel", (self.input_channels, self.units), edges,
            self.kernel_initializer, self.kernel_regularizer,
        )
        self._bias = None
        if self.use_bias:
            self._bias = BandedWeight(
                self, "bias", (self.units,),
                {0: edges[1]} if 1 in edges else {}, self.bias_initializer,
            )

    def input_channels_at(self, width):
        if not self.slice_input:
            return self.input_channels
        return self.widths.channels(self.input_channels, width)

    def output_channels_at(self, width):
        if not self.slice_output:
            return self.units
        return self.widths.channels(self.units, width)

    def call(self, inputs, width=None):
        width = self.widths.validate(width)
        check_min_rank(self, inputs, 2, "features (batch, ..., units)")
        check_channels(self, inputs, self.input_channels_at(width), width)
        kernel, bias = self.sliced_weights(width)
        outputs = ops.matmul(inputs, kernel)
        if self.use_bias:
            outputs = ops.add(outputs, bias)
        return outputs

    def sliced_weights(self, width):
        """The (kernel, bias) used at `width`; bias is None if unused."""
        out_c = self.output_channels_at(width)
        kernel = self._kernel.leading({0: self.input_channels_at(width), 1: out_c})
        bias = None if self._bias is None else self._bias.leading({0: out_c})
        return kernel, bias

    def to_keras_layer(self, width=None, name=None):
        """A built `keras.layers.Dense` holding the slice at `width`."""
        width = self.widths.validate(width)
        layer = keras.layers.Dense(
            self.output_channels_at(width),
            use_bias=self.use_bias,
            name=name or self.name,
        )
        layer.build((None, self.input_channels_at(width)))
        kernel, bias = self.sliced_weights(width)
        values = [kernel] + ([bias] if self.use_bias else [])
        layer.set_weights([ops.convert_to_numpy(v) for v in values])
        return layer

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "units": self.units,
                "widths": self.widths.get_config(),
                "use_bias": self.use_bias,
                "slice_input": self.slice_input,
                "slice_output": self.slice_output,
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
