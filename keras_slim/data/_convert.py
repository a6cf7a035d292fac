"""Array helpers shared by every loader: sizes, channels, subsets, memory."""

import numbers

import numpy as np

# ITU-R 601-2 luma, the weights PIL's convert("L") and tf.image use.
LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float32)

# Images are resized in chunks so that the float32 copy stays small.
_RESIZE_CHUNK = 2048


def image_size_pair(image_size):
    """`None`, an int or an `(h, w)` pair -> `None` or a tuple of two ints."""
    if image_size is None:
        return None
    if isinstance(image_size, numbers.Integral):
        image_size = (image_size, image_size)
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(
            f"`image_size` must be an int or a pair (height, width), got "
            f"{image_size!r}."
        ) from None
    if height < 1 or width < 1:
        raise ValueError(f"`image_size` must be positive, got {image_size!r}.")
    return height, width


def check_channels(channels):
    if channels not in (None, 1, 3):
        raise ValueError(
            f"`channels` must be None (keep), 1 (grey) or 3 (RGB), got "
            f"{channels!r}."
        )
    return channels


def convert_channels(images, channels):
    """Grey <-> RGB for uint8 `(..., C)` arrays; `channels=None` keeps C."""
    have = images.shape[-1]
    if channels is None or have == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    grey = np.tensordot(images.astype(np.float32), LUMA, axes=([-1], [0]))
    return np.clip(np.rint(grey), 0, 255).astype(np.uint8)[..., None]


def resize_images(images, size):
    """Resizes uint8 `(N, H, W, C)` to `size`, bilinear and antialiased."""
    if size is None or tuple(images.shape[1:3]) == tuple(size):
        return images
    import tensorflow as tf

    out = np.empty((images.shape[0], *size, images.shape[-1]), np.uint8)
    for start in range(0, images.shape[0], _RESIZE_CHUNK):
        chunk = images[start:start + _RESIZE_CHUNK]
        resized = tf.image.resize(chunk, size, antialias=True)
        out[start:start + _RESIZE_CHUNK] = np.clip(
            np.rint(resized.numpy()), 0, 255).astype(np.uint8)
    return out


def subset_indices(count, max_examples):
    """The examples `max_examples` keeps: a seeded random subset, in order.

    A random subset (seed 0, the same every call) rather than the first
    `max_examples`, because folder trees list their images class by class.
    """
    if max_examples is None or max_examples >= count:
        return np.arange(count)
    picked = np.random.default_rng(0).choice(count, max_examples,
                                             replace=False)
    return np.sort(picked)


def check_max_examples(max_examples):
    if max_examples is None:
        return None
    if not isinstance(max_examples, numbers.Integral) or max_examples < 1:
        raise ValueError(
            f"`max_examples` must be a positive int or None, got "
            f"{max_examples!r}."
        )
    return int(max_examples)


def check_memory(name, count, shape, max_bytes):
    """Raises when `count` images of `shape` would exceed `max_bytes`."""
    if max_bytes is None:
        return
    needed = int(count) * int(np.prod(shape))
    if needed <= max_bytes:
        return
    fits = max(1, int(max_bytes // max(1, int(np.prod(shape)))))
    raise MemoryError(
        f"{name}: {count} images of shape {tuple(shape)} need "
        f"{needed / 2**30:.1f} GiB in memory, above max_bytes="
        f"{max_bytes / 2**30:.1f} GiB. keras_slim.data holds a data set in "
        f"memory, which suits CPU-scale data (digits, Fashion-MNIST, "
        f"CIFAR, STL-10). Stream an image folder instead "
        f"(keras_slim.data.stream, or data.stream=true in a config), load a "
        f"subset (max_examples={fits} fits), smaller images "
        f"(image_size=...), or raise max_bytes."
    )
