"""Semi-supervised evaluation of every width at once, through SlimClassifier.

The DSPNet protocol: fine-tune with 1% / 10% of the labels and report each
width's top-1. `keras_slim.evaluation.fine_tune_semi_supervised` fine-tunes
each width's plain sub-network alone; this fine-tunes a copy of the whole
slimmable backbone once, every width in each step (`SlimClassifier`), with
the same subset, optimizer, schedule, augmentation and batch, so the two
sit side by side in a run's results (`semi10_top1` and `semi10_slim_top1`).
"""

import math

import keras
import numpy as np

from keras_slim.evaluation import _inputs
from keras_slim.evaluation.calibration import require_calibrated
from keras_slim.evaluation.semi_supervised import _augmented
from keras_slim.evaluation.semi_supervised import _limit_batch_norm_memory
from keras_slim.evaluation.semi_supervised import labeled_subset
from keras_slim.tasks.slim_classifier import SlimClassifier

__all__ = ["fine_tune_all_widths_semi_supervised"]


def fine_tune_all_widths_semi_supervised(
        backbone, train_images, train_labels, test_images, test_labels,
        label_fraction=0.1, epochs=30, batch_size=64, learning_rate=1e-3,
        seed=0, num_classes=None, calibration_batches=20):
    """Fine-tunes every width at once on a fraction of the labels.

    Args:
        backbone: a `keras_slim.backbones.SlimBackbone` (left unchanged: a
            copy is fine-tuned).
        train_images, train_labels, test_images, test_labels, label_fraction,
            epochs, batch_size, learning_rate, seed, num_classes: as
            `keras_slim.evaluation.fine_tune_semi_supervised`.
        calibration_batches: for a width range, the BatchNorm calibration
            batches per width (of all training images: no labels needed).

    Returns:
        `{width: test top-1}` for every width of the list, or every
        `stat_widths` of a range.

    Example:

    ```python
    import numpy as np
    from keras_slim import backbones
    from keras_slim.tasks import fine_tune_all_widths_semi_supervised

    net = backbones.SlimResNet(depth=10, base_width=8, widths=[1.0, 0.5])
    pixels = np.random.default_rng(0).random((24, 8, 8, 3), "float32")
    classes = np.tile([0, 1, 2], 8)
    top1 = fine_tune_all_widths_semi_supervised(
        net, pixels[:16], classes[:16], pixels[16:], classes[16:],
        label_fraction=0.5, epochs=1, batch_size=8)
    assert sorted(top1) == [0.5, 1.0]
    ```

    References:
        - [Wang et al., DSPNet, 2022](https://arxiv.org/abs/2207.06075)
    """
    _inputs.check_backbone(backbone)
    train_x = _inputs.as_images(train_images, "train_images")
    train_y = _inputs.as_labels(train_labels, "train_labels", len(train_x))
    test_x = _inputs.as_images(test_images, "test_images")
    test_y = _inputs.as_labels(test_labels, "test_labels", len(test_x))
    epochs = _inputs.check_positive_int(epochs, "epochs")
    batch_size = _inputs.check_positive_int(batch_size, "batch_size")
    num_classes = _inputs.resolve_num_classes(
        num_classes, ("train_labels", train_y), ("test_labels", test_y))
    subset = labeled_subset(train_y, label_fraction, seed, num_classes)
    keras.utils.set_random_seed(seed)
    classifier = SlimClassifier(_copy(backbone), num_classes, seed=seed)
    steps = math.ceil(epochs * len(subset) / batch_size)
    _limit_batch_norm_memory(classifier, steps)
    classifier.compile(optimizer=keras.optimizers.Adam(
        keras.optimizers.schedules.CosineDecay(learning_rate, steps)))
    classifier.fit(_augmented(train_x[subset], train_y[subset], epochs,
                              batch_size, seed),
                   epochs=1, shuffle=False, verbose=0)
    widths = classifier.backbone.widths
    evaluated = list(widths.stat_widths if widths.is_range else widths)
    if widths.is_range:
        classifier.calibrate(train_x, widths=evaluated,
                             num_batches=calibration_batches,
                             batch_size=batch_size, seed=seed)
    require_calibrated(classifier.backbone, evaluated)
    return {w: float(np.mean(np.argmax(classifier.predict(
        test_x, width=w, batch_size=256, verbose=0), -1) == test_y))
        for w in evaluated}


def _copy(backbone):
    """A copy of `backbone` with its weights (the original stays as is)."""
    copy = type(backbone).from_config(backbone.get_config())
    copy.build((None, *backbone.image_shape))
    copy.set_weights(backbone.get_weights())
    return copy
