"""TensorFlow Datasets sources (`"cifar10"`, `"tfds:fashion_mnist"`, ...)."""

import numpy as np

from keras_slim.data import _convert

_BATCH = 1024


def read_split(name, split, data_dir, image_size, max_examples, max_bytes):
    """Returns `(images uint8 (N,H,W,C), labels int32, class_names)`."""
    import tensorflow as tf
    import tensorflow_datasets as tfds

    builder = _builder(tfds, name, data_dir)
    image_key, label_key = _supervised_keys(builder, name)
    splits = dict(builder.info.splits)
    if splits and split not in splits:
        raise ValueError(
            f"Unknown split {split!r} for TFDS data set {name!r}: available "
            f"splits are {sorted(splits)}. Pass split= one of them."
        )
    image_feature = builder.info.features[image_key]
    shape = tuple(image_feature.shape)
    if splits:
        count = splits[split].num_examples
        if max_examples is not None:
            count = min(count, max_examples)
        known = image_size or (shape[:2] if None not in shape[:2] else None)
        if known is not None and shape[-1] is not None:
            _convert.check_memory(f"TFDS {name!r}", count,
                                  (*known, shape[-1]), max_bytes)
    ds = builder.as_dataset(split=split, as_supervised=True,
                            shuffle_files=False)
    if max_examples is not None:
        ds = ds.take(max_examples)  # TFDS records are already shuffled
    if image_size is not None:
        ds = ds.map(lambda x, y: (_resize_uint8(tf, x, image_size), y),
                    num_parallel_calls=tf.data.AUTOTUNE)
    elif None in shape[:2]:
        return _read_unbatched(ds, name, _class_names(builder, label_key))
    images, labels = [], []
    for x, y in ds.batch(_BATCH).as_numpy_iterator():
        images.append(x)
        labels.append(y)
    if not images:
        raise ValueError(f"TFDS data set {name!r} split {split!r} is empty.")
    return (np.concatenate(images), np.concatenate(labels).astype(np.int32),
            _class_names(builder, label_key))


def _builder(tfds, name, data_dir):
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except Exception as error:  # DatasetNotFoundError and kin
        raise ValueError(
            f"{name!r} is neither an existing path nor a TFDS data set "
            f"({type(error).__name__}: {str(error).splitlines()[0]}). Pass "
            f"'digits', a TFDS name, or a path: a folder of class "
            f"subfolders, a .zip of one, or a folder of IDX files."
        ) from error
    if _is_prepared(builder):
        return builder
    try:
        builder.download_and_prepare()
    except Exception as error:  # no network, missing files, missing deps
        raise RuntimeError(
            f"TFDS data set {name!r} is not prepared in data_dir="
            f"{data_dir!r} and could not be downloaded and prepared "
            f"({type(error).__name__}: {error}). Without network access, "
            f"point load() at a local copy: data_dir= a folder where "
            f"{name!r} is already prepared, or the data as a folder of "
            f"class subfolders, a .zip of one, or a folder of IDX files."
        ) from error
    return builder


def _is_prepared(builder):
    try:
        return bool(builder.is_prepared())
    except Exception:  # older TFDS or a mocked builder
        return False


def _supervised_keys(builder, name):
    keys = builder.info.supervised_keys
    if not keys or len(keys) != 2:
        raise ValueError(
            f"TFDS data set {name!r} has no (image, label) supervised keys; "
            f"load() reads labeled image classification data sets only."
        )
    return keys


def _class_names(builder, label_key):
    feature = builder.info.features[label_key]
    names = getattr(feature, "names", None)
    if names:
        return list(names)
    return [str(i) for i in range(int(feature.num_classes))]


def _resize_uint8(tf, image, size):
    resized = tf.image.resize(image, size, antialias=True)
    return tf.cast(tf.clip_by_value(tf.round(resized), 0, 255), tf.uint8)


def _read_unbatched(ds, name, class_names):
    """Variable-size images without `image_size`: all must still match."""
    images, labels = [], []
    for x, y in ds.as_numpy_iterator():
        if images and x.shape[:2] != images[0].shape[:2]:
            raise ValueError(
                f"TFDS data set {name!r} has images of different sizes: "
                f"{images[0].shape[0]}x{images[0].shape[1]} and "
                f"{x.shape[0]}x{x.shape[1]} (height x width). Pass "
                f"image_size=(height, width) to resize every image."
            )
        images.append(x)
        labels.append(y)
    if not images:
        raise ValueError(f"TFDS data set {name!r} is empty.")
    return np.stack(images), np.asarray(labels, np.int32), class_names
