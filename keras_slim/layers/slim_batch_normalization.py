import keras
from keras import ops

from keras_slim import _backend
from keras_slim.layers._slim_norm import SlimNormLayer
from keras_slim.width import width_name


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimBatchNormalization(SlimNormLayer):
    """BatchNorm of universally slimmable networks: shared affine, sliced.

    One gamma and beta of the full size are shared by every width; width `w`
    uses their leading `channels(w)` entries. In training the layer normalizes
    with the batch statistics and stores nothing (any width of the range can
    train). Running statistics are kept per width of `widths.stat_widths` and
    filled by *BN calibration*: call the layer (or the backbone) with
    `training=True, calibrate=True` on training batches after
    `reset_statistics()`; each call adds the batch's mean and variance to a
    cumulative average. Inference at a width uses that width's statistics.

    Args:
        widths: a `keras_slim.Widths` (range or list), a list, or its config.
        epsilon: float.
        center: bool, whether to learn beta.
        scale: bool, whether to learn gamma.
        gamma_initializer: initializer of gamma.
        synchronized: bool, cross-replica batch statistics under a
            `tf.distribute` strategy.
        expansion: int, channels at width `w` are
            `expansion * channels(full // expansion, w)`.
        slice_channels: bool; False for a fixed-size input (e.g. the fixed
            1280-channel last layer of MobileNetV2 or an embedding), which
            still gets statistics of its own per width.
        input_channels: int or `None`, channels at the largest width; inferred
            from the first input when `None`.
        **kwargs: base `keras.layers.Layer` arguments.

    Example:

    ```python
    import numpy as np
    from keras_slim import Widths
    from keras_slim.layers import SlimBatchNormalization

    widths = Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.5])
    norm = SlimBatchNormalization(widths, input_channels=64)
    norm.build((None, 64))
    norm.reset_statistics()
    # Calibration: training-mode passes that fill width 0.5's statistics.
    batch = np.random.default_rng(0).random((8, 32), "float32")
    norm(batch, width=0.5, training=True, calibrate=True)
    assert norm.calibrated(0.5) == 1
    assert norm(batch, width=0.5).shape == (8, 32)
    ```

    References:
        - [Yu and Huang, Universally Slimmable Networks, ICCV 2019](https://arxiv.org/abs/1903.05134)
        - [Cao et al., Universally Slimmable Self-Supervised Learning, CVPR 2023](https://arxiv.org/abs/2303.07126)
    """

    # The constructor is SlimNormLayer's: these are exactly its arguments.

    def build(self, input_shape):
        if self.input_channels is None:
            self.input_channels = int(input_shape[-1])
        full = (self.input_channels,)
        self.gamma = self.add_weight(
            name="gamma",
            shape=full,
            initializer=self.gamma_initializer,
            trainable=self.scale,
        ) if self.scale else None
        self.beta = self.add_weight(
            name="beta", shape=full, initializer="zeros"
        ) if self.center else None
        self._tag_affine()
        self.moving_means = []
        self.moving_variances = []
        self.calibration_counts = []
        for w in self.widths.stat_widths:
            shape = (self.channels_at(w),)
            tag = width_name(w)
            self.moving_means.append(self.add_weight(
                name=f"moving_mean_{tag}", shape=shape,
                initializer="zeros", trainable=False,
            ))
            self.moving_variances.append(self.add_weight(
                name=f"moving_variance_{tag}", shape=shape,
                initializer="ones", trainable=False,
            ))
            self.calibration_counts.append(self.add_weight(
                name=f"calibration_count_{tag}", shape=(),
                initializer="zeros", trainable=False,
            ))

    def _affine_variables(self):
        return [self.gamma, self.beta]

    def reset_statistics(self, widths=None):
        """Resets the running statistics of `widths` (default: all of them)."""
        targets = self.widths.stat_widths if widths is None else widths
        for w in targets:
            i = self.widths.stat_index(w)
            self.moving_means[i].assign(ops.zeros(self.moving_means[i].shape))
            self.moving_variances[i].assign(
                ops.ones(self.moving_variances[i].shape)
            )
            self.calibration_counts[i].assign(0.0)

    def calibrated(self, width):
        """Number of batches averaged into the statistics of `width`."""
        i = self.widths.stat_index(width)
        return int(ops.convert_to_numpy(self.calibration_counts[i]))

    def call(self, inputs, width=None, training=None, calibrate=False):
        width = self._checked_width(inputs, width)
        if training or calibrate:
            mean, variance = self._batch_moments(inputs)
            if calibrate:
                self._accumulate(width, mean, variance)
        else:
            i = self.widths.stat_index(width)
            mean = self.moving_means[i]
            variance = self.moving_variances[i]
        gamma, beta = self.sliced_affine(width)
        return ops.batch_normalization(
            inputs, ops.cast(mean, inputs.dtype),
            ops.cast(variance, inputs.dtype), axis=-1,
            offset=None if beta is None else ops.cast(beta, inputs.dtype),
            scale=None if gamma is None else ops.cast(gamma, inputs.dtype),
            epsilon=self.epsilon,
        )

    def sliced_affine(self, width):
        """(gamma, beta) at `width`; `None` for a disabled one."""
        channels = self.channels_at(width)
        full = channels == self.input_channels

        def cut(v):
            if v is None or full:
                return v
            return v[:channels]

        return cut(self.gamma), cut(self.beta)

    def _batch_moments(self, inputs):
        axes = list(range(len(inputs.shape) - 1))
        # Statistics in float32 even under mixed precision: float16 variances
        # of large activations overflow.
        x = ops.cast(inputs, "float32")
        # On JAX there is no replica context: the step is one program over
        # the global batch, so every BatchNorm is synchronized.
        replicas = _backend.replica_context()
        if not self.synchronized or replicas is None:
            return ops.moments(x, axes)
        count = ops.cast(ops.prod(ops.shape(x)[:-1]), "float32")
        total, total_sq, total_count = replicas.all_reduce_sum(
            [ops.sum(x, axes), ops.sum(ops.square(x), axes), count],
        )
        mean = total / total_count
        variance = ops.maximum(total_sq / total_count - ops.square(mean), 0.0)
        return mean, variance

    def _accumulate(self, width, mean, variance):
        i = self.widths.stat_index(width)
        count = self.calibration_counts[i]
        new_count = count + 1.0
        self.moving_means[i].assign(
            self.moving_means[i] + (mean - self.moving_means[i]) / new_count
        )
        # The first batch replaces the reset value 1 of the variance.
        self.moving_variances[i].assign(
            self.moving_variances[i] * (count / new_count)
            + variance / new_count
        )
        count.assign(new_count)

    def to_keras_layer(self, width=None, name=None, input_shape=None):
        """A built `keras.layers.BatchNormalization` with width's state.

        `input_shape` (default: rank 2) sets the rank the layer is built for:
        Keras BatchNormalization fixes its reduction axes at build time.
        """
        width = self.widths.validate(width)
        i = self.widths.stat_index(width)
        gamma, beta = self.sliced_affine(width)
        values = [v for v in (gamma, beta) if v is not None]
        values += [self.moving_means[i], self.moving_variances[i]]
        return self._plain_norm(
            width, name, input_shape,
            [ops.convert_to_numpy(v) for v in values],
        )
