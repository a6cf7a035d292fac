"""Atomic file output: a kill or a full disk never leaves a half-written file.

Every writer goes to a temporary file in the destination's folder, flushes it
to disk, then renames it over the destination (`os.replace` is atomic on
POSIX and Windows). Until the rename the previous file stays intact. A
process killed mid-write leaves at most a hidden `.<name>.*.partial*` file
beside the destination (`remove_partial_files` clears them).
"""

import contextlib
import errno
import glob
import json
import os
import tempfile

__all__ = ["atomic_path", "write_text_atomic", "write_json_atomic",
           "remove_partial_files"]

_PARTIAL = ".partial"


def _read_umask():
    # Only a set-and-restore reads it; done once, at import, so no other
    # thread of ours creates files meanwhile.
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


_UMASK = _read_umask()


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
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.",
                               suffix=f"{_PARTIAL}{suffix}", dir=folder)
    os.close(fd)
    try:
        yield tmp
        _fsync_file(tmp)
        _give_usual_permissions(tmp, path)
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(err, OSError) and err.errno == errno.ENOSPC:
            raise OSError(
                err.errno, f"No space left on the device while writing "
                f"{path}; the previous version of the file (if any) is "
                f"intact. Free some space and run again."
            ) from err
        raise
    _fsync_folder(folder)


def remove_partial_files(folder):
    """Delete the temporary files that killed `atomic_path` writers left.

    Only call it while no other process writes into `folder`.
    """
    for leftover in glob.glob(os.path.join(glob.escape(folder),
                                           f".*{_PARTIAL}*")):
        with contextlib.suppress(OSError):
            os.remove(leftover)


def _extension(base):
    for ext in (".weights.h5", ".keras", ".tflite", ".json", ".yaml",
                ".png", ".npz", ".npy", ".txt", ".h5"):
        if base.endswith(ext):
            return ext
    return ""


def _fsync_file(path):
    """Flush `path` to the disk.

    A full disk or an I/O error may only show here (delayed allocation), so
    those propagate; a file system without fsync is fine.
    """
    if os.path.isdir(path):
        return
    with open(path, "rb") as f:
        try:
            os.fsync(f.fileno())
        except OSError as err:
            if err.errno not in (errno.EINVAL, errno.ENOTSUP):
                raise


def _fsync_folder(folder):
    """Make the rename durable; best effort (not possible on Windows)."""
    with contextlib.suppress(OSError, AttributeError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _give_usual_permissions(tmp, path):
    """`mkstemp` makes owner-only files; give the destination's usual mode.

    That is the mode of the file being replaced, else what `open` would
    give a new file (0o666 less the umask).
    """
    if os.path.isdir(tmp):
        return
    try:
        mode = os.stat(path).st_mode & 0o7777
    except OSError:
        mode = 0o666 & ~_UMASK
    os.chmod(tmp, mode)


def write_text_atomic(path, text):
    """Write `text` to `path` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)


def write_json_atomic(path, data):
    """Write `data` as indented JSON to `path` atomically."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")
