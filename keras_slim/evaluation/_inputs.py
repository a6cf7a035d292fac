"""Checks and conversions of the evaluation inputs, written once.

Every evaluation function takes images as a numpy array `(N, H, W, C)` (or a
`tf.data.Dataset` of image batches or `(images, labels)` batches) and labels
as integer class ids `(N,)`. Bad input fails here with a message that says
what is wrong and how to fix it, never deep inside TensorFlow.

TensorFlow is never imported here: a `tf.data.Dataset` can only exist once
its user imported TensorFlow, so on JAX without TensorFlow every input is an
array.
"""

import numbers
import sys

import numpy as np

from keras_slim.backbones.slim_backbone import SlimBackbone


def check_backbone(backbone, name="backbone"):
    if not isinstance(backbone, SlimBackbone):
        raise ValueError(
            f"`{name}` must be a keras_slim backbone (e.g. "
            f"keras_slim.backbones.SlimResNet), got "
            f"{type(backbone).__name__}. For a pretraining model such as "
            f"SlimCLR pass `model.backbone`."
        )
    return backbone


def is_dataset(data):
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


def as_images(images, name="images"):
    """A float32 numpy array `(N, H, W, C)` with N >= 1."""
    try:
        array = np.asarray(images)
    except (TypeError, ValueError) as error:
        raise ValueError(
            f"`{name}` must be a numpy array of images (N, height, width, "
            f"channels) or a tf.data.Dataset of batches; got "
            f"{type(images).__name__} ({error})."
        ) from None
    if array.ndim != 4:
        raise ValueError(
            f"`{name}` must have shape (N, height, width, channels), got "
            f"shape {array.shape}. Add the channel axis of grayscale images "
            f"with images[..., None]."
        )
    if len(array) == 0:
        raise ValueError(f"`{name}` is empty: give at least one image.")
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(
        array.dtype, np.complexfloating
    ):
        raise ValueError(
            f"`{name}` must hold real numbers (float images in [0, 1]), got "
            f"dtype {array.dtype}."
        )
    return array.astype("float32", copy=False)


def as_labels(labels, name="labels", count=None):
    """Integer class ids `(N,)` as int64; `count` is the expected N."""
    array = np.asarray(labels)
    if array.ndim == 2 and array.shape[1] > 1:
        raise ValueError(
            f"`{name}` has shape {array.shape}: give integer class ids of "
            f"shape (N,), not one-hot rows (use np.argmax({name}, axis=1))."
        )
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(
            f"`{name}` must be integer class ids of shape (N,), got shape "
            f"{array.shape}."
        )
    if array.dtype == bool or not np.issubdtype(array.dtype, np.number):
        raise ValueError(
            f"`{name}` must be integer class ids, got dtype {array.dtype}."
        )
    if not np.issubdtype(array.dtype, np.integer):
        if not np.all(np.isfinite(array)) or np.any(array != np.round(array)):
            raise ValueError(
                f"`{name}` must be integer class ids, got non-integer values "
                f"such as {array[array != np.round(array)][:3]}."
            )
    array = array.astype("int64")
    if count is not None and len(array) != count:
        raise ValueError(
            f"`{name}` has {len(array)} labels but there are {count} "
            f"examples: give one label per image."
        )
    if len(array) and array.min() < 0:
        raise ValueError(
            f"`{name}` must be class ids >= 0, got {array.min()}."
        )
    return array


def resolve_num_classes(num_classes, *labeled):
    """`num_classes`, or 1 + the largest label; checks every label fits.

    `labeled` holds `(name, labels)` pairs.
    """
    if num_classes is None:
        num_classes = 1 + max(int(labels.max()) for _, labels in labeled)
    elif isinstance(num_classes, bool) or not isinstance(
        num_classes, numbers.Integral
    ) or num_classes < 1:
        raise ValueError(
            f"`num_classes` must be a positive integer, got {num_classes!r}."
        )
    num_classes = int(num_classes)
    for name, labels in labeled:
        if len(labels) and labels.max() >= num_classes:
            raise ValueError(
                f"`{name}` holds class id {labels.max()}, out of range for "
                f"{num_classes} classes (ids 0..{num_classes - 1}). Pass the "
                f"right `num_classes` or remap the labels to 0..C-1."
            )
    return num_classes


def check_positive_int(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or (
        value < 1
    ):
        raise ValueError(f"`{name}` must be an integer >= 1, got {value!r}.")
    return int(value)


def check_positive_float(value, name):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not (
        np.isfinite(value) and value > 0
    ):
        raise ValueError(f"`{name}` must be a number > 0, got {value!r}.")
    return float(value)


def resolve_widths(backbone, widths=None):
    """The widths to evaluate, validated, largest first.

    Default: the backbone's width list, or a range's `stat_widths` (the only
    widths of a range that can run in inference mode).
    """
    spec = backbone.widths
    if widths is None:
        return list(spec.stat_widths)
    if isinstance(widths, numbers.Real):
        widths = [widths]
    resolved = []
    for width in widths:
        width = spec.validate(width)
        if spec.is_range and not _in_stat_widths(spec, width):
            raise ValueError(
                f"Width {width:g} holds no BatchNorm statistics: a width "
                f"range stores statistics (filled by BN calibration) only "
                f"for its `stat_widths` {list(spec.stat_widths)}, fixed when "
                f"the backbone is built, so only those widths can be "
                f"calibrated and run in inference mode. Use one of them, or "
                f"rebuild the backbone with Widths(min_width="
                f"{spec.min_width:g}, max_width={spec.max_width:g}, "
                f"stat_widths=[...]) listing {width:g}."
            )
        if width not in resolved:
            resolved.append(width)
    if not resolved:
        raise ValueError("`widths` is empty: give at least one width.")
    return sorted(resolved, reverse=True)


def _in_stat_widths(spec, width):
    try:
        spec.stat_index(width)
    except ValueError:
        return False
    return True


def batches(data, batch_size, name="images"):
    """Yields `(images, labels or None)` batches of numpy arrays or a dataset.

    A dataset may yield image batches or `(images, labels, ...)` tuples.
    """
    if is_dataset(data):
        yield from _dataset_batches(data, name)
        return
    images = as_images(data, name)
    for start in range(0, len(images), batch_size):
        yield images[start:start + batch_size], None


def _dataset_batches(dataset, name):
    spec = dataset.element_spec
    if isinstance(spec, dict):
        raise ValueError(
            f"`{name}` yields dicts; give a dataset of image batches or of "
            f"(images, labels) batches, e.g. ds.map(lambda d: (d['image'], "
            f"d['label']))."
        )
    has_labels = isinstance(spec, (tuple, list))
    image_spec = spec[0] if has_labels else spec
    if image_spec.shape.rank != 4:
        raise ValueError(
            f"`{name}` must yield batches of images of shape (batch, height, "
            f"width, channels), got elements of shape {image_spec.shape}. "
            f"Batch the dataset, e.g. ds.batch(256)."
        )
    for element in dataset:
        if has_labels:
            labels = element[1] if len(element) > 1 else None
            yield element[0], None if labels is None else labels.numpy()
        else:
            yield element, None


def as_feature_matrix(features, name, dtype):
    """`features` as a non-empty `(N, dim)` numpy array of `dtype`."""
    array = np.asarray(features, dtype=dtype)
    if array.ndim != 2 or not array.size:
        raise ValueError(
            f"`{name}` must be a non-empty float array (N, dim), got shape "
            f"{array.shape}."
        )
    return array
