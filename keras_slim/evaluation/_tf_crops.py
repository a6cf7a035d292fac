"""The random crops of `paper_linear_probe`, in TensorFlow's image ops.

TensorFlow-only (its stateless random draws and `crop_and_resize`): on JAX
`paper_linear_probe` imports this module only when it runs, through
`keras_slim._backend.require_tensorflow`, so the rest of the evaluation
needs no TensorFlow.
"""

import tensorflow as tf

from keras_slim.data import _augment_ops


def crop_function(crop_scale, size):
    """`crops(images, seed)`: a random resized crop and flip per image.

    `images` a float32 batch `(B, H, W, C)`, `seed` two ints (a stateless
    seed); returns the float32 views `(B, size[0], size[1], C)`.
    """

    @tf.function
    def crops(images, seed):
        batch = tf.shape(images)[0]
        boxes = _augment_ops.crop_boxes(
            seed, batch, size[0], size[1], crop_scale, (3 / 4, 4 / 3), 10)
        flip = _augment_ops.coin(seed + 1, batch, 0.5)
        return _augment_ops.crop_resize_flip(images, boxes, flip, size)

    return lambda images, seed: crops(
        tf.constant(images), tf.constant(seed, tf.int32))
