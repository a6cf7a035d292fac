"""Backbone features at a width, in inference mode."""

import numpy as np

from keras_slim.evaluation import _inputs
from keras_slim.evaluation._compiled import float_batch
from keras_slim.evaluation._compiled import forward_function
from keras_slim.evaluation.calibration import require_calibrated


def extract_features(backbone, images, width=None, batch_size=256):
    """Pooled backbone features of `images` at `width`, in inference mode.

    Each width has one compiled function, reused by every later call at
    that width (TensorFlow traces it once for any batch size and image size;
    JAX compiles it once per input shape), and since the width is fixed
    inside it (not read from any state), a function of one width can never
    serve another.

    Args:
        backbone: a `keras_slim.backbones.SlimBackbone`.
        images: float images `(N, H, W, C)` as a numpy array, or a
            `tf.data.Dataset` of image batches or of `(images, labels)`
            batches (the labels are ignored).
        width: a width of the backbone (default: the largest). For a width
            range, a calibrated one of its `stat_widths`.
        batch_size: int, images per forward pass (numpy input only).

    Returns:
        float32 numpy array `(N, backbone.feature_dim(width))`.

    Example:

    ```python
    import numpy as np
    from keras_slim.backbones import SlimResNet
    from keras_slim.evaluation import extract_features

    backbone = SlimResNet(depth=10, base_width=8, widths=[1.0, 0.5])
    features = extract_features(backbone, np.zeros((4, 8, 8, 3)), 0.5)
    assert features.shape == (4, 32)
    ```
    """
    features, _ = features_and_labels(
        backbone, images, None, width=width, batch_size=batch_size
    )
    return features


def features_and_labels(
    backbone, images, labels, width=None, batch_size=256, name="images"
):
    """(features, labels) of numpy images + labels or of a labeled dataset.

    A dataset is read once, so a shuffled dataset keeps each label with its
    image. `labels` must be `None` when the dataset yields them.

    Returns:
        `(features, labels)`; labels are int64 `(N,)`, or `None` when neither
        `labels` nor the dataset gives any.
    """
    _inputs.check_backbone(backbone)
    batch_size = _inputs.check_positive_int(batch_size, "batch_size")
    width = _inputs.resolve_widths(backbone, width)[0]
    require_calibrated(backbone, [width])
    label_name = "labels" if name == "images" else (
        name.replace("images", "labels")
    )
    # Labels are checked before the forward passes: fail fast.
    if labels is not None and _inputs.is_dataset(images):
        if isinstance(images.element_spec, (tuple, list)):
            raise ValueError(
                f"`{name}` is a dataset of (images, labels) and labels were "
                f"also passed: give the labels once (labels=None for such a "
                f"dataset)."
            )
    elif labels is not None:
        count = len(_inputs.as_images(images, name))
        labels = _inputs.as_labels(labels, label_name, count)
    forward = forward_function(backbone, width)
    outputs, found = [], []
    for image_batch, label_batch in _inputs.batches(images, batch_size, name):
        batch = float_batch(image_batch)
        _check_channels(backbone, batch, name)
        outputs.append(np.asarray(forward(batch)).astype("float32"))
        if label_batch is not None:
            found.append(label_batch)
    if not outputs:
        raise ValueError(f"`{name}` yielded no batch: it is empty.")
    features = np.concatenate(outputs)
    if found:
        labels = np.concatenate(found)
    if labels is not None:
        labels = _inputs.as_labels(labels, label_name, len(features))
    return features, labels


def _check_channels(backbone, batch, name):
    expected = backbone.image_shape[-1]
    if batch.shape[-1] != expected:
        raise ValueError(
            f"`{name}` has {batch.shape[-1]}-channel images but the backbone "
            f"takes {expected} channels (batch shape {tuple(batch.shape)})."
        )


def labeled_features(backbone, images, labels, width, batch_size, split):
    """`features_and_labels` of one split, which must come with labels.

    `split` ("train", "test") names the arguments in the error.
    """
    features, labels = features_and_labels(
        backbone, images, labels, width=width, batch_size=batch_size,
        name=f"{split}_images",
    )
    if labels is None:
        raise ValueError(
            f"`{split}_labels` is missing: pass integer class ids, or a "
            f"dataset of (images, labels) batches as `{split}_images`."
        )
    return features, labels
