"""Python's garbage collector, tuned for test processes.

Tracing a TensorFlow or JAX step allocates millions of short-lived Python
objects. At Python's default thresholds (700, 10, 10) the collector runs
every 700 net allocations and now and then walks the whole heap the imports
left (TensorFlow, Keras, JAX: never garbage). In
`tests/methods/test_slim_clr.py`, alone on the 2-core machine, collections
took 3.2 of its 39 seconds (2026-12-05); with the imports' objects frozen
and the first threshold at 50,000 they take 0.9 s (Keras's own
`gc.collect()` calls) and the file's CPU time drops 5 %. Memory only: no
computation changes, and cycles are still collected, in larger batches.

`tests/conftest.py` calls `relax_gc()` in every test worker, and the
scripts tests run in child processes call it after their imports.
"""

import gc

THRESHOLDS = (50_000, 20, 100)


def relax_gc():
    """Freezes what exists now (call it after the imports) and collects
    less often."""
    gc.freeze()
    gc.set_threshold(*THRESHOLDS)
