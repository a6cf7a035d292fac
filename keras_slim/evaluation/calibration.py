"""BatchNorm calibration of width ranges (universally slimmable networks).

A width range shares one sliced BatchNorm affine across all widths and trains
on batch statistics only, so a width's running statistics do not exist until
they are *calibrated*: reset, then filled with the cumulative average of the
batch statistics of that width's forward passes in training mode over
training images. Calibrating in inference mode, or evaluating without
calibrating, gives near-chance accuracy (a known user error this module
refuses).
"""

import numpy as np

from keras_slim.evaluation import _inputs
from keras_slim.evaluation._compiled import float_batch
from keras_slim.evaluation._compiled import forward_function
from keras_slim.layers import SlimBatchNormalization


def calibrate_batch_norm(
    backbone, images, widths=None, num_batches=None, batch_size=256, seed=0
):
    """Fills the BatchNorm statistics of a width range's widths from data.

    For a width range, for each requested width: resets the statistics of
    that width in every `SlimBatchNormalization`, then runs the width's
    forward pass in training mode with `calibrate_bn=True` over up to
    `num_batches` batches, so that each layer stores the cumulative average
    of the batch means and variances. Only BatchNorm statistics change,
    never a trainable weight.

    For a width list this is a no-op that returns `{}` at once: switchable
    BatchNorm keeps private moving statistics per width, updated by training
    itself.

    Args:
        backbone: a `keras_slim.backbones.SlimBackbone`.
        images: training images `(N, H, W, C)` in [0, 1] (numpy), or a
            `tf.data.Dataset` of image batches or `(images, labels)` batches.
            Use the training distribution (the statistics describe it),
            without heavy augmentation.
        widths: widths to calibrate, each one of the range's `stat_widths`
            (default: all of them).
        num_batches: int or `None`, batches per width, at most one pass
            over numpy `images` (default: one pass).
        batch_size: int, images per batch for numpy input. Each batch weighs
            the same in the average, so a numpy input's last, smaller batch
            is dropped when at least one full batch exists.
        seed: int, numpy images are shuffled with this seed before batching
            (class-sorted data would otherwise give skewed batches).

    Returns:
        dict `{width: number of batches averaged}` (empty for a width list).

    Raises:
        ValueError: a width is not one of the range's `stat_widths` (the
            only widths with stored statistics), or bad input.

    Example:

    ```python
    import numpy as np
    from keras_slim import Widths
    from keras_slim.backbones import SlimResNet
    from keras_slim.evaluation import calibrate_batch_norm

    widths = Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.5])
    backbone = SlimResNet(depth=10, base_width=8, widths=widths)
    train_images = np.random.default_rng(0).random((8, 8, 8, 3), "float32")
    calibrate_batch_norm(backbone, train_images, batch_size=4)
    features = backbone(train_images, width=0.5, training=False)
    ```
    """
    _inputs.check_backbone(backbone)
    if not backbone.widths.is_range:
        return {}
    widths = _inputs.resolve_widths(backbone, widths)
    batch_size = _inputs.check_positive_int(batch_size, "batch_size")
    if num_batches is not None:
        num_batches = _inputs.check_positive_int(num_batches, "num_batches")
    if not _inputs.is_dataset(images):
        images = _inputs.as_images(images)
    norms = slim_batch_norms(backbone)
    counts = {}
    for width in widths:
        for layer in norms:
            layer.reset_statistics([width])
        # Compiled once per width and reused: a monitor calibrates often.
        step = forward_function(backbone, width, calibrate=True)
        count = 0
        batches = _calibration_batches(images, batch_size, num_batches, seed)
        for batch in batches:
            step(float_batch(batch))
            count += 1
        counts[width] = count
    return counts


