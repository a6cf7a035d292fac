import keras
from keras import ops

from keras_slim.backbones._runners import PlainBuilder
from keras_slim.backbones._runners import PyramidBuilder
from keras_slim.backbones._runners import SlimRunner
from keras_slim._width_view import WidthView
from keras_slim.width import Widths
from keras_slim.width import width_name

_NUMERIC_KINDS = ("float", "bfloat", "int", "uint", "bool")


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimBackbone(keras.Model):
    """Base class of slimmable backbones: one set of weights, several widths.

    A subclass creates its slimmable layers in `__init__` and describes its
    forward pass once in `forward(x, runner)`. This class then gives every
    backbone the same public surface:

    * `backbone(images, width=0.5, training=False)`: pooled features at a
      width (default: the largest). The width is an argument of the call, never
      a stored attribute, so no cached Keras function can see a stale width.
    * `backbone.predict(images, width=0.5)`: batched inference at a width.
    * `backbone.at_width(0.5)`: a Keras model computing that width, sharing
      the weights (for `predict`, `evaluate`, or a functional graph).
    * `backbone.subnetwork(0.5)`: a plain Keras model of standard layers
      holding copies of that width's weights and BatchNorm statistics.
    * `backbone.widths`, `backbone.feature_dim(width)`.

    Args:
        widths: a `keras_slim.Widths`, a width list, or its config dict.
        input_shape: image shape `(height, width, channels)`; height and width
            may be `None`.
        synchronized: bool, cross-replica BatchNorm statistics under a
            `tf.distribute` strategy.
        **kwargs: base `keras.Model` arguments (`name`, `dtype`).

    Example:

    ```python
    import numpy as np
    from keras_slim.backbones import SlimResNet

    backbone = SlimResNet(depth=10, stem="cifar", base_width=8, widths=[1.0, 0.5])
    features = backbone(np.zeros((2, 32, 32, 3)), width=0.5)
    assert features.shape == (2, backbone.feature_dim(0.5)) == (2, 32)
    ```

    References:
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
    """

    def __init__(
        self,
        widths,
        input_shape=(None, None, 3),
        synchronized=False,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.widths = Widths.coerce(widths)
        if self.widths.largest != 1.0:
            # Layers size their weights from the largest width's forward
            # pass, taken as the full network.
            raise ValueError(
                f"A slimmable backbone's largest width must be 1.0 (the full "
                f"network), got widths {self.widths}. List 1.0 first; for a "
                f"network that is narrower as a whole, make the full network "
                f"smaller (e.g. SlimResNet(base_width=...))."
            )
        self.image_shape = _check_image_shape(input_shape)
        self.synchronized = bool(synchronized)
        self.__dict__["_width_views"] = {}

    # --------------------------------------------------------------- to define
    def forward(self, x, runner):
        """The forward pass from images to pooled features, against `runner`."""
        raise NotImplementedError

    def feature_dim(self, width=None):
        """Size of the pooled features at `width`."""
        raise NotImplementedError

    # ------------------------------------------------------------------- build
    def build(self, input_shape=None):
        """Creates every weight at its full size (runs the largest width)."""
        if self.built:
            return
        images = keras.KerasTensor((None,) + self.image_shape)
        self.forward(images, SlimRunner(self.widths.largest, training=False))
        for layer in self._flatten_layers(include_self=False):
            layer.built = True
        self.built = True

    # -------------------------------------------------------------------- call
    def call(self, inputs, width=None, training=None, calibrate_bn=False):
        width = self.widths.validate(width)
        return self.forward(
            self._check_images(inputs),
            SlimRunner(width, training=training, calibrate=calibrate_bn),
        )

    def _check_images(self, inputs):
        if len(inputs.shape) != 4:
            raise ValueError(
                f"{self.name} expects a batch of images of shape (batch, "
                f"height, width, {self.image_shape[-1]}), got shape "
                f"{tuple(inputs.shape)}. Add a batch axis with "
                f"np.expand_dims(image, 0) for a single image."
            )
        if inputs.shape[-1] != self.image_shape[-1]:
            raise ValueError(
                f"{self.name} was built for {self.image_shape[-1]}-channel "
                f"images, got {inputs.shape[-1]} channels (shape "
                f"{tuple(inputs.shape)}). Convert the images, or build the "
                f"backbone with input_shape=(None, None, {inputs.shape[-1]})."
            )
        dtype = keras.backend.standardize_dtype(inputs.dtype)
        if not dtype.startswith(_NUMERIC_KINDS):
            raise ValueError(
                f"{self.name} expects numeric images, got dtype {dtype}."
            )
        if dtype != self.compute_dtype:
            inputs = ops.cast(inputs, self.compute_dtype)
        return inputs

    # ----------------------------------------------------------- width access
    def at_width(self, width):
        """A Keras model that runs this backbone at `width`, sharing weights.

        Each width gets its own model, hence its own compiled
        `predict_function`: switching widths never reuses a stale trace.
        """
        width = self.widths.validate(width)
        view = self._width_views.get(width)
        if view is None:
            view = WidthView(self, width)
            self._width_views[width] = view
        return view

    def predict(self, x, width=None, **kwargs):
        """`keras.Model.predict` at `width` (default: the largest)."""
        return self.at_width(width).predict(x, **kwargs)

    def subnetwork(self, width=None, input_shape=None, name=None,
                   outputs="pooled"):
        """A plain Keras model of this backbone at `width`.

        It is built only from standard Keras layers (`Conv2D`,
        `DepthwiseConv2D`, `BatchNormalization`, `Dense`, `ReLU`, `Add`,
        pooling) holding *copies* of the sliced weights and of the width's
        BatchNorm statistics. In inference mode it computes
        `backbone(x, width=width, training=False)`.

        Args:
            width: a width of the backbone (default: the largest). For a width
                range it must be one of `widths.stat_widths`, calibrated.
            input_shape: image shape of the model (default: the backbone's);
                give a fixed size for export.
            name: model name (default `"<backbone name>_w<width>"`).
            outputs: `"pooled"` (the default): the pooled features, as
                `backbone(x, width=width)`. `"pyramid"`: a dict of the stage
                feature maps before pooling, `{"P<k>": (batch, h / 2**k,
                w / 2**k, channels at width)}`, one per total stride `2**k`
                (keras-hub's `pyramid_outputs` naming: an ImageNet-stem
                ResNet gives `P2`..`P5`, a CIFAR-stem one `P0`..`P3`,
                MobileNetV2 `P1`..`P5`), for a detection or segmentation
                head at this width.

        Example:

        ```python
        import numpy as np
        from keras_slim.backbones import SlimResNet

        backbone = SlimResNet(depth=10, stem="imagenet", base_width=8,
                              widths=[1.0, 0.5])
        pyramid = backbone.subnetwork(0.5, input_shape=(64, 64, 3),
                                      outputs="pyramid")
        maps = pyramid(np.zeros((1, 64, 64, 3)))
        assert sorted(maps) == ["P2", "P3", "P4", "P5"]
        assert maps["P5"].shape == (1, 2, 2, 32)
        ```
        """
        if outputs not in ("pooled", "pyramid"):
            raise ValueError(f"`outputs` must be 'pooled' or 'pyramid', got "
                             f"{outputs!r}.")
        width = self.widths.validate(width)
        self.widths.stat_index(width)
        shape = _check_image_shape(input_shape or self.image_shape)
        if shape[-1] != self.image_shape[-1]:
            raise ValueError(
                f"`input_shape` must keep the backbone's {self.image_shape[-1]}"
                f" channels, got {shape}."
            )
        images = keras.Input(shape=shape, name="images")
        builder = PyramidBuilder if outputs == "pyramid" else PlainBuilder
        features = self.forward(images, builder(width))
        return keras.Model(
            images, features, name=name or f"{self.name}_{width_name(width)}"
        )

    def get_config(self):
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            "widths": self.widths.get_config(),
            "input_shape": self.image_shape,
            "synchronized": self.synchronized,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _check_image_shape(shape):
    shape = tuple(None if d is None else int(d) for d in shape)
    if len(shape) != 3 or shape[-1] is None:
        raise ValueError(
            f"`input_shape` must be (height, width, channels) with a known "
            f"channel count, e.g. (32, 32, 3) or (None, None, 3); got {shape}."
        )
    return shape
