"""Shuffle-BN: the key encoder's BatchNorm sees a random share of the batch."""

import textwrap

import keras
import numpy as np
import tensorflow as tf

from keras_slim.methods._shuffle_bn import shuffled_keys
from keras_slim._stateless_random import stateless_uniform
from tests._two_cpus import run_on_two_cpus


def _encoder():
    keras.utils.set_random_seed(3)
    dense = keras.layers.Dense(6)
    norm = keras.layers.BatchNormalization()

    def encode(x):
        return norm(dense(x), training=True)

    encode(tf.zeros((2, 5)))
    return encode


def _permutation(seed, step, total):
    noise = stateless_uniform(total, seed, step)
    return np.argsort(keras.ops.convert_to_numpy(noise), kind="stable")


def test_on_one_device_unsplit_the_keys_are_the_plain_ones():
    encode = _encoder()
    x = np.random.default_rng(0).normal(size=(8, 5)).astype("float32")
    np.testing.assert_allclose(shuffled_keys(encode, x, 7, 3), encode(x),
                               rtol=1e-5, atol=1e-6)


def test_splits_normalize_each_share_of_the_permuted_batch_apart():
    encode = _encoder()
    x = np.random.default_rng(1).normal(size=(8, 5)).astype("float32")
    keys = shuffled_keys(encode, x, 7, 3, splits=2).numpy()
    order = _permutation(7, 3, 8)
    expected = np.zeros_like(keys)
    for half in (order[:4], order[4:]):
        expected[half] = encode(x[half]).numpy()
    np.testing.assert_allclose(keys, expected, rtol=1e-5, atol=1e-6)
    # And the statistics really are per share: not the plain keys.
    assert np.abs(keys - encode(x).numpy()).max() > 1e-2


TWO_REPLICAS = textwrap.dedent(
    """
    import numpy as np
    from keras_slim.methods._shuffle_bn import shuffled_keys
    from tests.methods.test_shuffle_bn import _encoder

    x = np.random.default_rng(1).normal(size=(8, 5)).astype("float32")
    with strategy.scope():
        encode = _encoder()
    one_device = shuffled_keys(encode, x, 7, 3, splits=2).numpy()

    @tf.function
    def run(batch):
        return strategy.run(lambda b: shuffled_keys(encode, b, 7, 3),
                            args=(batch,))

    data = strategy.experimental_distribute_dataset(
        tf.data.Dataset.from_tensor_slices(x).batch(8))
    out = run(next(iter(data)))
    two = np.concatenate([t.numpy() for t in out.values])
    print(float(np.abs(two - one_device).max()))
    """
)


def test_two_replicas_equal_one_device_with_two_splits():
    printed = run_on_two_cpus(TWO_REPLICAS, timeout=300)
    assert float(printed.strip().splitlines()[-1]) < 1e-5


def test_splits_that_do_not_divide_the_batch_are_refused():
    import pytest

    encode = _encoder()
    x = np.zeros((6, 5), "float32")
    with pytest.raises(ValueError, match="must divide each replica's batch"):
        shuffled_keys(encode, x, 0, 0, splits=4)
