import keras

from keras_slim.layers._utils import check_channels
from keras_slim.layers._utils import check_min_rank
from keras_slim.width import Widths
from keras_slim.width import width_name


@keras.saving.register_keras_serializable(package="keras_slim")
class SwitchableBatchNormalization(keras.layers.Layer):
    """BatchNorm with private parameters and statistics for each width.

    Slimmable networks need one BatchNorm per width: the statistics of the
    leading channels change with the number of channels that feed them. This
    layer holds one `keras.layers.BatchNormalization` per width of a fixed
    width list (gamma, beta, moving mean and variance of that width's size)
    and applies the one of the requested width.

    Args:
        widths: a fixed width list (`keras_slim.Widths`, list, or config);
            a range is refused: use `SlimBatchNormalization`.
        momentum: float, moving-average momentum (Keras convention).
        epsilon: float.
        center: bool, whether to learn beta.
        scale: bool, whether to learn gamma.
        gamma_initializer: initializer of every width's gamma ("zeros" for a
            residual block's last BN when zero-init is wanted).
        synchronized: bool, cross-replica batch statistics under a
            `tf.distribute` strategy (exact multi-replica training).
        expansion: int, channels at width `w` are
            `expansion * channels(full // expansion, w)`.
        slice_channels: bool; False for a fixed-size input (e.g. the fixed
            1280-channel last layer of MobileNetV2 or an embedding), which
            still gets statistics of its own per width.
        input_channels: int or `None`, channels at the largest width; inferred
            from the first input when `None`.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    >>> bn = SwitchableBatchNormalization(widths=[1.0, 0.5], input_channels=8)
    >>> bn(np.ones((2, 4)), width=0.5, training=True).shape
    (2, 4)

    References:
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
    """

    def __init__(
        self,
        widths,
        momentum=0.9,
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
        if self.widths.is_range:
            raise ValueError(
                "SwitchableBatchNormalization needs a fixed width list; for a "
                "width range (universally slimmable) use "
                "SlimBatchNormalization."
            )
        self.momentum = float(momentum)
        self.epsilon = float(epsilon)
        self.center = bool(center)
        self.scale = bool(scale)
        self.gamma_initializer = keras.initializers.get(gamma_initializer)
        self.synchronized = bool(synchronized)
        self.expansion = int(expansion)
        self.slice_channels = bool(slice_channels)
        self.input_channels = input_channels
        self.norms = [
            keras.layers.BatchNormalization(
                momentum=self.momentum,
                epsilon=self.epsilon,
                center=self.center,
                scale=self.scale,
                gamma_initializer=self.gamma_initializer,
                synchronized=self.synchronized,
                name=f"bn_{width_name(w)}",
            )
            for w in self.widths.values
        ]

    def build(self, input_shape):
        if self.input_channels is None:
            self.input_channels = int(input_shape[-1])
        for w, norm in zip(self.widths.values, self.norms):
            shape = tuple(input_shape[:-1]) + (self.channels_at(w),)
            norm.build(shape)

    def channels_at(self, width):
        if not self.slice_channels:
            return self.input_channels
        return self.widths.channels(self.input_channels, width, self.expansion)

    def norm_at(self, width):
        """The `keras.layers.BatchNormalization` used at `width`."""
        return self.norms[self.widths.stat_index(width)]

    def call(self, inputs, width=None, training=None, calibrate=False):
        # `calibrate` is accepted for a uniform backbone call; a switchable BN
        # updates its statistics whenever it runs in training mode.
        width = self.widths.validate(width)
        check_min_rank(self, inputs, 2, "features (batch, ..., channels)")
        check_channels(self, inputs, self.channels_at(width), width)
        return self.norm_at(width)(inputs, training=training or calibrate)

    def to_keras_layer(self, width=None, name=None, input_shape=None):
        """A built `keras.layers.BatchNormalization` copying width's state.

        `input_shape` (default: rank 2) sets the rank the layer is built for:
        Keras BatchNormalization fixes its reduction axes at build time.
        """
        source = self.norm_at(self.widths.validate(width))
        layer = keras.layers.BatchNormalization(
            momentum=self.momentum,
            epsilon=self.epsilon,
            center=self.center,
            scale=self.scale,
            name=name or self.name,
        )
        channels = self.channels_at(width)
        layer.build(tuple(input_shape or (None, None))[:-1] + (channels,))
        layer.set_weights(source.get_weights())
        return layer

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "widths": self.widths.get_config(),
                "momentum": self.momentum,
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
