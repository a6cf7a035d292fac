import numbers

import keras
import tensorflow as tf

from keras_slim.data import _augment_ops as ops

# Published recipes (RESEARCH.md). Fields left out take the constructor's
# defaults; a pair is (view 1, view 2).
_MOCOV2 = dict(crop_scale=(0.2, 1.0), brightness=0.4, contrast=0.4,
               saturation=0.4, hue=0.1, jitter_probability=0.8,
               grayscale_probability=0.2, blur_probability=0.5)
PRESETS = {
    "simclr": dict(crop_scale=(0.08, 1.0), brightness=0.8, contrast=0.8,
                   saturation=0.8, hue=0.2, jitter_probability=0.8,
                   grayscale_probability=0.2, blur_probability=0.5),
    "mocov2": _MOCOV2,
    "byol": dict(crop_scale=(0.08, 1.0), brightness=0.4, contrast=0.4,
                 saturation=0.2, hue=0.1, jitter_probability=0.8,
                 grayscale_probability=0.2, blur_probability=(1.0, 0.1),
                 solarize_probability=(0.0, 0.2)),
    # MoCo v2's recipe, more grayscale for small images.
    "small": {**_MOCOV2, "grayscale_probability": 0.5},
    # MoCo v2's recipe without blur (32x32 images).
    "cifar": {**_MOCOV2, "blur_probability": 0.0},
}


