"""Compiled forward passes of a backbone at one width, cached and reused.

Each `(backbone, width, mode)` gets one `tf.function` whose input signature
leaves batch, height and width unknown, so it is traced once and serves
every later call: no retrace per call, and the width is fixed inside the
function (never read from a state), so one width's trace can never serve
another.
"""

import weakref

import tensorflow as tf

# Weak keys and weak references inside the functions: the cache never keeps
# a backbone alive.
_CACHE = weakref.WeakKeyDictionary()


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


def forward_function(backbone, width, calibrate=False):
    """The compiled inference (or BN-calibration) pass at `width`."""
    functions = _CACHE.setdefault(backbone, {})
    key = (width, bool(calibrate))
    if key not in functions:
        spec = tf.TensorSpec(
            (None, None, None, backbone.image_shape[-1]), "float32"
        )
        functions[key] = tf.function(
            _Forward(backbone, width, calibrate), input_signature=[spec]
        )
    return functions[key]
