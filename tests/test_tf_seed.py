"""Seeding in the test processes (`tests/_tf_seed.py`) keeps TensorFlow's
kernel cache and still reproduces every draw the suite makes."""

import keras
import numpy as np
import tensorflow as tf
from tensorflow.python.eager import context

from tests import _tf_seed


def _shuffled():
    return [int(x) for x in tf.data.Dataset.range(20).shuffle(20)]


def test_reseeding_repeats_tf_data_shuffles():
    tf.random.set_seed(3)
    first = _shuffled(), _shuffled()
    tf.random.set_seed(3)
    assert (_shuffled(), _shuffled()) == first
    assert first[0] != first[1]  # the op seeds still advance


def test_reseeding_repeats_keras_draws_and_initial_weights():
    def draw():
        keras.utils.set_random_seed(5)
        layer = keras.layers.Dense(3)
        layer.build((None, 4))
        return (keras.ops.convert_to_numpy(keras.random.normal((4,))),
                keras.ops.convert_to_numpy(layer.kernel))

    (a, kernel_a), (b, kernel_b) = draw(), draw()
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(kernel_a, kernel_b)


def test_this_process_seeds_without_clearing_the_kernel_cache():
    # conftest installs it for the TensorFlow suite; without it the tests
    # above still pass but every seeding drops every kernel again.
    assert context.Context._set_global_seed is _tf_seed._set_global_seed
