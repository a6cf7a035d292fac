"""Seeding TensorFlow in test processes without dropping its kernel cache.

`keras.utils.set_random_seed` calls `tf.random.set_seed`, which resets the
op-seed sequence and also clears TensorFlow's eager kernel cache, so that a
stateful random op without a seed (`tf.random.uniform(shape)`), whose kernel
keeps its position in its random sequence, starts it again. The suite seeds
before each of its tests (`tests/conftest.py`), tests seed again, and
keras_slim's builders seed per model; after each clearing every eager op
creates its kernel again (~0.4 ms each: each variable's handle,
initializer and assignment) and every traced function is instantiated (and
optimized by Grappler) again. Kept, `tests/backbones/test_slim_resnet.py`
with `tests/methods/test_slim_clr.py` took 90.7 instead of 100.3 s of CPU
(2026-12-05, one process, same results).

Nothing in keras_slim or its tests draws from a stateful TensorFlow random
op: Keras 3 and keras_slim draw with stateless ops from explicit seeds
(`tests/test_structure.py` checks the sources), so clearing changes no
number the suite computes; the op-seed sequence (tf.data's shuffles) is
still reset exactly as TensorFlow resets it.
"""

import random

import numpy as np
from tensorflow.python.eager import context


def _set_global_seed(self, seed):
    """`Context._set_global_seed` (TensorFlow 2.21) minus the cache clear."""
    self._seed = seed
    try:
        hash(seed)
        self._rng = random.Random(seed)
    except TypeError:
        self._rng = random.Random(int(np.array(seed)))


def keep_kernels_when_seeding():
    """Makes `tf.random.set_seed` in this process keep the kernel cache."""
    context.Context._set_global_seed = _set_global_seed
