import keras
from keras import ops

from keras_slim.layers._banded import band_edges
from keras_slim.layers._slim_kernel import SlimKernelLayer
from keras_slim.layers._utils import check_min_rank


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimDense(SlimKernelLayer):
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

    ```python
    import numpy as np
    from keras_slim.layers import SlimDense

    head = SlimDense(10, widths=[1.0, 0.5], slice_output=False)
    logits = head(np.zeros((4, 256)), width=1.0)
    # A fixed-size output: 10 logits from the leading 128 features too.
    assert logits.shape == head(np.zeros((4, 128)), width=0.5).shape == (4, 10)
    ```

    References:
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
    """

    bias_axis = 1
    plain_input_rank = 2

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
        super().__init__(
            widths, use_bias, input_channels, kernel_initializer,
            bias_initializer, kernel_regularizer, **kwargs
        )
        self.units = int(units)
        self.slice_input = bool(slice_input)
        self.slice_output = bool(slice_output)

    def _band_edges(self):
        edges = {}
        if self.slice_input:
            edges[0] = band_edges(self.widths, self.input_channels)
        if self.slice_output:
            edges[1] = band_edges(self.widths, self.units)
        return edges

    def _kernel_shape(self):
        return (self.input_channels, self.units)

    def input_channels_at(self, width):
        if not self.slice_input:
            return self.input_channels
        return self.widths.channels(self.input_channels, width)

    def output_channels_at(self, width):
        if not self.slice_output:
            return self.units
        return self.widths.channels(self.units, width)

    def _sizes_at(self, width):
        return {0: self.input_channels_at(width),
                1: self.output_channels_at(width)}

    def _check_rank(self, inputs):
        check_min_rank(self, inputs, 2, "features (batch, ..., units)")

    def _output_shape(self, input_shape, width):
        return input_shape[:-1] + (self.output_channels_at(width),)

    def _apply_kernel(self, inputs, kernel):
        return ops.matmul(inputs, kernel)

    def _plain_layer(self, width, name):
        return keras.layers.Dense(
            self.output_channels_at(width), use_bias=self.use_bias, name=name
        )

    _config_keys = ("units", "slice_input", "slice_output")
