"""What a run does differently on each Keras backend, one module each.

`_tensorflow_run`: `tf.distribute` strategies, a multi-worker dataset's
sharding, per-replica metric variables. `_jax_run`: `keras.distribution`
(a `mirrored` run is `DataParallel` over the local devices), one program,
no replicas. Only the running backend's module is imported.
"""

import importlib

from keras_slim import _backend

__all__ = ["run_backend"]


def run_backend():
    """The module of the running Keras backend (`_tensorflow_run` or
    `_jax_run`)."""
    return importlib.import_module(f"keras_slim.runs._{_backend.name()}_run")
