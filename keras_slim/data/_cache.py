"""Decoded-array cache: a folder or ZIP is decoded once; later loads read
two `.npy` files (images, labels) and a JSON index (class names, ...)."""

import hashlib
import json
import os
import re

import numpy as np

# Bump when the decoded arrays of the same options would change.
FORMAT_VERSION = 1


def fingerprint(paths):
    """What identifies the source files' content cheaply: size and mtime."""
    entries = []
    for path in paths:
        if os.path.isdir(path):
            for folder, dirs, files in os.walk(path, followlinks=True):
                dirs.sort()
                for name in sorted(files):
                    full = os.path.join(folder, name)
                    entries.append(_stat(full, os.path.relpath(full, path)))
        elif os.path.exists(path):
            entries.append(_stat(path, os.path.abspath(path)))
    return entries


def _stat(path, label):
    info = os.stat(path)
    return [label, info.st_size, info.st_mtime_ns]


def cache_key(description):
    """A short stable hash of a JSON-able description of the load."""
    text = json.dumps(dict(description, version=FORMAT_VERSION),
                      sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


def cache_stem(cache_dir, name, split, key):
    slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", os.path.basename(
        name.rstrip("/\\")) or "data")[:40]
    return os.path.join(cache_dir, f"{slug}-{split}-{key}")


def read(stem):
    """The cached `(images, labels, meta)` or `None` if absent/unreadable."""
    try:
        with open(stem + ".json") as f:
            meta = json.load(f)
        images = np.load(stem + ".images.npy")
        labels = np.load(stem + ".labels.npy")
    except (OSError, ValueError):
        return None
    if len(images) != len(labels) or images.dtype != np.uint8:
        return None
    return images, labels, meta


def write(stem, images, labels, meta):
    """Writes the three files atomically, the index last (it marks done)."""
    os.makedirs(os.path.dirname(stem) or ".", exist_ok=True)
    _atomic(stem + ".images.npy", lambda f: np.save(f, images))
    _atomic(stem + ".labels.npy", lambda f: np.save(f, labels))
    _atomic(stem + ".json", lambda f: f.write(json.dumps(meta).encode()))


def _atomic(path, write_to):
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as f:
            write_to(f)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
