"""The TensorFlow side of `_compiled`: `tf.function`s with a fixed width."""

import weakref

import tensorflow as tf


class _Forward:
    """`backbone(images, width=..., ...)` without holding the backbone.

    A callable object rather than a closure: TensorFlow counts retracing per
    code object, so closures made for many widths would share one count and
    warn about "retracing" although each width traces only once.
    """

    def __init__(self, backbone, width, calibrate):
        self.backbone = weakref.ref(backbone)
        self.width = width
        self.calibrate = calibrate

    def __call__(self, images):
        backbone = self.backbone()
        if self.calibrate:
            # Training mode: each BatchNorm normalizes with the batch
            # statistics it accumulates, as the calibrated network will.
            return backbone(
                images, width=self.width, training=True, calibrate_bn=True
            )
        return backbone(images, width=self.width, training=False)


def forward_function(backbone, width, calibrate):
    spec = tf.TensorSpec(
        (None, None, None, backbone.image_shape[-1]), "float32"
    )
    return tf.function(
        _Forward(backbone, width, calibrate), input_signature=[spec]
    )


def float_batch(batch):
    return tf.cast(batch, "float32")


def gradient_step(loss_fn, variables, optimizer, frozen_variables,
                  constants):
    # The frozen variables are read as they are: nothing to pass in.
    del frozen_variables

    # Returns nothing: a returned loss changes how TensorFlow optimizes the
    # graph (the updates then differ in the last bit).
    @tf.function(reduce_retracing=True)
    def step(*tensors):
        with tf.GradientTape() as tape:
            loss = loss_fn(constants, *tensors)
        gradients = tape.gradient(loss, variables)
        optimizer.apply(gradients, variables)

    return step
