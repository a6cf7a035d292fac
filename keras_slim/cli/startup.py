"""Importing TensorFlow without its start-up log lines (the `keras-slim`
command's output starts with its own)."""

import importlib.util
import os
import re
import sys
import tempfile

__all__ = ["import_tensorflow_quietly"]

_STARTUP_LINE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ")


def import_tensorflow_quietly():
    """Import TensorFlow without its start-up log lines on stderr.

    They come twice: two of TensorFlow's extension modules
    (`_pywrap_cpu_feature_guard` and `_pywrap_profiler_plugin`) each carry
    their own copy of its platform code and of absl's logging, and each logs
    the oneDNN line while it loads. `TF_CPP_MIN_LOG_LEVEL` cannot hide them:
    TensorFlow applies it after those loaders have run. So stderr is held in
    a file while TensorFlow loads, and all of it but those lines is written
    back. Defaults `TF_CPP_MIN_LOG_LEVEL` to 2 (warnings and info off) and
    `TF_ENABLE_ONEDNN_OPTS` to 1; a value the user set wins, and with
    `TF_CPP_MIN_LOG_LEVEL=0` nothing is held back.

    Without TensorFlow installed (the JAX backend needs none) there is
    nothing to import: what needs it says so with a clear error.
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules or (
            importlib.util.find_spec("tensorflow") is None):
        return
    if os.environ["TF_CPP_MIN_LOG_LEVEL"].strip() in ("", "0"):
        import tensorflow  # noqa: F401
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", errors="replace")
            sys.stderr.write("".join(
                line for line in text.splitlines(keepends=True)
                if not _STARTUP_LINE.match(line)))
            sys.stderr.flush()
