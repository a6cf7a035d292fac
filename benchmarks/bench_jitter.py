"""Colour jitter in torchvision's random order vs the fixed order, one run.

    python -m benchmarks.bench_jitter

Times `keras_slim.data._augment_ops.color_jitter` (the `mocov2` / `cifar`
strengths 0.4 / 0.4 / 0.4 / 0.1) on a batch of 128 RGB images of 32x32, both
orders compiled with `tf.function`, alternated: 7 rounds of 20 calls each,
the median seconds per call and the ratio random / fixed.
"""

import time

import numpy as np
import tensorflow as tf

from keras_slim.data import _augment_ops


def main():
    images = tf.constant(np.random.default_rng(0).random(
        (128, 32, 32, 3), dtype="float32"))
    seed = tf.constant([1, 2])

    def compiled(random_order):
        return tf.function(lambda x, s: _augment_ops.color_jitter(
            x, s, 0.4, 0.4, 0.4, 0.1, random_order=random_order))

    calls = {"fixed": compiled(False), "random": compiled(True)}
    for call in calls.values():
        call(images, seed)  # trace
    seconds = {name: [] for name in calls}
    for _ in range(7):
        for name, call in calls.items():
            start = time.perf_counter()
            for i in range(20):
                call(images, seed + i).numpy()
            seconds[name].append((time.perf_counter() - start) / 20)
    median = {name: float(np.median(v)) for name, v in seconds.items()}
    print(f"fixed order {1000 * median['fixed']:.2f} ms, random order "
          f"{1000 * median['random']:.2f} ms per batch of 128: random / "
          f"fixed {median['random'] / median['fixed']:.2f}")


if __name__ == "__main__":
    main()
