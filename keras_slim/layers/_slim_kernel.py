"""The mechanics every slimmable kernel layer shares, written once.

`SlimConv2D`, `SlimDense` and `SlimDepthwiseConv2D` differ only in their
kernel's shape, which kernel axes follow the width, the operation they run
and the plain Keras layer they convert to. Everything else (building the
banded kernel and bias, reading a width's leading slice, the conversion to a
plain layer, the shared part of the config) is here.
"""

import keras
from keras import ops

from keras_slim.layers._banded import BandedKernelMixin
from keras_slim.layers._banded import BandedWeight
from keras_slim.layers._roles import WeightGroup
from keras_slim.layers._roles import tag_groups
from keras_slim.layers._utils import check_channels
from keras_slim.layers._utils import check_padding
from keras_slim.layers._utils import check_rank
from keras_slim.layers._utils import conv_output_size
from keras_slim.layers._utils import pair
from keras_slim.width import Widths


class SlimKernelLayer(BandedKernelMixin, keras.layers.Layer):
    """Base of the slimmable layers with a banded kernel and optional bias.

    A subclass sets `kernel_name` ("kernel" or "depthwise_kernel", also the
    prefix of its initializer/regularizer arguments and attributes),
    `bias_axis` (the kernel axis, >= 0, that the bias runs along) and
    implements:

    - `_band_edges()`: `{kernel axis: channel edges}` of the width-sliced axes;
    - `_kernel_shape()`: the full kernel shape;
    - `_sizes_at(width)`: `{kernel axis: channels}` used at `width` (every
      banded axis and `bias_axis`);
    - `input_channels_at(width)`: the input channels at `width`;
    - `_check_rank(inputs)`: raises on an input of the wrong rank;
    - `_plain_layer(width, name)`: the unbuilt plain Keras layer;
    - `_apply_kernel(inputs, kernel)`: the operation, without the bias
      (`SlimConvLayer` runs its class's `convolution` op);

    and `plain_input_rank`, the rank the plain layer is built for.

    `weight_groups()` publishes (and `build` tags on the variables) the
    kernel's bands as one weight that optimizers decay and adapt, the bias's
    as one they do not (see `keras_slim.optimizers.parameter_groups`).

    Args:
        widths: a `keras_slim.Widths`, a width list, or its config dict.
        use_bias: bool.
        input_channels: int or `None`, input channels at the largest width.
        kernel_initializer, bias_initializer, kernel_regularizer: Keras
            initializers and regularizer of the kernel and the bias.
        **kwargs: base `keras.layers.Layer` arguments.
    """

    kernel_name = "kernel"
    bias_axis = None
    # Each class's own constructor arguments (stored as attributes of the
    # same name) that `get_config` adds to the shared ones.
    _config_keys = ()

    def __init__(self, widths, use_bias, input_channels, kernel_initializer,
                 bias_initializer, kernel_regularizer, **kwargs):
        super().__init__(**kwargs)
        self.widths = Widths.coerce(widths)
        self.use_bias = bool(use_bias)
        self.input_channels = input_channels
        # Public names follow the subclass's Keras counterpart:
        # `kernel_initializer` or `depthwise_initializer` (and regularizer).
        setattr(self, self._prefix + "_initializer",
                keras.initializers.get(kernel_initializer))
        self.bias_initializer = keras.initializers.get(bias_initializer)
        setattr(self, self._prefix + "_regularizer",
                keras.regularizers.get(kernel_regularizer))

    @property
    def _prefix(self):
        return self.kernel_name.replace("_kernel", "")

    def _kernel_option(self, kind):
        return getattr(self, f"{self._prefix}_{kind}")

    def build(self, input_shape):
        if self.input_channels is None:
            self.input_channels = int(input_shape[-1])
        edges = self._band_edges()
        shape = self._kernel_shape()
        self._kernel = BandedWeight(
            self, self.kernel_name, shape, edges,
            self._kernel_option("initializer"),
            self._kernel_option("regularizer"),
        )
        self._bias = None
        if self.use_bias:
            axis = self.bias_axis
            self._bias = BandedWeight(
                self, "bias", (shape[axis],),
                {0: edges[axis]} if axis in edges else {},
                self.bias_initializer,
            )
        tag_groups(self.weight_groups())

    def weight_groups(self):
        """The layer's logical weights, as optimizers should treat them.

        The kernel (all its bands: one LARS trust ratio, decayed) and the
        bias (all its bands, not decayed nor adapted). Empty until built.
        """
        if getattr(self, "_kernel", None) is None:
            return []
        groups = [WeightGroup(tuple(self._kernel.variables), False)]
        if self._bias is not None:
            groups.append(WeightGroup(tuple(self._bias.variables), True))
        return groups

    def call(self, inputs, width=None):
        width = self._checked_width(inputs, width)
        kernel, bias = self.sliced_weights(width)
        outputs = self._apply_kernel(inputs, kernel)
        if self.use_bias:
            outputs = ops.add(outputs, bias)
        return outputs

    def compute_output_spec(self, inputs, width=None):
        """The output of a symbolic call, from shapes alone.

        Building a backbone runs its forward pass on symbolic inputs; Keras
        would otherwise trace `call` into a scratch graph for each layer
        to learn what this computes from the shapes (see BENCHMARKS.md,
        "Building a slimmable backbone"). The same input checks as `call`.
        """
        width = self._checked_width(inputs, width)
        return keras.KerasTensor(
            self._output_shape(tuple(inputs.shape), width), inputs.dtype)

    def _checked_width(self, inputs, width):
        """`width` validated, after checking `inputs` fit it."""
        width = self.widths.validate(width)
        self._check_rank(inputs)
        check_channels(self, inputs, self.input_channels_at(width), width)
        return width

    def sliced_weights(self, width):
        """The (kernel, bias) the layer uses at `width`; bias is None if unused.

        Only the weight bands of `width` are read, so the bands of larger
        widths get neither gradient nor update.
        """
        sizes = self._sizes_at(width)
        kernel = self._kernel.leading(sizes)
        bias = None
        if self._bias is not None:
            bias = self._bias.leading({0: sizes[self.bias_axis]})
        return kernel, bias

    def to_keras_layer(self, width=None, name=None):
        """A built plain Keras layer holding this layer's slice at `width`."""
        width = self.widths.validate(width)
        layer = self._plain_layer(width, name or self.name)
        layer.build(
            (None,) * (self.plain_input_rank - 1)
            + (self.input_channels_at(width),)
        )
        kernel, bias = self.sliced_weights(width)
        values = [kernel] + ([bias] if self.use_bias else [])
        layer.set_weights([ops.convert_to_numpy(v) for v in values])
        return layer

    def get_config(self):
        """The shared arguments, then each class's `_config_keys` attributes.

        Every constructor argument is an attribute of the same name.
        """
        config = super().get_config()
        prefix = self._prefix
        config.update(
            {
                "widths": self.widths.get_config(),
                "use_bias": self.use_bias,
                "input_channels": self.input_channels,
                f"{prefix}_initializer": keras.initializers.serialize(
                    self._kernel_option("initializer")
                ),
                "bias_initializer": keras.initializers.serialize(
                    self.bias_initializer
                ),
                f"{prefix}_regularizer": keras.regularizers.serialize(
                    self._kernel_option("regularizer")
                ),
            }
        )
        for cls in reversed(type(self).__mro__):
            for key in vars(cls).get("_config_keys", ()):
                config[key] = getattr(self, key)
        return config


