"""What a `fit` stopped by an exception leaves behind: its data iterator.

A `fit` that ends mid-epoch leaves Keras's epoch iterator in a reference
cycle (the iterator and its suspended epoch generator), and the exception's
traceback keeps Keras's `fit` frame alive through the raising frame's
callers. Freed by a garbage collection a minute or more later (under the
suite's relaxed thresholds, `tests/_gc.py`), the `tf.data` iterator's
destructor was seen to block for seconds: `tools/repro_iterator_stall.py`
showed 0.3 s freed at once and 11.8 s after 70 s on one machine; in
whole-suite runs a later test (the `KNNMonitor` docstring example,
`test_presets.py`'s linear probes) took 10-40 s longer.

keras_slim frees it itself where it replaces the exception (a non-finite
loss, a bad label: `keras_slim/_stopped_fit.py`); `leaves_no_data_iterator()`
checks that. A test that stops a `fit` with its own exception calls
`free_stopped_fit()` right after its `pytest.raises` block.
"""

import contextlib
import gc
import weakref

import tensorflow as tf


def free_stopped_fit():
    """Collects the stopped fit's cycle now, while its iterator is young."""
    gc.collect()


@contextlib.contextmanager
def leaves_no_data_iterator():
    """Fails unless every `tf.data` iterator made inside the block is gone
    when it ends, without a garbage collection (and one was made).

    It records the eager iterators as they are made (scanning the heap for
    them cost about a second a scan in a test worker's large heap)."""
    kind = type(iter(tf.data.Dataset.range(1)))  # the eager iterator class
    made = []
    original_init = kind.__init__

    def recording_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        made.append(weakref.ref(self))

    enabled = gc.isenabled()
    gc.disable()  # a collection inside would hide a cycle
    kind.__init__ = recording_init
    try:
        yield
    finally:
        kind.__init__ = original_init
        if enabled:
            gc.enable()
    left = sum(ref() is not None for ref in made)
    assert made, "the block made no tf.data iterator: nothing was checked"
    assert not left, (
        f"{left} tf.data iterator(s) of the stopped fit still alive: "
        f"they wait for a garbage collection (see tests/_stopped_fit.py)")
