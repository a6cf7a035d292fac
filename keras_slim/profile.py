"""Parameter count and FLOPs of a slimmable backbone at one width.

Counted analytically from the slimmable layers (not from the plain
sub-network), by running the backbone's forward description over shapes, so
that `profile(b, w).params == b.subnetwork(w).count_params()` is a real check.
"""

import dataclasses
import math

from keras_slim.width import width_name


@dataclasses.dataclass(frozen=True)
class Profile:
    """The cost of a backbone at one width.

    Attributes:
        width: the width.
        input_shape: `(height, width, channels)` the FLOPs were counted for.
        params: all weights of the width's plain network (trainable ones and
            BatchNorm moving statistics), as `keras.Model.count_params()`.
        trainable_params: the trainable part of `params`.
        flops: multiply-accumulates of the convolutions and dense layers for
            one image (the "FLOPs" of the papers; BatchNorm folds into the
            convolutions at inference, activations and pooling are ignored).
    """

    width: float
    input_shape: tuple
    params: int
    trainable_params: int
    flops: int

    @property
    def name(self):
        return width_name(self.width)

    def as_dict(self):
        return dataclasses.asdict(self)


class _ProfileRunner:
    """A backbone runner whose tensors are shapes `(height, width, channels)`."""

    def __init__(self, width):
        self.width = width
        self.params = 0
        self.trainable = 0
        self.flops = 0

    def conv(self, layer, shape):
        height, width_px, _ = shape
        if hasattr(layer, "channels_at"):  # depthwise
            c_in = c_out = layer.channels_at(self.width)
            per_output = layer.kernel_size[0] * layer.kernel_size[1]
            weights = per_output * c_in
        else:
            c_in = layer.input_channels_at(self.width)
            c_out = layer.output_channels_at(self.width)
            per_output = layer.kernel_size[0] * layer.kernel_size[1] * c_in
            weights = per_output * c_out
        out_h = _output_length(height, layer, 0)
        out_w = _output_length(width_px, layer, 1)
        bias = c_out if layer.use_bias else 0
        self._add(weights + bias, weights + bias)
        self.flops += out_h * out_w * per_output * c_out
        return (out_h, out_w, c_out)

    def norm(self, layer, shape):
        channels = layer.channels_at(self.width)
        affine = channels * (int(layer.center) + int(layer.scale))
        self._add(affine + 2 * channels, affine)
        return shape

    def relu(self, shape):
        return shape

    relu6 = relu

    def add(self, a, b):
        if a != b:
            raise ValueError(f"Residual add of mismatched shapes {a} and {b}.")
        return a

    def max_pool(self, shape, pool_size, strides, padding="same"):
        if padding == "valid":
            return (
                (shape[0] - pool_size) // strides + 1,
                (shape[1] - pool_size) // strides + 1,
                shape[2],
            )
        return (
            math.ceil(shape[0] / strides),
            math.ceil(shape[1] / strides),
            shape[2],
        )

    def pad(self, shape, amount):
        return (shape[0] + 2 * amount, shape[1] + 2 * amount, shape[2])

    def normalize(self, shape, mean, std):
        return shape

    def stage(self, shape, stride):
        return shape

    def global_pool(self, shape):
        return (shape[-1],)

    def _add(self, params, trainable):
        self.params += params
        self.trainable += trainable


def _output_length(length, layer, axis):
    stride = layer.strides[axis]
    if layer.padding == "same":
        return math.ceil(length / stride)
    return (length - layer.kernel_size[axis]) // stride + 1


def profile(backbone, width=None, input_shape=None):
    """Parameters and FLOPs of `backbone` at `width` for one image.

    Args:
        backbone: a `keras_slim.backbones.SlimBackbone`.
        width: a width of the backbone (default: the largest).
        input_shape: `(height, width, channels)`; default the backbone's own
            input shape, which must then be fully known.

    Returns:
        A `Profile` (width, input_shape, params, trainable_params, flops).

    Example:

    ```python
    import keras_slim
    from keras_slim.backbones import SlimResNet

    backbone = SlimResNet(depth=10, base_width=8, widths=[1.0, 0.5])
    full = keras_slim.profile(backbone, 1.0, input_shape=(32, 32, 3))
    half = keras_slim.profile(backbone, 0.5, input_shape=(32, 32, 3))
    assert half.flops < full.flops and half.params < full.params
    ```
    """
    width = backbone.widths.validate(width)
    shape = tuple(input_shape or backbone.image_shape)
    if len(shape) != 3 or any(d is None for d in shape):
        raise ValueError(
            f"FLOPs depend on the image size: pass a full "
            f"`input_shape=(height, width, channels)`, got {shape}."
        )
    runner = _ProfileRunner(width)
    backbone.forward(tuple(int(d) for d in shape), runner)
    return Profile(
        width=width,
        input_shape=shape,
        params=runner.params,
        trainable_params=runner.trainable,
        flops=runner.flops,
    )
