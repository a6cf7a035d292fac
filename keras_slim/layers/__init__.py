"""Slimmable layers: one full-size set of weights, used at several widths."""

from keras_slim.layers.slim_batch_normalization import SlimBatchNormalization
from keras_slim.layers.slim_conv2d import SlimConv2D
from keras_slim.layers.slim_dense import SlimDense
from keras_slim.layers.slim_depthwise_conv2d import SlimDepthwiseConv2D
from keras_slim.layers.switchable_batch_normalization import (
    SwitchableBatchNormalization,
)


def slim_batch_norm(widths, **kwargs):
    """The BatchNorm a width set needs: switchable for a list, slim for a range."""
    if widths.is_range:
        return SlimBatchNormalization(widths, **kwargs)
    return SwitchableBatchNormalization(widths, **kwargs)


__all__ = [
    "SlimBatchNormalization",
    "SlimConv2D",
    "SlimDense",
    "SlimDepthwiseConv2D",
    "SwitchableBatchNormalization",
    "slim_batch_norm",
]
