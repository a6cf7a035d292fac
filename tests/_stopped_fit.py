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


def _live_data_iterators():
    return [o for o in gc.get_objects() if isinstance(o, tf.data.Iterator)]


@contextlib.contextmanager
def leaves_no_data_iterator():
    """Fails unless every `tf.data` iterator made inside the block is gone
    when it ends, without a garbage collection."""
    before = weakref.WeakSet(_live_data_iterators())
    enabled = gc.isenabled()
    gc.disable()  # a collection inside would hide a cycle
    try:
        yield
        left = [o for o in _live_data_iterators() if o not in before]
    finally:
        if enabled:
            gc.enable()
    assert not left, (
        f"{len(left)} tf.data iterator(s) of the stopped fit still alive: "
        f"they wait for a garbage collection (see tests/_stopped_fit.py)")
