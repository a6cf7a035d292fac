"""Standard supervised augmentation: random-resized crop and horizontal flip."""

import keras
import tensorflow as tf

from keras_slim.data import _augment_ops as ops


@keras.saving.register_keras_serializable(package="keras_slim")
class SupervisedAugmentation:
    """The standard supervised augmentation: random-resized crop and flip.

    Applied to a batch of `(images, labels)` (or of images alone) inside a
    `tf.data` map, it returns one float32 view per image in [0, 1] of shape
    `(B, image_size, image_size, C)`, with the labels untouched: the random
    resized crop of torchvision's `RandomResizedCrop` (area `crop_scale` of
    the image, aspect ratio `crop_ratio`, `crop_attempts` tries then a central
    crop), resized to `image_size`, and a horizontal flip with
    `flip_probability`. This is what supervised slimmable training
    (US-Nets, SlimCLR's `main_slim.py`) uses; unlike `TwoViewAugmentation` it
    makes no second view and no colour distortion.

    Randomness is stateless: the same `seed` gives the same crops.

    Args:
        image_size: int or `(height, width)`, the output size.
        crop_scale: `(low, high)`, the crop's fraction of the image area.
            Defaults to torchvision's `(0.08, 1.0)`; use `(0.25, 1.0)` or
            more for small images such as CIFAR's 32x32.
        crop_ratio: `(low, high)`, the crop's aspect ratio (width / height).
        crop_attempts: int >= 1, candidate boxes per image before the
            central crop.
        flip_probability: float in [0, 1].

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from keras_slim.data import SupervisedAugmentation

    augment = SupervisedAugmentation(image_size=32, crop_scale=(0.25, 1.0))
    images = np.zeros((8, 40, 40, 3), "uint8")
    labels = np.arange(8)
    crops, same_labels = augment((images, labels), seed=[0, 1])
    assert crops.shape == (8, 32, 32, 3)
    ```

    References:
        - [Szegedy et al., 2015. Going Deeper with Convolutions](https://arxiv.org/abs/1409.4842)
          (the random-resized crop)
        - [Yu & Huang, 2019. Universally Slimmable Networks](https://arxiv.org/abs/1903.05134)
    """

    def __init__(self, image_size, crop_scale=(0.08, 1.0),
                 crop_ratio=(3 / 4, 4 / 3), crop_attempts=10,
                 flip_probability=0.5):
        size = (image_size, image_size) if isinstance(image_size, int) \
            else tuple(image_size)
        if len(size) != 2 or not all(isinstance(s, int) and s > 0
                                     for s in size):
            raise ValueError(f"`image_size` must be a positive int or a pair "
                             f"of them, got {image_size!r}.")
        self.image_size = size
        self.crop_scale = ops.check_interval("crop_scale", crop_scale,
                                             0.0, 1.0)
        self.crop_ratio = ops.check_interval("crop_ratio", crop_ratio,
                                             0.0, None)
        if not isinstance(crop_attempts, int) or crop_attempts < 1:
            raise ValueError(f"`crop_attempts` must be an int >= 1, got "
                             f"{crop_attempts!r}.")
        self.crop_attempts = crop_attempts
        if not 0.0 <= float(flip_probability) <= 1.0:
            raise ValueError(f"`flip_probability` must be in [0, 1], got "
                             f"{flip_probability!r}.")
        self.flip_probability = float(flip_probability)

    def __call__(self, batch, seed):
        """`(crops, labels)` for `(images, labels)`, or crops for images.

        Args:
            batch: `(B, H, W, C)` images, uint8 (0..255) or float (0..1), C 1
                or 3, or a pair `(images, labels)`.
            seed: int tensor of shape [2], a stateless random seed.
        """
        if isinstance(batch, (tuple, list)):
            images, labels = batch
            return self._crop(images, seed), labels
        return self._crop(batch, seed)

    def _crop(self, images, seed):
        images = tf.convert_to_tensor(images)
        if images.shape.rank != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(
                f"SupervisedAugmentation takes a batch of images (B, H, W, C) "
                f"with C 1 or 3, got shape {images.shape}. Batch the data set "
                f"before mapping the augmentation.")
        if images.dtype != tf.uint8 and not images.dtype.is_floating:
            raise ValueError(f"Images must be uint8 (0..255) or float "
                             f"(0..1), got {images.dtype}.")
        seeds = tf.random.experimental.stateless_split(
            tf.cast(tf.convert_to_tensor(seed), tf.int64), 2)
        shape = tf.shape(images)
        boxes = ops.crop_boxes(seeds[0], shape[0], shape[1], shape[2],
                               self.crop_scale, self.crop_ratio,
                               self.crop_attempts)
        flip = ops.coin(seeds[1], shape[0], self.flip_probability)
        source = images if images.dtype == tf.uint8 \
            else tf.cast(images, tf.float32)
        crops = ops.crop_resize_flip(source, boxes, flip, self.image_size)
        if images.dtype == tf.uint8:
            crops = crops / 255.0
        return tf.clip_by_value(crops, 0.0, 1.0)

    def get_config(self):
        return {"image_size": list(self.image_size),
                "crop_scale": list(self.crop_scale),
                "crop_ratio": list(self.crop_ratio),
                "crop_attempts": self.crop_attempts,
                "flip_probability": self.flip_probability}

    @classmethod
    def from_config(cls, config):
        return cls(**config)
