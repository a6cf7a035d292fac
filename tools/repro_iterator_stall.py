"""Reproduces the stall of a `fit` interrupted by an exception: its data
iterator, freed a minute later, blocks the freeing thread for seconds.

An exception out of `model.fit` (a callback raising, or a simulated kill)
leaves Keras's epoch iterator in a reference cycle (the iterator and its
suspended epoch generator), and the exception's traceback keeps Keras's
`fit` frame alive through the raising frame's callers. When the cycle is
finally collected, the iterator's destructor waits for a tf.data
background thread, and that wait grew with the time it sat idle:

    python tools/repro_iterator_stall.py 0     # freed at once
    python tools/repro_iterator_stall.py 70    # freed 70 s later

On the 2-core machine (2026-12-05, TensorFlow 2.21, one thread per pool):
0 s -> 0.32 s, 25 s -> 0.35 s, 70 s -> 11.88 s (this script: 11.84 s); on
the AMD EPYC machine of that evening 70 s -> 0.21 s (the stall depends on
the machine). In a whole-suite run the
same thing took 41 s: an iterator of
`tests/runs/test_finetune_run.py::test_a_killed_fine_tuning_resumes_to_the_same_weights`
(made in `SlimClassifier.fit`) was collected 105 s later inside
`tests/methods/test_slim_clr.py`. keras_slim now frees the iterator where it
replaces the exception (`keras_slim/_stopped_fit.py`); see DEVELOPERS.md.
"""

import gc
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402


class StopAtBatch(keras.callbacks.Callback):
    """Raises after a few steps, mid-epoch, like a failing run."""

    def on_train_batch_end(self, batch, logs=None):
        if batch == 3:
            raise RuntimeError("stopped mid-epoch")


def interrupted_fit():
    """The exception of a `fit` stopped mid-epoch (its traceback holds
    the epoch iterator)."""
    rng = np.random.default_rng(0)
    images = rng.random((512, 8, 8, 3), "float32")
    labels = np.arange(512) % 2
    data = (tf.data.Dataset.from_tensor_slices((images, labels)).repeat()
            .map(lambda x, y: (x * 2, y),
                 num_parallel_calls=tf.data.AUTOTUNE)
            .batch(8).prefetch(tf.data.AUTOTUNE))
    model = keras.Sequential([keras.Input((8, 8, 3)),
                              keras.layers.Flatten(), keras.layers.Dense(2)])
    model.compile("sgd", keras.losses.SparseCategoricalCrossentropy(True))
    try:
        model.fit(data, epochs=1, steps_per_epoch=20, verbose=0,
                  callbacks=[StopAtBatch()])
    except RuntimeError as error:
        return error
    raise AssertionError("the callback did not stop fit")


def main():
    wait = float(sys.argv[1]) if len(sys.argv) > 1 else 70.0
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    error = interrupted_fit()
    time.sleep(wait)
    start = time.perf_counter()
    del error
    gc.collect()
    print(f"freed {wait:g} s after the interruption: "
          f"{time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
