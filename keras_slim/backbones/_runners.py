"""Two ways to run a backbone's layer graph, written once per architecture.

A backbone describes its forward pass once, against a *runner*:

* `SlimRunner` calls the slimmable layers at one width (the training path);
* `PlainBuilder` replaces each slimmable layer by the standard Keras layer
  holding its slice at that width and wires a functional model: the plain
  sub-network that export and downstream users consume.

Because both follow the same description, the sub-network cannot drift from
the slimmable network.
"""

import keras
from keras import ops


class SlimRunner:
    """Runs slimmable layers at `width` (training or inference)."""

    def __init__(self, width, training=None, calibrate=False):
        self.width = width
        self.training = training
        self.calibrate = calibrate

    def conv(self, layer, x):
        return layer(x, width=self.width)

    def norm(self, layer, x):
        return layer(
            x, width=self.width, training=self.training,
            calibrate=self.calibrate,
        )

    def relu(self, x):
        return ops.relu(x)

    def relu6(self, x):
        return ops.relu6(x)

    def add(self, a, b):
        return ops.add(a, b)

    def max_pool(self, x, pool_size, strides, padding="same"):
        return ops.max_pool(x, pool_size, strides, padding=padding)

    def pad(self, x, amount):
        """Zeros on every side of the image axes (PyTorch-style padding)."""
        return ops.pad(x, [[0, 0], [amount, amount], [amount, amount], [0, 0]])

    def normalize(self, x, mean, std):
        mean = ops.convert_to_tensor(mean, dtype=x.dtype)
        std = ops.convert_to_tensor(std, dtype=x.dtype)
        return ops.divide(ops.subtract(x, mean), std)

    def stage(self, x, stride):
        """Marks `x` as the feature map at total `stride` (pyramid hook)."""
        return x

    def global_pool(self, x):
        return ops.mean(x, axis=(1, 2))


class PlainBuilder:
    """Wires the standard Keras layers of width `width` into a functional graph."""

    def __init__(self, width):
        self.width = width

    def conv(self, layer, x):
        return layer.to_keras_layer(self.width)(x)

    def norm(self, layer, x):
        return layer.to_keras_layer(self.width, input_shape=x.shape)(x)

    def relu(self, x):
        return keras.layers.ReLU()(x)

    def relu6(self, x):
        return keras.layers.ReLU(max_value=6.0)(x)

    def add(self, a, b):
        return keras.layers.Add()([a, b])

    def max_pool(self, x, pool_size, strides, padding="same"):
        return keras.layers.MaxPooling2D(pool_size, strides, padding=padding)(x)

    def pad(self, x, amount):
        return keras.layers.ZeroPadding2D(amount)(x)

    def normalize(self, x, mean, std):
        return keras.layers.Normalization(
            mean=list(mean), variance=[s * s for s in std], name="normalize"
        )(x)

    def stage(self, x, stride):
        return x

    def global_pool(self, x):
        return keras.layers.GlobalAveragePooling2D()(x)


class PyramidBuilder(PlainBuilder):
    """A `PlainBuilder` whose model outputs the stage feature maps.

    Each backbone marks its feature maps with `stage(x, stride)`; the last
    map of each total stride is that level's output, named `P<log2 stride>`
    as keras-hub's `pyramid_outputs` (`P2` is stride 4). Global pooling is
    left out: the outputs are the dict of maps.
    """

    def __init__(self, width):
        super().__init__(width)
        self.maps = {}

    def stage(self, x, stride):
        self.maps[f"P{int(stride).bit_length() - 1}"] = x
        return x

    def global_pool(self, x):
        return dict(sorted(self.maps.items(), key=lambda kv: int(kv[0][1:])))
