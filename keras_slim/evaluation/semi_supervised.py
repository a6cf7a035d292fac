"""Semi-supervised evaluation: fine-tune one width on a few labels.

The protocol of SimCLR and DSPNet: keep a small class-balanced fraction of
the training labels (1% or 10%), fine-tune the pretrained network end to end
with a linear head on them, and report top-1 on the test set. The slimmable
backbone itself is never touched: its width's plain sub-network (a copy) is
fine-tuned.
"""

import math
import numbers

import keras
import numpy as np

from keras_slim import _backend
from keras_slim.evaluation import _inputs
from keras_slim.evaluation.calibration import require_calibrated
from keras_slim.width import width_name

# Largest weight the pre-fine-tuning BatchNorm statistics may keep in the
# moving averages at the end of fine-tuning.
_INITIAL_WEIGHT = 0.01


def labeled_subset(labels, label_fraction, seed=0, num_classes=None):
    """Indices of a seeded, class-balanced subset of the labeled examples.

    Every class gets the same number of examples,
    `max(1, round(label_fraction * N / num_classes))` (fewer only when a
    class has fewer), drawn without replacement with `seed`.

    Args:
        labels: int class ids `(N,)`.
        label_fraction: float in (0, 1], e.g. 0.01 or 0.1.
        seed: int.
        num_classes: int or `None` (1 + the largest label). Every class must
            have at least one example.

    Returns:
        sorted int64 numpy array of indices into `labels`.

    Example:

    ```python
    import numpy as np
    from keras_slim.evaluation import labeled_subset

    kept = labeled_subset(np.repeat(np.arange(10), 100), 0.1)
    assert kept.shape == (100,)  # 10 indices of each class
    ```
    """
    labels = _inputs.as_labels(labels, "train_labels")
    if not len(labels):
        raise ValueError("`train_labels` is empty.")
    fraction = _check_fraction(label_fraction)
    num_classes = _inputs.resolve_num_classes(
        num_classes, ("train_labels", labels)
    )
    per_class = max(1, round(fraction * len(labels) / num_classes))
    rng = np.random.default_rng(seed)
    chosen = []
    for label in range(num_classes):
        members = np.flatnonzero(labels == label)
        if not len(members):
            raise ValueError(
                f"Class {label} has no training example, so a class-balanced "
                f"subset cannot include it. Remap the labels to the classes "
                f"present, or pass the right `num_classes`."
            )
        take = min(per_class, len(members))
        chosen.append(rng.choice(members, size=take, replace=False))
    return np.sort(np.concatenate(chosen))


def fine_tune_semi_supervised(
    backbone,
    width,
    train_images,
    train_labels,
    test_images,
    test_labels,
    label_fraction=0.1,
    epochs=30,
    batch_size=64,
    learning_rate=1e-3,
    seed=0,
    num_classes=None,
):
    """Fine-tunes a width on a fraction of the labels; returns test top-1.

    Takes the class-balanced, seeded subset of `labeled_subset`, builds
    `backbone.subnetwork(width)` (a plain copy: the slimmable backbone is
    unchanged) with a `Dense(num_classes)` head, and trains both end to end
    with light augmentation (random horizontal flip, and a random crop of
    the image zero-padded by 1/8 of its size on each side), Adam with a
    cosine-decayed learning rate and BatchNorm in training mode. A short run
    lowers the BatchNorm momentums so that the moving statistics keep at
    most 1% of their pre-fine-tuning values at the end (long runs keep the
    backbone's momentum). The test images are classified in inference mode,
    unaugmented.

    Args:
        backbone: a `keras_slim.backbones.SlimBackbone`.
        width: the width to fine-tune (a range's: calibrated, in
            `stat_widths`).
        train_images: numpy images `(N, H, W, C)` in [0, 1].
        train_labels: int class ids `(N,)`.
        test_images: numpy images `(M, H, W, C)` in [0, 1].
        test_labels: int class ids `(M,)`.
        label_fraction: float in (0, 1], fraction of labels kept (0.01 and
            0.1 are the standard settings).
        epochs: int, passes over the labeled subset.
        batch_size: int.
        learning_rate: float, Adam's initial learning rate.
        seed: int, seeds the subset, the head's initialization, the batch
            order and the augmentation.
        num_classes: int or `None` (1 + the largest label).

    Returns:
        float, test top-1 in [0, 1].

    Raises:
        ImportError: TensorFlow is not installed (the augmentation is a
            `tf.data` pipeline, on either backend).

    Example:

    ```python
    import numpy as np
    from keras_slim import backbones
    from keras_slim.evaluation import fine_tune_semi_supervised

    net = backbones.SlimResNet(depth=10, base_width=8, widths=[1.0, 0.5])
    pixels = np.random.default_rng(0).random((24, 8, 8, 3), "float32")
    classes = np.tile([0, 1, 2], 8)
    # Half of the 16 training labels, one epoch; tested on the last 8 images.
    top1 = fine_tune_semi_supervised(net, 0.5, pixels[:16], classes[:16],
                                     pixels[16:], classes[16:],
                                     label_fraction=0.5, epochs=1, batch_size=8)
    assert 0.0 <= top1 <= 1.0
    ```

    References:
        - [Chen et al., Big Self-Supervised Models are Strong Semi-Supervised
          Learners, NeurIPS 2020](https://arxiv.org/abs/2006.10029)
        - [Wang et al., DSPNet, 2022](https://arxiv.org/abs/2207.06075)
    """
    _inputs.check_backbone(backbone)
    width = _inputs.resolve_widths(backbone, width)[0]
    require_calibrated(backbone, [width])
    train_x = _inputs.as_images(train_images, "train_images")
    train_y = _inputs.as_labels(train_labels, "train_labels", len(train_x))
    test_x = _inputs.as_images(test_images, "test_images")
    test_y = _inputs.as_labels(test_labels, "test_labels", len(test_x))
    if train_x.shape[1:] != test_x.shape[1:]:
        raise ValueError(
            f"Train and test images differ in shape: {train_x.shape[1:]} vs "
            f"{test_x.shape[1:]}. Resize them to one size."
        )
    epochs = _inputs.check_positive_int(epochs, "epochs")
    batch_size = _inputs.check_positive_int(batch_size, "batch_size")
    learning_rate = _inputs.check_positive_float(
        learning_rate, "learning_rate"
    )
    num_classes = _inputs.resolve_num_classes(
        num_classes, ("train_labels", train_y), ("test_labels", test_y)
    )
    subset = labeled_subset(train_y, label_fraction, seed, num_classes)
    # First: on JAX without TensorFlow this fails before anything is built.
    # All epochs in one dataset read as one Keras epoch: setting up a Keras
    # epoch costs more than the few steps of a 1% subset.
    examples = _augmented(train_x[subset], train_y[subset], epochs,
                          batch_size, seed)
    model = _classifier(backbone, width, train_x.shape[1:], num_classes, seed)
    steps = math.ceil(epochs * len(subset) / batch_size)
    _limit_batch_norm_memory(model, steps)
    model.compile(
        optimizer=keras.optimizers.Adam(
            keras.optimizers.schedules.CosineDecay(learning_rate, steps)
        ),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    # Built here, not in the traced step (which would then trace twice).
    model.optimizer.build(model.trainable_variables)
    model.fit(examples, epochs=1, shuffle=False, verbose=0)
    logits = model.predict(test_x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == test_y))


