"""Linear probes on frozen backbone features, one per width.

The backbone runs once per width in inference mode over the train and test
images (no augmentation, so caching the features is exact) and a linear
classifier is trained on the cached features: fast on a CPU, and the same
protocol for every width.

Defaults, chosen to reach a good accuracy in few epochs without tuning:
features are standardized with the train mean and standard deviation (so one
learning rate suits every width and backbone, whatever the feature scale),
the classifier starts at zero (a dimension constant on the train set then
never gets a weight) and is trained with Adam and a cosine-decayed learning
rate. The returned classifiers fold the standardization into their kernel and
bias, so they take the raw features.
"""

import keras
import numpy as np
from keras import ops

from keras_slim.evaluation import _inputs
from keras_slim.evaluation._compiled import gradient_step
from keras_slim.evaluation.features import labeled_features
from keras_slim.evaluation.linear_probe_result import LinearProbeResult
from keras_slim.width import width_name

# Added to the feature variance before standardizing (BatchNorm's epsilon).
_EPSILON = 1e-5


def linear_probe(backbone, train_images, train_labels, test_images,
                 test_labels, widths=None, epochs=50, batch_size=256,
                 learning_rate=1e-3, joint=False, seed=0, num_classes=None):
    """Trains a linear classifier on frozen features at each width.

    Args:
        backbone: a `keras_slim.backbones.SlimBackbone` (unchanged).
        train_images: images `(N, H, W, C)` in [0, 1], or a `tf.data.Dataset`
            of `(images, labels)` batches (then `train_labels=None`).
        train_labels: int class ids `(N,)`, or `None` with a dataset.
        test_images: images, same forms.
        test_labels: int class ids, or `None` with a dataset.
        widths: widths to probe (default: the width list, or a range's
            `stat_widths`, calibrated first with `calibrate_batch_norm`).
        epochs: int, passes over the cached train features.
        batch_size: int, examples per step (and images per forward pass).
        learning_rate: float, Adam's initial learning rate, decayed to 0 by
            a cosine over the run.
        joint: bool. False: one probe per width trained on its own with
            cross-entropy. True: SlimCLR's switchable linear probe, all
            widths trained together on the same batches; the largest width
            with cross-entropy, every other width with (cross-entropy +
            soft cross-entropy to the largest width's detached softmax) / 2.
        seed: int, seed of the batch order.
        num_classes: int or `None` (1 + the largest label).

    Returns:
        `LinearProbeResult`: `{width: test top-1}`, with `.classifiers`
        `{width: keras.layers.Dense}` taking raw features.

    Example:

    ```python
    import numpy as np
    from keras_slim.backbones import SlimResNet
    from keras_slim.evaluation import linear_probe

    rng = np.random.default_rng(0)
    x_train, x_test = rng.random((2, 16, 8, 8, 3), "float32")
    y_train = y_test = np.arange(16) % 2
    backbone = SlimResNet(depth=10, base_width=8, widths=[1.0, 0.5])
    result = linear_probe(backbone, x_train, y_train, x_test, y_test, epochs=2)
    assert sorted(result) == [0.5, 1.0]  # LinearProbeResult({1.0: .., 0.5: ..})
    ```

    References:
        - [Zhao et al., SlimCLR, IJCV 2024](https://arxiv.org/abs/2209.15525)
        - [Kolesnikov et al., Revisiting Self-Supervised Visual
          Representation Learning, CVPR 2019](https://arxiv.org/abs/1901.09005)
    """
    _inputs.check_backbone(backbone)
    widths = _inputs.resolve_widths(backbone, widths)
    epochs = _inputs.check_positive_int(epochs, "epochs")
    batch_size = _inputs.check_positive_int(batch_size, "batch_size")
    learning_rate = _inputs.check_positive_float(
        learning_rate, "learning_rate"
    )
    train, test = {}, {}
    for width in widths:
        train[width] = labeled_features(
            backbone, train_images, train_labels, width, batch_size, "train"
        )
        test[width] = labeled_features(
            backbone, test_images, test_labels, width, batch_size, "test"
        )
    train_y = _same_labels_at_every_width(train, "train")
    test_y = _same_labels_at_every_width(test, "test")
    num_classes = _inputs.resolve_num_classes(
        num_classes, ("train_labels", train_y), ("test_labels", test_y)
    )
    standardizers = {w: _standardizer(train[w][0]) for w in widths}
    probes = _train_probes(
        {w: _standardize(train[w][0], standardizers[w]) for w in widths},
        train_y, num_classes, epochs, batch_size, learning_rate, joint, seed,
    )
    accuracies, classifiers = {}, {}
    for width in widths:
        classifier = _fold(probes[width], standardizers[width], width)
        logits = classifier(test[width][0])
        predictions = np.argmax(keras.ops.convert_to_numpy(logits), axis=1)
        accuracies[width] = float(np.mean(predictions == test_y))
        classifiers[width] = classifier
    return LinearProbeResult(accuracies, classifiers, num_classes, joint)


