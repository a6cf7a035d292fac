"""A run on the TensorFlow backend: `tf.distribute` strategies."""

import contextlib

import keras
import tensorflow as tf


def build_strategy(kind):
    """The `tf.distribute` strategy of `train.strategy=kind`."""
    if kind == "mirrored":
        return tf.distribute.MirroredStrategy()
    if kind == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    return tf.distribute.get_strategy()


def as_strategy(strategy):
    """A strategy a script passed to `prepare`, as the run keeps it."""
    return strategy


def jit_compile(requested):
    """`train.jit_compile`: XLA, or TensorFlow's own graph."""
    return requested


def host_input_pipeline():
    """Nothing to do: TensorFlow trains and reads the data itself."""


def fit_input(dataset, strategy):
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        # Every worker computes the same global batches (batch n is a
        # function of the seed and n) and keeps its share of each.
        options = tf.data.Options()
        options.experimental_distribute.auto_shard_policy = (
            tf.data.experimental.AutoShardPolicy.DATA)
        dataset = dataset.with_options(options)
    return dataset


def fit_scope(strategy):
    """Keras's TF trainer runs in the strategy it was compiled in."""
    return contextlib.nullcontext()


def variable_components(variable):
    """The per-replica `tf.Variable`s behind a Keras variable."""
    value = getattr(variable, "_value", variable)
    if isinstance(value, tf.distribute.DistributedValues):
        return list(value.values)
    return [value]


def read_component(component):
    return keras.ops.convert_to_numpy(component.read_value())
