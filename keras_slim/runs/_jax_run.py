"""A run on the JAX backend: `keras.distribution` instead of strategies.

JAX compiles one program for the global batch; a `keras.distribution`
lays the variables and each batch out over the devices. `train.strategy:
mirrored` is `keras.distribution.DataParallel` over the local devices
(each device computes its share of the batch, every variable replicated);
`multi_worker` is TensorFlow's and refused here. The input pipeline stays
`tf.data`, on the host.
"""

import contextlib

import keras

from keras_slim import _backend


class JaxDistribution:
    """What a JAX run keeps where a TensorFlow run keeps its strategy.

    Args:
        distribution: a `keras.distribution.Distribution` the model is
            built and trained under, or `None` (one device).
    """

    def __init__(self, distribution=None):
        self.distribution = distribution

    @property
    def num_replicas_in_sync(self):
        """The devices a batch is split over (its batch axis)."""
        if self.distribution is None:
            return 1
        mesh = self.distribution.device_mesh
        axis = self.distribution.batch_dim_name
        if axis not in mesh.axis_names:
            return 1
        return int(mesh.shape[list(mesh.axis_names).index(axis)])

    def scope(self):
        if self.distribution is None:
            return contextlib.nullcontext()
        return self.distribution.scope()

    def __repr__(self):
        return f"JaxDistribution({self.distribution!r})"


def build_strategy(kind):
    """The distribution of `train.strategy=kind` on JAX."""
    if kind == "multi_worker":
        raise ValueError(
            "train.strategy=multi_worker is TensorFlow's "
            "MultiWorkerMirroredStrategy and needs KERAS_BACKEND=tensorflow. "
            "On JAX, train.strategy=mirrored trains on every local device "
            "(keras.distribution.DataParallel); several hosts are not "
            "supported by keras-slim pretrain on JAX.")
    if kind == "mirrored":
        return JaxDistribution(keras.distribution.DataParallel(
            devices=keras.distribution.list_devices()))
    # A distribution the script set globally, if any.
    return JaxDistribution(keras.distribution.distribution())


def as_strategy(strategy):
    """`prepare(strategy=...)` on JAX: a `keras.distribution` one."""
    if isinstance(strategy, JaxDistribution):
        return strategy
    if isinstance(strategy, keras.distribution.Distribution):
        return JaxDistribution(strategy)
    raise ValueError(
        f"On the JAX backend a run trains under a "
        f"keras.distribution.Distribution (e.g. keras.distribution."
        f"DataParallel()), not a {type(strategy).__name__}: a "
        f"tf.distribute strategy needs KERAS_BACKEND=tensorflow.")


def jit_compile(requested):
    """Always: JAX runs the step compiled with XLA or op by op (~100x
    slower); `train.jit_compile` is TensorFlow's switch to XLA."""
    return True


def host_input_pipeline():
    """Keep TensorFlow (the `tf.data` input) off the accelerators.

    TensorFlow would otherwise reserve their memory as soon as it runs an
    op, leaving none for JAX. Too late once TensorFlow has started its
    devices (then it already holds them, and there is nothing to change).
    """
    tf = _backend.require_tensorflow("keras-slim pretrain's tf.data input")
    with contextlib.suppress(RuntimeError):
        tf.config.set_visible_devices([], "GPU")


def fit_input(dataset, strategy):
    return dataset


def fit_scope(strategy):
    """`fit` shards each batch over the distribution's devices."""
    if strategy is None:
        return contextlib.nullcontext()
    return strategy.scope()


def variable_components(variable):
    """One program: a variable has no per-replica copies."""
    return [variable]


def read_component(component):
    return keras.ops.convert_to_numpy(component)
