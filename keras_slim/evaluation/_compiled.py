"""Compiled forward passes of a backbone at one width, and the probes' step.

Each `(backbone, width, mode)` gets one compiled function, cached and reused
by every later call, with the width fixed inside it (never read from a
state), so one width's function can never serve another. On TensorFlow it
is a `tf.function` whose input signature leaves batch, height and width
unknown: traced once, no retrace per call. On JAX it is the backbone's
`stateless_call` under `jax.jit`, compiled once per input shape: on a tiny
backbone its first call costs about what a first eager call does, every
later one 5-10x less (64 images: 4 ms against 22-46 ms eager, CPU).

What is backend-specific lives in `_tf_compiled.py` and `_jax_compiled.py`
(imported by name here, so JAX never imports TensorFlow).
"""

import importlib
import weakref

from keras_slim import _backend

_MODULES = {"tensorflow": "_tf_compiled", "jax": "_jax_compiled"}

# Weak keys and weak references inside the functions: the cache never keeps
# a backbone alive.
_CACHE = weakref.WeakKeyDictionary()


def _impl():
    return importlib.import_module(
        f"keras_slim.evaluation.{_MODULES[_backend.name()]}")


def forward_function(backbone, width, calibrate=False):
    """The compiled inference (or BN-calibration) pass at `width`.

    Called on a float32 batch from `float_batch`, it returns the features
    (a backend tensor). A calibration pass also stores the BatchNorm
    statistics it accumulates in the backbone's variables.
    """
    functions = _CACHE.setdefault(backbone, {})
    key = (width, bool(calibrate))
    if key not in functions:
        functions[key] = _impl().forward_function(backbone, width, calibrate)
    return functions[key]


def float_batch(batch):
    """A batch of images (numpy, or a `tf.data` element) as float32."""
    return _impl().float_batch(batch)


def gradient_step(loss_fn, variables, optimizer, frozen_variables=(),
                  constants=()):
    """A compiled `step(*tensors)`: one `optimizer` update of `variables`.

    `loss_fn(constants, *tensors)` computes the loss with `keras.ops`,
    reading `variables` (trained), `frozen_variables` (read, never changed)
    and `constants` (tensors every step reads, e.g. cached features).
    TensorFlow's trace captures the frozen variables and the constants;
    JAX's compiled step takes their values as arguments rather than
    compiling them in. The optimizer is built here when it is not yet (a
    traced step would otherwise build it while tracing).
    """
    variables = list(variables)
    if not optimizer.built:
        optimizer.build(variables)
    return _impl().gradient_step(
        loss_fn, variables, optimizer, list(frozen_variables), constants)
