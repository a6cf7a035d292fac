"""Vectorized, stateless image augmentations on batches (B, H, W, C).

Every function draws one set of random parameters *per image* from a
stateless seed (shape [2]) and applies them to the whole batch at once: no
per-image Python loop, and the same seed gives the same output.
"""

import math

import tensorflow as tf

_LUMA = (0.299, 0.587, 0.114)


def uniform(seed, shape, low, high):
    return tf.random.stateless_uniform(shape, seed, minval=low, maxval=high)


def coin(seed, batch, probability):
    """A boolean (B,) mask, True with `probability` per image."""
    return tf.random.stateless_uniform([batch], seed) < probability


def select(mask, changed, original):
    """Per image: `changed` where `mask`, else `original`."""
    return tf.where(mask[:, None, None, None], changed, original)


def crop_boxes(seed, batch, height, width, scale, ratio, attempts):
    """Random-resized-crop boxes, one per image, in pixels.

    Like torchvision's RandomResizedCrop, vectorized: each image draws
    `attempts` (area scale, log aspect ratio) pairs; the first whose box fits
    the image wins; when none fits, the fallback is the central crop of the
    largest box within the ratio range. Offsets are uniform over the
    positions where the box fits.

    Args:
        seed: stateless seed, shape [2].
        batch: int32 scalar, the number of images.
        height, width: int32 scalars, the input size.
        scale: (low, high) fraction of the image area.
        ratio: (low, high) width / height.
        attempts: int, candidate boxes per image.

    Returns:
        float32 tensors `(top, left, box_height, box_width)`, each (B,).
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    h_img = tf.cast(height, tf.float32)
    w_img = tf.cast(width, tf.float32)
    target = h_img * w_img * uniform(seeds[0], [batch, attempts], *scale)
    log_ratio = uniform(seeds[1], [batch, attempts],
                        math.log(ratio[0]), math.log(ratio[1]))
    aspect = tf.exp(log_ratio)
    box_w = tf.round(tf.sqrt(target * aspect))
    box_h = tf.round(tf.sqrt(target / aspect))
    fits = (box_w >= 1) & (box_h >= 1) & (box_w <= w_img) & (box_h <= h_img)
    first = tf.argmax(tf.cast(fits, tf.int32), axis=1, output_type=tf.int32)
    any_fits = tf.reduce_any(fits, axis=1)
    fallback_h, fallback_w = _central_box(h_img, w_img, ratio)
    box_h = tf.where(any_fits, tf.gather(box_h, first, batch_dims=1),
                     fallback_h)
    box_w = tf.where(any_fits, tf.gather(box_w, first, batch_dims=1),
                     fallback_w)
    top = tf.floor(uniform(seeds[2], [batch], 0.0, 1.0)
                   * (h_img - box_h + 1))
    left = tf.floor(uniform(seeds[3], [batch], 0.0, 1.0)
                    * (w_img - box_w + 1))
    return top, left, box_h, box_w


def _central_box(h_img, w_img, ratio):
    """The largest box with aspect ratio clamped into `ratio`."""
    aspect = w_img / h_img
    box_w = tf.where(aspect > ratio[1], tf.round(h_img * ratio[1]), w_img)
    box_h = tf.where(aspect < ratio[0], tf.round(w_img / ratio[0]), h_img)
    return tf.minimum(box_h, h_img), tf.minimum(box_w, w_img)


def crop_resize_flip(images, boxes, flip, size):
    """Crops the pixel boxes, resizes them to `size`, mirrors where `flip`.

    One `tf.image.crop_and_resize` call for the batch. Sample points sit at
    the resized pixels' centres (like `tf.image.resize`), clamped into the
    box; a mirrored image is the same box sampled right to left.

    Returns:
        float32 (B, size[0], size[1], C) in the input's value range.
    """
    top, left, box_h, box_w = boxes
    shape = tf.shape(images)
    last_y = tf.cast(shape[1] - 1, tf.float32)
    last_x = tf.cast(shape[2] - 1, tf.float32)
    y1, y2 = _sample_span(top, box_h, size[0])
    x1, x2 = _sample_span(left, box_w, size[1])
    x1, x2 = tf.where(flip, x2, x1), tf.where(flip, x1, x2)
    normalized = tf.stack([
        y1 / tf.maximum(last_y, 1.0), x1 / tf.maximum(last_x, 1.0),
        y2 / tf.maximum(last_y, 1.0), x2 / tf.maximum(last_x, 1.0),
    ], axis=1)
    indices = tf.range(shape[0])
    return tf.image.crop_and_resize(images, normalized, indices, size)


def _sample_span(start, length, out):
    """First and last sample coordinates of `out` pixel centres in a span."""
    step = length / out
    first = tf.maximum(start + 0.5 * step - 0.5, start)
    last = tf.minimum(start + length - 0.5 - 0.5 * step, start + length - 1)
    return first, last


def grey(images):
    """Luma (B, H, W, 1) of RGB images; grey images are their own luma."""
    if images.shape[-1] == 1:
        return images
    return tf.tensordot(images, tf.constant(_LUMA), axes=[[3], [0]])[..., None]


def color_jitter(images, seed, brightness, contrast, saturation, hue,
                 random_order=True):
    """torchvision's `ColorJitter`, factors and order drawn per image.

    Brightness, contrast and saturation multiply by a factor in
    `[max(0, 1 - s), 1 + s]` (contrast around the image's mean luma,
    saturation around each pixel's luma); hue shifts by `[-hue, hue]` of the
    colour circle. With `random_order` each image applies the four in its
    own random order (torchvision's `randperm`; vectorized: at each stage
    every blend is computed for the batch and each image keeps its own, the
    hue shift runs once, between each image's blends before and after it);
    otherwise in the fixed order above. Saturation and hue
    need RGB and are skipped on grey images. Values stay in [0, 1].
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    adjustments = _jitter_adjustments(images, seeds, brightness, contrast,
                                      saturation, hue)
    x = images
    if not random_order or len(adjustments) < 2:
        for adjust in adjustments:
            x = adjust(x)
        return x
    count = len(adjustments)
    # A seed of its own: the factors stay those of the fixed order.
    order_seed = tf.random.experimental.stateless_fold_in(seed, 4)
    scores = uniform(order_seed, [tf.shape(images)[0], count], 0.0, 1.0)
    order = tf.argsort(scores, axis=1)  # per image: adjustment of each stage
    if not (hue > 0 and images.shape[-1] == 3):
        return _run_stages(x, adjustments, order, tf.ones_like(order, bool),
                           range(count))
    # The hue shift (an HSV round trip) costs more than the three blends:
    # run it once for the batch, between each image's blends before and
    # after it in its order (hue is the last adjustment).
    blends = adjustments[:-1]
    stage = tf.range(count)[None, :]
    hue_stage = tf.argmax(tf.cast(order == count - 1, tf.int32), axis=1,
                          output_type=tf.int32)[:, None]
    # No image has a blend before hue at the last stage, nor after it at
    # the first.
    x = _run_stages(x, blends, order, stage < hue_stage, range(count - 1))
    x = adjustments[-1](x)
    return _run_stages(x, blends, order, stage > hue_stage, range(1, count))


def _run_stages(x, adjustments, order, active, stages):
    """At each of `stages`, image i applies `adjustments[order[i, stage]]`
    where `active[i, stage]` and that index is one of `adjustments`, and
    keeps its value otherwise (each candidate computed for the batch)."""
    keep = len(adjustments)
    for stage in stages:
        pick = order[:, stage]
        pick = tf.where(active[:, stage] & (pick < keep), pick, keep)
        candidates = tf.stack([adjust(x) for adjust in adjustments] + [x],
                              axis=1)
        x = tf.gather(candidates, pick, axis=1, batch_dims=1)
    return x


def _jitter_adjustments(images, seeds, brightness, contrast, saturation, hue):
    """The enabled adjustments as functions of the current images, with
    their factors drawn once per image (as torchvision's `get_params`)."""
    batch = tf.shape(images)[0]
    rgb = images.shape[-1] == 3

    def factor(s, strength):
        value = uniform(s, [batch], max(0.0, 1.0 - strength), 1.0 + strength)
        return value[:, None, None, None]

    adjustments = []
    if brightness > 0:
        f_brightness = factor(seeds[0], brightness)
        adjustments.append(
            lambda x: tf.clip_by_value(x * f_brightness, 0.0, 1.0))
    if contrast > 0:
        f_contrast = factor(seeds[1], contrast)
        adjustments.append(lambda x: _blend(
            x, tf.reduce_mean(grey(x), axis=[1, 2, 3], keepdims=True),
            f_contrast))
    if saturation > 0 and rgb:
        f_saturation = factor(seeds[2], saturation)
        adjustments.append(lambda x: _blend(x, grey(x), f_saturation))
    if hue > 0 and rgb:
        shift = uniform(seeds[3], [batch], -hue, hue)[:, None, None]
        adjustments.append(lambda x: _shift_hue(x, shift))
    return adjustments


def _shift_hue(x, shift):
    hsv = tf.image.rgb_to_hsv(x)
    hues = tf.math.floormod(hsv[..., 0] + shift, 1.0)
    x = tf.image.hsv_to_rgb(tf.stack([hues, hsv[..., 1], hsv[..., 2]],
                                     axis=-1))
    return tf.clip_by_value(x, 0.0, 1.0)


def _blend(images, anchor, factor):
    return tf.clip_by_value(anchor + factor * (images - anchor), 0.0, 1.0)


def to_grey(images):
    """RGB images with all three channels set to their luma."""
    return tf.tile(grey(images), [1, 1, 1, images.shape[-1]])


def blur_kernel_size(size, fraction):
    """An odd kernel of about `fraction` of the image side, at least 3."""
    half = max(1, int(fraction * size / 2))
    return 2 * min(half, size - 1) + 1


def gaussian_blur(images, seed, sigma_range, kernel_size):
    """Gaussian blur with a sigma drawn per image, reflect padding.

    Vectorized with one separable depthwise convolution over the batch folded
    into channels: image b's channels get image b's kernel.
    """
    shape = tf.shape(images)
    batch, height, width = shape[0], shape[1], shape[2]
    channels = images.shape[-1]
    sigma = uniform(seed, [batch], *sigma_range)
    radius = kernel_size // 2
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernel = tf.exp(-tf.square(taps)[None, :]
                    / (2.0 * tf.square(sigma)[:, None]))
    kernel /= tf.reduce_sum(kernel, axis=1, keepdims=True)
    # (B, k) -> one kernel per folded channel, (k, B * C).
    kernel = tf.transpose(tf.repeat(kernel, channels, axis=0))
    folded = tf.reshape(tf.transpose(images, [1, 2, 0, 3]),
                        [1, height, width, batch * channels])
    folded = tf.pad(folded, [[0, 0], [radius, radius], [radius, radius],
                             [0, 0]], mode="REFLECT")
    vertical = tf.reshape(kernel, [kernel_size, 1, -1, 1])
    horizontal = tf.reshape(kernel, [1, kernel_size, -1, 1])
    strides = [1, 1, 1, 1]
    folded = tf.nn.depthwise_conv2d(folded, vertical, strides, "VALID")
    folded = tf.nn.depthwise_conv2d(folded, horizontal, strides, "VALID")
    unfolded = tf.reshape(folded, [height, width, batch, channels])
    return tf.transpose(unfolded, [2, 0, 1, 3])


def solarize(images, threshold):
    """Inverts the pixels at or above `threshold` (images in [0, 1])."""
    return tf.where(images >= threshold, 1.0 - images, images)


def check_interval(name, value, low, high):
    """`value` as a float pair `(a, b)` with `low < a <= b` (`b <= high`)."""
    try:
        start, stop = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"`{name}` must be a pair (low, high), got "
                         f"{value!r}.") from None
    if not (low < start <= stop) or (high is not None and stop > high):
        upper = f" <= {high}" if high is not None else ""
        raise ValueError(f"`{name}` must satisfy {low} < low <= high{upper}, "
                         f"got {value!r}.")
    return start, stop
