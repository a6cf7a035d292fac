"""What keras_slim needs beyond `keras.ops`, for each Keras backend.

keras_slim computes with `keras.ops`. Two things differ between the backends
it runs on, and live here (one module per backend, chosen by
`keras.backend.backend()`):

* **Replicas.** TensorFlow runs a `tf.distribute` step once per replica: a
  batch statistic, a contrastive loss's negatives or MoCo's queue keys need
  an explicit all-reduce or all-gather over the replica context. JAX runs one
  global program (`keras.distribution` shards its arrays), so every op already
  sees the global batch: there is no replica context.
* **Eager values while tracing.** TensorFlow may build a layer inside a
  traced function; `init_scope` computes an initial value eagerly there.

TensorFlow is imported only on the TensorFlow backend: on JAX keras_slim's
core (layers, backbones, heads, losses, recipes, training on arrays) needs no
TensorFlow installed.
"""

import importlib
import sys

import keras

SUPPORTED = ("tensorflow", "jax")


def name():
    """The Keras backend keras_slim runs on (`"tensorflow"` or `"jax"`)."""
    return keras.backend.backend()


def check_supported():
    """Raises a clear ImportError on a backend keras_slim does not support."""
    if name() not in SUPPORTED:
        raise ImportError(
            f"keras_slim runs on the TensorFlow or JAX backend of Keras, not "
            f"on {name()!r}. Set KERAS_BACKEND=tensorflow or KERAS_BACKEND=jax "
            f"before importing keras.")


def is_tensorflow():
    return name() == "tensorflow"


def without_dataset_shuffle(args, kwargs):
    """`fit`'s keyword arguments, with `shuffle=False` when the data is a
    `tf.data.Dataset` and no `shuffle` was given: Keras ignores `shuffle`
    for a dataset (it comes shuffled as built) and warns on the default."""
    x = args[0] if args else kwargs.get("x")
    tf = sys.modules.get("tensorflow")  # a dataset means it is imported
    if ("shuffle" not in kwargs and tf is not None
            and isinstance(x, tf.data.Dataset)):
        return dict(kwargs, shuffle=False)
    return kwargs


def tensorflow_missing_error(what):
    """The ImportError for `what` (a feature) when TensorFlow is missing."""
    return ImportError(
        f"{what} needs TensorFlow, which is not installed. Install it with "
        f"pip install 'keras-slim[cpu]' (tensorflow-cpu) or "
        f"'keras-slim[gpu]' (tensorflow). On the JAX backend keras_slim's "
        f"layers, backbones, recipes and training on NumPy arrays or Python "
        f"generators need no TensorFlow; tf.data pipelines, TFLite export "
        f"and the TensorFlow backend do.")


def require_tensorflow(what):
    """Imports and returns `tensorflow`, or raises a clear ImportError."""
    try:
        return importlib.import_module("tensorflow")
    except ImportError as error:
        raise tensorflow_missing_error(what) from error


def _impl():
    return importlib.import_module(f"keras_slim._backend._{name()}")


def replica_context():
    """The replicas of the running step, or None when there is one program.

    None outside a strategy, with one replica in sync, and always on JAX.
    Otherwise an object with `num_replicas`, `replica_id` (a tensor),
    `all_reduce_sum(values)` and `all_gather(values, axis)`.
    """
    return _impl().replica_context()


def init_scope():
    """A context in which a value is computed eagerly, even while tracing."""
    return _impl().init_scope()


def all_reduce_gradients(optimizer, grads, variables):
    """`grads` summed over the replicas (TensorFlow's optimizer does it)."""
    return _impl().all_reduce_gradients(optimizer, grads, variables)


def update_each_variable(optimizer, update, updates, learning_rate):
    """Runs `update(variable, grad, step_size, learning_rate)` for each
    `(grad, step_size, variable)` of `updates` on every copy of the
    variable (per replica under `tf.distribute`)."""
    return _impl().update_each_variable(optimizer, update, updates,
                                        learning_rate)
