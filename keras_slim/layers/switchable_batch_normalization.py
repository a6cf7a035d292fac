import keras

from keras_slim.layers._slim_norm import SlimNormLayer
from keras_slim.width import width_name


@keras.saving.register_keras_serializable(package="keras_slim")
class SwitchableBatchNormalization(SlimNormLayer):
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
        **kwargs: by name, `epsilon`, `center`, `scale`, `gamma_initializer`
            (one per width here: "zeros" for a residual block's last BN when
            zero-init is wanted), `synchronized`, `expansion`,
            `slice_channels` and `input_channels`, each as in
            `SlimBatchNormalization`; and the base `keras.layers.Layer`
            arguments.

    Example:

    ```python
    import numpy as np
    from keras_slim.layers import SwitchableBatchNormalization

    norm = SwitchableBatchNormalization(widths=[1.0, 0.5], input_channels=8)
    # Each width has its own statistics and affine: width 0.5 has 4 channels.
    assert norm(np.ones((2, 4)), width=0.5, training=True).shape == (2, 4)
    assert norm(np.ones((2, 8)), width=1.0).shape == (2, 8)
    ```

    References:
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
    """

    def __init__(self, widths, momentum=0.9, **kwargs):
        # The other arguments are SlimNormLayer's, with its defaults.
        super().__init__(widths, **kwargs)
        if self.widths.is_range:
            raise ValueError(
                "SwitchableBatchNormalization needs a fixed width list; for a "
                "width range (universally slimmable) use "
                "SlimBatchNormalization."
            )
        self.momentum = float(momentum)
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
        # Keras's own BatchNorms tag nothing: tag their scales and offsets.
        self._tag_affine()

    def _affine_variables(self):
        return [v for norm in self.norms for v in (norm.gamma, norm.beta)]

    def norm_at(self, width):
        """The `keras.layers.BatchNormalization` used at `width`."""
        return self.norms[self.widths.stat_index(width)]

    def call(self, inputs, width=None, training=None, calibrate=False):
        # `calibrate` is accepted for a uniform backbone call; a switchable BN
        # updates its statistics whenever it runs in training mode.
        width = self._checked_width(inputs, width)
        return self.norm_at(width)(inputs, training=training or calibrate)

    def to_keras_layer(self, width=None, name=None, input_shape=None):
        """A built `keras.layers.BatchNormalization` copying width's state.

        `input_shape` (default: rank 2) sets the rank the layer is built for:
        Keras BatchNormalization fixes its reduction axes at build time.
        """
        width = self.widths.validate(width)
        return self._plain_norm(
            width, name, input_shape, self.norm_at(width).get_weights(),
            momentum=self.momentum,
        )

    def get_config(self):
        config = super().get_config()
        config["momentum"] = self.momentum
        return config
