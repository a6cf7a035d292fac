"""Frees, at once, the data iterator of a `fit` that stopped mid-epoch.

When `keras.Model.fit` ends in the middle of an epoch (an exception out of
a step or a callback), Keras's epoch iterator stays alive in a reference
cycle (the iterator and its suspended epoch generator), and the exception
keeps Keras's `fit` frame alive too: its traceback holds the frame that
raised, whose callers (`f_back`) lead up to `fit` and its `epoch_iterator`.
Nothing frees the `tf.data` iterator until a garbage collection, maybe
minutes later in an unrelated cell or test, and destroying a `tf.data`
iterator that sat idle that long was seen to block for 10-40 s on the
2-core machine (`tools/repro_iterator_stall.py`; DEVELOPERS.md).

Where keras_slim replaces such an exception by its own (a non-finite loss,
a bad label), the original is never shown, so its frames can go:
`release_stopped_fit(error)` clears them and collects, while the iterator
is young.
"""

import gc

__all__ = ["release_stopped_fit"]


def release_stopped_fit(error):
    """Clears the finished frames behind `error` and collects the cycle.

    The frames still running (the caller's, and theirs) are left alone.
    """
    _clear_finished_frames(error.__traceback__)
    gc.collect()


def _clear_finished_frames(traceback):
    """Clears every frame of the traceback and of its frames' callers."""
    seen = set()
    while traceback is not None:
        frame = traceback.tb_frame
        while frame is not None and id(frame) not in seen:
            seen.add(id(frame))
            try:
                frame.clear()
            except RuntimeError:  # still running: the caller's frames
                pass
            frame = frame.f_back
        traceback = traceback.tb_next