@keras.saving.register_keras_serializable(package="keras_slim")
class TwoViewAugmentation:
    """Two random views of each image of a batch, for self-supervised learning.

    Applied to a batch of images `(B, H, W, C)` (uint8, or floats in [0, 1])
    inside a `tf.data` map, it returns two float32 views in [0, 1] of shape
    `(B, image_size, image_size, C)`. Each view, independently per image:

    1. random resized crop (area `crop_scale` of the image, aspect ratio
       `crop_ratio`, `crop_attempts` tries, then a central crop), resized to
       `image_size`, and a horizontal flip with `flip_probability`;
    2. colour jitter with `jitter_probability`: brightness, contrast,
       saturation, hue (factors in `[1 - s, 1 + s]`, hue shift in
       `[-hue, hue]`), in a random order per image as torchvision's
       `ColorJitter` (the official recipes' transform), or in that fixed
       order with `jitter_order="fixed"`;
    3. grayscale with `grayscale_probability`;
    4. Gaussian blur with `blur_probability`, sigma uniform in `blur_sigma`,
       an odd kernel of about `blur_kernel_fraction` of the image side;
    5. solarization (invert pixels >= `solarize_threshold`) with
       `solarize_probability`.

    Every random choice is drawn per image and applied to the whole batch
    with vectorized ops (one `crop_and_resize`, one depthwise convolution for
    the blur): no per-image Python loop. Grey (1-channel) images skip
    saturation, hue and grayscale. `blur_probability` and
    `solarize_probability` take a pair `(view 1, view 2)` for asymmetric
    recipes such as BYOL's.

    Randomness is stateless: `augment(images, seed)` with the same seed
    tensor (shape [2]) gives the same views.

    Presets (`from_preset(name, image_size, **overrides)`):

    * `"simclr"`: crop 0.08-1, jitter 0.8/0.8/0.8/0.2 p 0.8, grey 0.2,
      blur 0.5.
    * `"mocov2"`: crop 0.2-1, jitter 0.4/0.4/0.4/0.1 p 0.8, grey 0.2,
      blur 0.5 (the defaults).
    * `"byol"`: crop 0.08-1, jitter 0.4/0.4/0.2/0.1 p 0.8, grey 0.2; blur
      1.0 / 0.1 and solarize 0.0 / 0.2 for view 1 / view 2.
    * `"small"` (Shi et al., small models): crop 0.2-1, jitter 0.4/0.4/0.4/
      0.1 p 0.8, grey 0.5, blur 0.5.
    * `"cifar"` (US3L's CIFAR recipe): crop 0.2-1, jitter 0.4/0.4/0.4/0.1
      p 0.8, grey 0.2, no blur: blurring images of 32 px or less removes
      most of their content (the CIFAR recipes of SimCLR and US3L omit it).
      Prefer it, or `blur_probability=0`, for small images.

    Args:
        image_size: int or `(height, width)`, the output size of the views.
        crop_scale: `(low, high)` fraction of the image area to crop.
        crop_ratio: `(low, high)` aspect ratio (width / height) of the crop.
        crop_attempts: int, candidate boxes drawn before the central crop.
        flip_probability: float, horizontal flip.
        brightness: float >= 0, brightness jitter strength.
        contrast: float >= 0, contrast jitter strength.
        saturation: float >= 0, saturation jitter strength.
        hue: float in [0, 0.5], hue jitter strength.
        jitter_probability: float, probability of the colour jitter.
        jitter_order: `"random"` (torchvision, official) or `"fixed"`
            (keras_slim before 2026-12; the jitter alone 2.3x cheaper,
            `benchmarks/bench_jitter.py`).
        grayscale_probability: float, probability of grayscale.
        blur_probability: float or `(view1, view2)`.
        blur_sigma: `(low, high)` sigma of the blur, in pixels.
        blur_kernel_fraction: float, kernel size / image side.
        solarize_probability: float or `(view1, view2)`.
        solarize_threshold: float in [0, 1].

    Example:

    ```python
    import numpy as np
    import tensorflow as tf
    from keras_slim.data import TwoViewAugmentation

    augment = TwoViewAugmentation.from_preset("cifar", image_size=16)
    images = np.zeros((4, 16, 16, 3), "uint8")
    view1, view2 = augment(images, seed=tf.constant([0, 1]))
    assert view1.shape == (4, 16, 16, 3) and view1.dtype == tf.float32
    ```

    References:
        - [Chen et al., SimCLR, ICML 2020](https://arxiv.org/abs/2002.05709)
        - [Chen et al., MoCo v2](https://arxiv.org/abs/2003.04297)
        - [Grill et al., BYOL, NeurIPS 2020](https://arxiv.org/abs/2006.07733)
        - [Shi et al., Efficient Self-supervised Learning of Small Models,
          AAAI 2022](https://arxiv.org/abs/2107.14762)
        - [Cao et al., US3L, CVPR 2023](https://arxiv.org/abs/2303.07126)
    """

    def __init__(
        self,
        image_size,
        crop_scale=(0.2, 1.0),
        crop_ratio=(3.0 / 4.0, 4.0 / 3.0),
        crop_attempts=10,
        flip_probability=0.5,
        brightness=0.4,
        contrast=0.4,
        saturation=0.4,
        hue=0.1,
        jitter_probability=0.8,
        jitter_order="random",
        grayscale_probability=0.2,
        blur_probability=0.5,
        blur_sigma=(0.1, 2.0),
        blur_kernel_fraction=0.1,
        solarize_probability=0.0,
        solarize_threshold=0.5,
    ):
        self.image_size = _size_pair(image_size)
        self.crop_scale = ops.check_interval("crop_scale", crop_scale,
                                             0.0, 1.0)
        self.crop_ratio = ops.check_interval("crop_ratio", crop_ratio,
                                             0.0, None)
        if int(crop_attempts) < 1:
            raise ValueError(f"`crop_attempts` must be >= 1, got "
                             f"{crop_attempts}.")
        self.crop_attempts = int(crop_attempts)
        self.flip_probability = _probability("flip_probability",
                                             flip_probability)
        self.brightness = _strength("brightness", brightness)
        self.contrast = _strength("contrast", contrast)
        self.saturation = _strength("saturation", saturation)
        self.hue = _strength("hue", hue, high=0.5)
        self.jitter_probability = _probability("jitter_probability",
                                               jitter_probability)
        if jitter_order not in ("random", "fixed"):
            raise ValueError(f"`jitter_order` must be 'random' or 'fixed', "
                             f"got {jitter_order!r}.")
        self.jitter_order = jitter_order
        self.grayscale_probability = _probability("grayscale_probability",
                                                  grayscale_probability)
        self.blur_probability = _per_view("blur_probability",
                                          blur_probability)
        self.blur_sigma = ops.check_interval("blur_sigma", blur_sigma, 0.0, None)
        self.blur_kernel_fraction = _strength("blur_kernel_fraction",
                                              blur_kernel_fraction, high=1.0)
        self.solarize_probability = _per_view("solarize_probability",
                                              solarize_probability)
        self.solarize_threshold = _probability("solarize_threshold",
                                               solarize_threshold)

    @classmethod
    def from_preset(cls, name, image_size, **overrides):
        """A published recipe (`PRESETS`), any field overridable by keyword."""
        if name not in PRESETS:
            raise ValueError(f"Unknown augmentation preset {name!r}; "
                             f"available: {sorted(PRESETS)}.")
        return cls(image_size=image_size, **dict(PRESETS[name], **overrides))

    def __call__(self, images, seed):
        return self.augment(images, seed)

    def augment(self, images, seed):
        """Returns `(view1, view2)`, float32 `(B, h, w, C)` in [0, 1].

        Args:
            images: `(B, H, W, C)` uint8 (0..255) or float (0..1), C 1 or 3.
            seed: int tensor of shape [2], a stateless random seed.
        """
        images = self._check_images(images)
        seed = tf.cast(tf.convert_to_tensor(seed), tf.int64)
        if seed.shape.rank is not None and seed.shape != (2,):
            raise ValueError(f"`seed` must have shape [2] (a stateless seed), "
                             f"got shape {seed.shape}.")
        return tuple(
            self._view(images, tf.random.experimental.stateless_fold_in(
                seed, view), view)
            for view in (0, 1)
        )

    def _check_images(self, images):
        images = tf.convert_to_tensor(images)
        if images.shape.rank != 4 or images.shape[-1] not in (1, 3):
            raise ValueError(
                f"TwoViewAugmentation takes a batch of images (B, H, W, C) "
                f"with C 1 or 3, got shape {images.shape}. Batch the data set "
                f"before mapping the augmentation."
            )
        if images.dtype == tf.uint8:
            return images  # crop_and_resize reads uint8 directly
        if not images.dtype.is_floating:
            raise ValueError(f"Images must be uint8 (0..255) or float "
                             f"(0..1), got {images.dtype}.")
        return tf.cast(images, tf.float32)

    def _view(self, images, seed, view):
        seeds = tf.random.experimental.stateless_split(seed, 10)
        shape = tf.shape(images)
        batch = shape[0]
        boxes = ops.crop_boxes(seeds[0], batch, shape[1], shape[2],
                               self.crop_scale, self.crop_ratio,
                               self.crop_attempts)
        flip = ops.coin(seeds[1], batch, self.flip_probability)
        x = ops.crop_resize_flip(images, boxes, flip, self.image_size)
        if images.dtype == tf.uint8:
            x = x / 255.0
        x = tf.clip_by_value(x, 0.0, 1.0)
        if self.jitter_probability > 0 and self._jitters():
            jittered = ops.color_jitter(
                x, seeds[2], self.brightness, self.contrast, self.saturation,
                self.hue, random_order=self.jitter_order == "random")
            x = ops.select(ops.coin(seeds[3], batch, self.jitter_probability),
                           jittered, x)
        if self.grayscale_probability > 0 and x.shape[-1] == 3:
            x = ops.select(ops.coin(seeds[4], batch,
                                    self.grayscale_probability),
                           ops.to_grey(x), x)
        if self.blur_probability[view] > 0:
            kernel = ops.blur_kernel_size(min(self.image_size),
                                          self.blur_kernel_fraction)
            blurred = ops.gaussian_blur(x, seeds[5], self.blur_sigma, kernel)
            x = ops.select(ops.coin(seeds[6], batch,
                                    self.blur_probability[view]), blurred, x)
        if self.solarize_probability[view] > 0:
            x = ops.select(ops.coin(seeds[7], batch,
                                    self.solarize_probability[view]),
                           ops.solarize(x, self.solarize_threshold), x)
        return x

    def _jitters(self):
        return any(s > 0 for s in (self.brightness, self.contrast,
                                   self.saturation, self.hue))

    def get_config(self):
        return {
            "image_size": list(self.image_size),
            "crop_scale": list(self.crop_scale),
            "crop_ratio": list(self.crop_ratio),
            "crop_attempts": self.crop_attempts,
            "flip_probability": self.flip_probability,
            "brightness": self.brightness,
            "contrast": self.contrast,
            "saturation": self.saturation,
            "hue": self.hue,
            "jitter_probability": self.jitter_probability,
            "jitter_order": self.jitter_order,
            "grayscale_probability": self.grayscale_probability,
            "blur_probability": list(self.blur_probability),
            "blur_sigma": list(self.blur_sigma),
            "blur_kernel_fraction": self.blur_kernel_fraction,
            "solarize_probability": list(self.solarize_probability),
            "solarize_threshold": self.solarize_threshold,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        fields = ", ".join(f"{k}={v}" for k, v in self.get_config().items())
        return f"TwoViewAugmentation({fields})"


def _size_pair(image_size):
    if isinstance(image_size, numbers.Integral):
        image_size = (image_size, image_size)
    try:
        height, width = (int(v) for v in image_size)
    except (TypeError, ValueError):
        raise ValueError(f"`image_size` must be an int or (height, width), "
                         f"got {image_size!r}.") from None
    if height < 1 or width < 1:
        raise ValueError(f"`image_size` must be positive, got {image_size!r}.")
    return height, width


def _probability(name, value):
    value = float(value)
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"`{name}` must lie in [0, 1], got {value}.")
    return value


def _per_view(name, value):
    if isinstance(value, numbers.Number):
        value = (value, value)
    if len(value) != 2:
        raise ValueError(f"`{name}` must be a probability or a pair (view 1, "
                         f"view 2), got {value!r}.")
    return tuple(_probability(name, v) for v in value)


def _strength(name, value, high=None):
    value = float(value)
    if value < 0 or (high is not None and value > high):
        limit = f"[0, {high}]" if high is not None else ">= 0"
        raise ValueError(f"`{name}` must be {limit}, got {value}.")
    return value