def _check_fraction(value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
        0 < value <= 1
    ):
        raise ValueError(
            f"`label_fraction` must be in (0, 1], e.g. 0.01 for 1% of the "
            f"labels; got {value!r}."
        )
    return float(value)


def _classifier(backbone, width, image_shape, num_classes, seed):
    images = keras.Input(shape=image_shape, name="images")
    features = backbone.subnetwork(width, input_shape=image_shape)(images)
    logits = keras.layers.Dense(
        num_classes,
        kernel_initializer=keras.initializers.GlorotUniform(seed=seed),
        name="classifier",
    )(features)
    return keras.Model(
        images, logits, name=f"semi_supervised_{width_name(width)}"
    )


def _limit_batch_norm_memory(model, steps):
    """Lowers BN momentums so the moving statistics forget the initial ones.

    After `steps` updates the initial statistics keep a weight of
    `momentum ** steps` in the moving averages. A short run (a 1% subset of
    a small set) would evaluate with statistics still partly those of the
    weights before fine-tuning; capping the momentum at
    `_INITIAL_WEIGHT ** (1 / steps)` bounds that weight. Long runs keep the
    backbone's momentum.
    """
    cap = _INITIAL_WEIGHT ** (1.0 / steps)
    for layer in model._flatten_layers(include_self=False):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = min(layer.momentum, cap)


def _augmented(images, labels, epochs, batch_size, seed):
    """`epochs` passes of shuffled, flipped, padded-and-cropped examples.

    Reproducible from `seed`: each pass has its own order and every example
    of every pass its own stateless augmentation seed. A `tf.data` pipeline:
    it needs TensorFlow, on either backend.
    """
    tf = _backend.require_tensorflow(
        "fine_tune_semi_supervised (its tf.data augmentation)")
    height, width = images.shape[1:3]
    pad_y, pad_x = max(1, height // 8), max(1, width // 8)
    examples = tf.data.Dataset.from_tensor_slices((images, labels)).shuffle(
        len(images), seed=seed, reshuffle_each_iteration=True
    ).repeat(epochs)
    seeds = tf.data.Dataset.random(seed=seed).batch(2)

    def augment(example, pair):
        image, label = example
        image = tf.image.stateless_random_flip_left_right(image, pair)
        padded = tf.pad(image, [[pad_y, pad_y], [pad_x, pad_x], [0, 0]])
        image = tf.image.stateless_random_crop(
            padded, tf.shape(image), pair + 1
        )
        return image, label

    return tf.data.Dataset.zip(examples, seeds).map(augment).batch(
        batch_size
    )
