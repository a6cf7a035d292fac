"""The tensors US3L's group regularization penalizes, as the official code.

`losses/regularizers/GroupReg.py` regularizes every parameter of the online
model but the momentum encoder: convolution kernels and 1-D tensors (BN
scales and offsets, biases) in output-channel groups, 2-D linear weights with
plain L2; the predictors are skipped at the full width only.
"""

import keras
from keras import ops

from keras_slim.layers import SlimConv2D
from keras_slim.layers import SlimDense
from keras_slim.layers import SlimDepthwiseConv2D
from keras_slim.layers.slim_batch_normalization import SlimBatchNormalization


def group_terms(modules):
    """`[(full tensor, binned)]` of every regularized weight of `modules`.

    Full tensors (banded weights assembled), output channels on the last
    axis; `binned` False for dense kernels.
    """
    terms = []
    for module in modules:
        for layer in module._flatten_layers(include_self=True):
            terms.extend(_layer_terms(layer))
    return terms


def _layer_terms(layer):
    if isinstance(layer, SlimConv2D):
        return [(layer.kernel, True)] + _bias(layer)
    if isinstance(layer, SlimDepthwiseConv2D):
        # [h, w, c, 1] is PyTorch's [c, 1, h, w]: c output channels.
        kernel = layer.kernel
        shape = ops.shape(kernel)
        return [(ops.reshape(kernel, (shape[0], shape[1], -1)), True)] + (
            _bias(layer))
    if isinstance(layer, SlimDense):
        return [(layer.kernel, False)] + _bias(layer)
    if isinstance(layer, (SlimBatchNormalization,
                          keras.layers.BatchNormalization)):
        return [(v, True) for v in (layer.gamma, layer.beta) if v is not None]
    return []


def _bias(layer):
    bias = layer.bias
    return [] if bias is None else [(bias, True)]