def _same_labels_at_every_width(split_data, split):
    labels = [labels for _, labels in split_data.values()]
    for other in labels[1:]:
        if other.shape != labels[0].shape or np.any(other != labels[0]):
            raise ValueError(
                f"The {split} dataset gave its examples in a different order "
                f"at each width (it reshuffles on every pass). Give numpy "
                f"arrays, or a dataset without shuffling."
            )
    return labels[0]


def _standardizer(features):
    mean = features.mean(axis=0)
    scale = 1.0 / np.sqrt(features.var(axis=0) + _EPSILON)
    return mean.astype("float32"), scale.astype("float32")


def _standardize(features, standardizer):
    mean, scale = standardizer
    return (features - mean) * scale


def _train_probes(
    features, labels, num_classes, epochs, batch_size, learning_rate, joint,
    seed,
):
    """Trains one zero-initialized Dense per width; returns them."""
    widths = list(features)  # largest first
    probes = {}
    for width in widths:
        probe = keras.layers.Dense(
            num_classes, kernel_initializer="zeros",
            name=f"probe_{width_name(width)}",
        )
        probe.build((None, features[width].shape[1]))
        probes[width] = probe
    count = len(labels)
    steps = epochs * (-(-count // batch_size))
    optimizer = keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(learning_rate, steps)
    )
    variables = [v for w in widths for v in probes[w].trainable_variables]
    optimizer.build(variables)
    inputs = {w: ops.convert_to_tensor(features[w]) for w in widths}
    targets = ops.convert_to_tensor(labels)

    def loss_fn(constants, indices):
        inputs, targets = constants
        logits = {
            w: probes[w](ops.take(inputs[w], indices, axis=0)) for w in widths
        }
        y = ops.take(targets, indices, axis=0)
        return _probe_loss(logits, y, widths, joint)

    train_step = gradient_step(loss_fn, variables, optimizer,
                               constants=(inputs, targets))
    # Independent probes share nothing, so training them on the same batches
    # with their losses summed equals training each alone (Adam adapts each
    # weight separately).
    rng = np.random.default_rng(seed)
    for _ in range(epochs):
        order = rng.permutation(count).astype("int32")
        for start in range(0, count, batch_size):
            train_step(ops.convert_to_tensor(order[start:start + batch_size]))
    return probes


def _probe_loss(logits, labels, widths, joint):
    total = 0.0
    teacher = ops.softmax(ops.stop_gradient(logits[widths[0]]))
    for index, width in enumerate(widths):
        cross_entropy = ops.mean(
            ops.sparse_categorical_crossentropy(
                labels, logits[width], from_logits=True
            )
        )
        if joint and index > 0:
            soft = ops.mean(
                ops.categorical_crossentropy(
                    teacher, logits[width], from_logits=True
                )
            )
            total += (cross_entropy + soft) / 2.0
        else:
            total += cross_entropy
    return total


def _fold(probe, standardizer, width):
    """A Dense on raw features equal to `probe` on standardized features.

    `((x - mean) * scale) @ W + b = x @ (scale[:, None] * W)
    + (b - (mean * scale) @ W)`.
    """
    mean, scale = standardizer
    kernel, bias = [keras.ops.convert_to_numpy(v) for v in probe.weights]
    classifier = keras.layers.Dense(
        kernel.shape[1], name=f"classifier_{width_name(width)}"
    )
    classifier.build((None, kernel.shape[0]))
    classifier.set_weights(
        [scale[:, None] * kernel, bias - (mean * scale) @ kernel]
    )
    return classifier
