"""Frees, at once, what a `fit` stopped by an exception leaves behind.

An exception out of `model.fit` keeps Keras's epoch iterator alive in a
reference cycle through its traceback's frames. Freed by a garbage
collection a minute or more later (under the suite's relaxed thresholds,
`tests/_gc.py`), the iterator's destructor blocks for seconds waiting for a
tf.data thread: `tools/repro_iterator_stall.py` shows 0.3 s when freed at
once and 11.8 s after 70 s; in whole-suite runs a later test (the
`KNNMonitor` docstring example, `test_presets.py`'s linear probes) took
10-40 s longer. A test that stops a `fit` on purpose calls
`free_stopped_fit()` right after its `pytest.raises` block.
"""

import gc


def free_stopped_fit():
    """Collects the stopped fit's cycle now, while its iterator is young."""
    gc.collect()