class SlimConvLayer(SlimKernelLayer):
    """A `SlimKernelLayer` sliding over images: kernel size, strides, padding.

    Args:
        kernel_size: int or pair of ints.
        strides: int or pair of ints.
        padding: `"same"` or `"valid"`.
        *args, **kwargs: `SlimKernelLayer` arguments.
    """

    plain_input_rank = 4
    # The `keras.ops` convolution each subclass runs, as a staticmethod
    # (`ops.conv`, `ops.depthwise_conv`): both take strides and padding.
    convolution = None

    _config_keys = ("kernel_size", "strides", "padding")

    def __init__(self, kernel_size, strides, padding, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.kernel_size = pair(kernel_size, "kernel_size")
        self.strides = pair(strides, "strides")
        self.padding = check_padding(padding)

    def _check_rank(self, inputs):
        check_rank(self, inputs, 4, "images (batch, height, width, channels)")

    def _output_shape(self, input_shape, width):
        batch, *sizes, _ = input_shape
        return (batch, *(
            conv_output_size(self, size, kernel, stride)
            for size, kernel, stride in zip(sizes, self.kernel_size,
                                            self.strides)),
            self.output_channels_at(width))

    def _apply_kernel(self, inputs, kernel):
        return self.convolution(
            inputs, kernel, strides=self.strides, padding=self.padding
        )

    def _plain_options(self, name):
        """The arguments the plain Keras convolution shares with this one."""
        return {"strides": self.strides, "padding": self.padding,
                "use_bias": self.use_bias, "name": name}
