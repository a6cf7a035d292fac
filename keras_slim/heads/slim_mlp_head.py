import keras
from keras import ops

from keras_slim.layers import SlimDense
from keras_slim.layers import slim_batch_norm
from keras_slim.width import Widths


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimMLPHead(keras.layers.Layer):
    """A projection or prediction MLP whose hidden layers slice by width.

    `Dense -> [BN] -> ReLU` repeated `num_layers - 1` times, then a final
    `Dense(output_units) -> [BN]`. The output size never slices (an embedding
    is compared across widths); the hidden size slices with the width when
    `slice_hidden` (SlimCLR: `2048w`), and the input follows the backbone's
    features when `slice_input`. Every BN is switchable for a width list and a
    shared sliced BN for a width range.

    Args:
        hidden_units: int, hidden size at the largest width.
        output_units: int, embedding size.
        widths: a `keras_slim.Widths`, a list, or its config dict.
        num_layers: int >= 1, number of dense layers.
        batch_norm: bool, BN after each hidden dense layer (SimCLR, MoCo v3,
            BYOL); MoCo v2's head has none.
        output_batch_norm: bool, BN after the last dense layer (SimCLR,
            MoCo v3).
        output_bn_affine: bool, whether that last BN learns gamma/beta
            (MoCo v3's projector has none).
        slice_input: bool, whether the input follows the width (False for a
            backbone with fixed-size features, e.g. MobileNetV2's 1280).
        slice_hidden: bool, whether the hidden size follows the width (US3L's
            heads do not slice).
        use_bias: bool, biases in the dense layers that no BN follows.
        bias_before_norm: bool, or one bool per dense layer: a bias also in
            the dense layers a BN follows (PyTorch heads built from
            `nn.Linear(..., bias=True)`, e.g. US3L's projector). Training BN
            cancels it, but weight penalties on all parameters (US3L's group
            regularization) and converted checkpoints see it.
        synchronized: bool, cross-replica BN statistics (use the backbone's).
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    ```python
    import numpy as np
    from keras_slim.heads import SlimMLPHead

    head = SlimMLPHead(hidden_units=64, output_units=16, widths=[1.0, 0.5],
                       batch_norm=True)
    full = head(np.random.rand(4, 32).astype("float32"), width=1.0)
    half = head(np.random.rand(4, 16).astype("float32"), width=0.5)
    assert full.shape == half.shape == (4, 16)
    ```

    References:
        - [Chen et al., SimCLR, ICML 2020](https://arxiv.org/abs/2002.05709)
        - [Zhao et al., SlimCLR, IJCV 2024](https://arxiv.org/abs/2209.15525)
    """

    def __init__(
        self, hidden_units, output_units, widths, num_layers=2,
        batch_norm=False, output_batch_norm=False, output_bn_affine=True,
        slice_input=True, slice_hidden=True,
        use_bias=True, bias_before_norm=False, synchronized=False, **kwargs,
    ):
        super().__init__(**kwargs)
        if int(num_layers) < 1:
            raise ValueError(f"`num_layers` must be >= 1, got {num_layers}.")
        self.hidden_units = int(hidden_units)
        self.output_units = int(output_units)
        self.widths = Widths.coerce(widths)
        self.num_layers = int(num_layers)
        self.batch_norm = bool(batch_norm)
        self.output_batch_norm = bool(output_batch_norm)
        self.output_bn_affine = bool(output_bn_affine)
        self.slice_input = bool(slice_input)
        self.slice_hidden = bool(slice_hidden)
        self.use_bias = bool(use_bias)
        self.bias_before_norm = _per_layer(bias_before_norm, self.num_layers)
        self.synchronized = bool(synchronized)
        self.dense_layers = []
        self.norms = []
        sliced = self.slice_input
        for i in range(self.num_layers):
            last = i == self.num_layers - 1
            units = self.output_units if last else self.hidden_units
            with_bn = self.output_batch_norm if last else self.batch_norm
            bias = (self.bias_before_norm[i] if with_bn else self.use_bias)
            self.dense_layers.append(SlimDense(
                units, self.widths, use_bias=bias,
                slice_input=sliced,
                slice_output=(not last) and self.slice_hidden,
                name=f"dense{i + 1}",
            ))
            norm = None
            if with_bn:
                affine = self.output_bn_affine if last else True
                norm = slim_batch_norm(
                    self.widths, center=affine, scale=affine,
                    slice_channels=(not last) and self.slice_hidden,
                    synchronized=self.synchronized,
                    name=f"bn{i + 1}",
                )
            self.norms.append(norm)
            sliced = self.slice_hidden

    def build(self, input_shape):
        """Creates every weight at its full size."""
        units = int(input_shape[-1])
        for dense, norm in zip(self.dense_layers, self.norms):
            dense.build((None, units))
            units = dense.units
            if norm is not None:
                norm.build((None, units))
        self.built = True

    def call(self, inputs, width=None, training=None):
        width = self.widths.validate(width)
        x = inputs
        for i, (dense, norm) in enumerate(zip(self.dense_layers, self.norms)):
            x = dense(x, width=width)
            if norm is not None:
                x = norm(x, width=width, training=training)
            if i < self.num_layers - 1:
                x = ops.relu(x)
        return x

    def get_config(self):
        config = super().get_config()
        for key in ("hidden_units", "output_units", "num_layers", "batch_norm",
                    "output_batch_norm", "output_bn_affine", "slice_input",
                    "slice_hidden", "use_bias", "synchronized"):
            config[key] = getattr(self, key)
        config["widths"] = self.widths.get_config()
        config["bias_before_norm"] = list(self.bias_before_norm)
        return config


def _per_layer(flags, num_layers):
    if isinstance(flags, (bool, int)):
        return (bool(flags),) * num_layers
    flags = tuple(bool(f) for f in flags)
    if len(flags) != num_layers:
        raise ValueError(
            f"`bias_before_norm` needs one bool per dense layer "
            f"({num_layers}), got {len(flags)}: {list(flags)}.")
    return flags