def require_calibrated(backbone, widths):
    """Raises when a range width's statistics were never calibrated."""
    if not backbone.widths.is_range:
        return
    norms = slim_batch_norms(backbone)
    for width in widths:
        if any(layer.calibrated(width) == 0 for layer in norms):
            raise ValueError(
                f"Width {width:g} of this width range has no calibrated "
                f"BatchNorm statistics, so its inference-mode features are "
                f"meaningless. Call keras_slim.evaluation."
                f"calibrate_batch_norm(backbone, train_images, "
                f"widths=[{width:g}]) first (and again after more training)."
            )


def slim_batch_norms(backbone):
    """Every `SlimBatchNormalization` inside `backbone`."""
    return [
        layer for layer in backbone._flatten_layers(include_self=False)
        if isinstance(layer, SlimBatchNormalization)
    ]


def _calibration_batches(images, batch_size, num_batches, seed):
    if _inputs.is_dataset(images):
        produced = 0
        for batch, _ in _inputs.batches(images, batch_size):
            if num_batches is not None and produced >= num_batches:
                return
            produced += 1
            yield batch
        if produced == 0:
            raise ValueError("The calibration dataset is empty.")
        return
    full = len(images) // batch_size
    # Every batch weighs the same in the cumulative average: a small last
    # batch would count as much as a full one, so drop it when possible.
    total = full if full else 1
    if num_batches is not None:
        total = min(total, num_batches)
    # Shuffled so that class-sorted data does not give one-class batches;
    # indices, not a shuffled copy, keep memory at one batch.
    order = np.random.default_rng(seed).permutation(len(images))
    for index in range(total):
        chosen = order[index * batch_size:(index + 1) * batch_size]
        yield images[np.sort(chosen)]


def with_stat_widths(backbone, widths):
    """The same range backbone with BatchNorm statistics slots for `widths`.

    A width range stores running statistics only for its `stat_widths`, so
    only those can run in inference mode. This returns a new backbone whose
    `stat_widths` also hold `widths` (any widths inside the range), with
    every weight and every existing statistic copied; the new widths start
    uncalibrated: call `calibrate_batch_norm` on them next.

    Args:
        backbone: a `SlimBackbone` over a width range.
        widths: widths inside the range.

    Returns:
        `backbone` itself when it already holds them all, else the copy.

    Example:

    ```python
    import numpy as np
    from keras_slim import Widths
    from keras_slim.backbones import SlimResNet
    from keras_slim.evaluation import calibrate_batch_norm, with_stat_widths

    backbone = SlimResNet(depth=10, base_width=8,
                          widths=Widths(min_width=0.25, max_width=1.0))
    x_train = np.random.default_rng(0).random((8, 8, 8, 3), "float32")
    wider = with_stat_widths(backbone, [0.6])
    calibrate_batch_norm(wider, x_train, widths=[0.6])
    plain = wider.subnetwork(0.6)
    ```
    """
    _inputs.check_backbone(backbone)
    if not backbone.widths.is_range:
        raise ValueError(
            "`with_stat_widths` is for a width range; a width list has "
            f"statistics for each of its widths {list(backbone.widths)}.")
    wanted = [backbone.widths.validate(float(w)) for w in widths]
    known = list(backbone.widths.stat_widths)
    missing = [w for w in wanted
               if not any(abs(w - k) <= 1e-6 for k in known)]
    if not missing:
        return backbone
    config = backbone.get_config()
    config["widths"] = dict(config["widths"])
    config["widths"]["stat_widths"] = sorted(set(known + missing),
                                             reverse=True)
    copy = type(backbone).from_config(config)
    copy.build((None, *backbone.image_shape))
    _copy_weights(backbone, copy)
    return copy


def _copy_weights(source, target):
    """Copy weights layer by layer, by name (the architectures match)."""
    pairs = zip(source._flatten_layers(include_self=False),
                target._flatten_layers(include_self=False))
    for old, new in pairs:
        saved = {weight.name: weight for weight in old.weights}
        for weight in new._trainable_variables + new._non_trainable_variables:
            if weight.name in saved:
                weight.assign(saved[weight.name])
