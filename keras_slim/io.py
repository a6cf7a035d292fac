"""Atomic file output: a kill or a full disk never leaves a half-written file.

Every writer goes to a temporary file in the destination's folder, flushes it
to disk, then renames it over the destination (`os.replace` is atomic on
POSIX and Windows). Until the rename the previous file stays intact.
"""

import contextlib
import json
import os
import tempfile

__all__ = ["atomic_path", "write_text_atomic", "write_json_atomic"]


@contextlib.contextmanager
def atomic_path(path, suffix=None):
    """Yield a temporary path beside `path`; rename it to `path` on success.

    `suffix` defaults to `path`'s own extension, so writers that insist on
    an extension (`.keras`, `.weights.h5`) accept the temporary name.
    """
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base = os.path.basename(path)
    if suffix is None:
        suffix = _extension(base)
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".partial{suffix}",
                               dir=folder)
    os.close(fd)
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(err, OSError) and err.errno == 28:  # ENOSPC
            raise OSError(
                err.errno, f"No space left on the device while writing "
                f"{path}; the previous version of the file (if any) is "
                f"intact. Free some space and run again."
            ) from err
        raise


def _extension(base):
    for ext in (".weights.h5", ".keras", ".tflite", ".json", ".yaml",
                ".png", ".npz", ".npy", ".txt", ".h5"):
        if base.endswith(ext):
            return ext
    return ""


def _fsync_file(path):
    if os.path.isdir(path):
        return
    with contextlib.suppress(OSError):
        with open(path, "rb") as f:
            os.fsync(f.fileno())


def write_text_atomic(path, text):
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_json_atomic(path, data):
    """Write `data` as indented JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
