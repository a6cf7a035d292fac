"""The mechanics both slimmable BatchNorms share, written once.

`SlimBatchNormalization` (one shared sliced affine, calibrated statistics)
and `SwitchableBatchNormalization` (one Keras BatchNorm per width) take the
same options, size their channels alike, check inputs alike and convert to
the same plain `keras.layers.BatchNormalization`.
"""

import keras

from keras_slim.layers._roles import affine_groups
from keras_slim.layers._roles import tag_groups
from keras_slim.layers._utils import check_channels
from keras_slim.layers._utils import check_min_rank
from keras_slim.width import Widths


class SlimNormLayer(keras.layers.Layer):
    """Base of the slimmable BatchNorms: options, channels, checks, config.

    Args:
        widths: a `keras_slim.Widths`, a list, or its config.
        epsilon: float.
        center: bool, whether to learn beta.
        scale: bool, whether to learn gamma.
        gamma_initializer: initializer of gamma.
        synchronized: bool, cross-replica batch statistics.
        expansion: int, channels at width `w` are
            `expansion * channels(full // expansion, w)`.
        slice_channels: bool; False for a fixed-size input.
        input_channels: int or `None`, channels at the largest width.
        **kwargs: base `keras.layers.Layer` arguments.
    """

    def __init__(
        self,
        widths,
        epsilon=1e-5,
        center=True,
        scale=True,
        gamma_initializer="ones",
        synchronized=False,
        expansion=1,
        slice_channels=True,
        input_channels=None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.widths = Widths.coerce(widths)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.synchronized = bool(synchronized)
        self.expansion = int(expansion)
        self.slice_channels = bool(slice_channels)
        self.input_channels = input_channels

    def _affine_variables(self):
        """The trainable scales and offsets (`None` for disabled ones)."""
        raise NotImplementedError

    def weight_groups(self):
        """Every gamma and beta, each a weight of its own that optimizers
        neither decay nor adapt. Empty until built."""
        return affine_groups(*self._affine_variables()) if self.built else []

    def _tag_affine(self):
        tag_groups(affine_groups(*self._affine_variables()))

    def channels_at(self, width):
        if not self.slice_channels:
            return self.input_channels
        return self.widths.channels(self.input_channels, width, self.expansion)

    def compute_output_spec(self, inputs, width=None, training=None,
                            calibrate=False):
        """The output of a symbolic call (the input's shape and dtype),
        after the same input checks as `call`, without tracing it (see
        `SlimKernelLayer.compute_output_spec`)."""
        self._checked_width(inputs, width)
        return keras.KerasTensor(inputs.shape, inputs.dtype)

    def _checked_width(self, inputs, width):
        """`width` validated, after checking `inputs` fit it."""
        width = self.widths.validate(width)
        check_min_rank(self, inputs, 2, "features (batch, ..., channels)")
        check_channels(self, inputs, self.channels_at(width), width)
        return width

    def _plain_norm(self, width, name, input_shape, values, **options):
        """A built `keras.layers.BatchNormalization` holding `values`.

        `input_shape` (default: rank 2) sets the rank the layer is built for:
        Keras BatchNormalization fixes its reduction axes at build time.
        """
        layer = keras.layers.BatchNormalization(
            epsilon=self.epsilon, center=self.center, scale=self.scale,
            name=name or self.name, **options,
        )
        channels = self.channels_at(width)
        layer.build(tuple(input_shape or (None, None))[:-1] + (channels,))
        layer.set_weights(values)
        return layer

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "widths": self.widths.get_config(),
                "epsilon": self.epsilon,
                "center": self.center,
                "scale": self.scale,
                "gamma_initializer": keras.initializers.serialize(
                    self.gamma_initializer
                ),
                "synchronized": self.synchronized,
                "expansion": self.expansion,
                "slice_channels": self.slice_channels,
                "input_channels": self.input_channels,
            }
        )
        return config
