"""Tiny image trees, ZIPs and IDX files written into a test's tmp_path."""

import gzip
import io
import os
import zipfile

import numpy as np
from PIL import Image


def image_bytes(array, fmt="PNG"):
    """Encodes a uint8 (H, W) or (H, W, 3) array as PNG/JPEG bytes."""
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format=fmt)
    return buffer.getvalue()


def pattern(value, size=(6, 5), channels=3):
    """A constant-ish image whose first pixel encodes `value`."""
    shape = size + ((channels,) if channels == 3 else ())
    array = np.full(shape, 40, np.uint8)
    array[0, 0] = value
    return array


def truncated_jpeg(size=(16, 16)):
    data = image_bytes(np.full(size + (3,), 128, np.uint8), "JPEG")
    return data[: len(data) // 2]


def write_files(root, files):
    """`files`: {relative path: bytes}; returns root."""
    for rel, data in files.items():
        path = os.path.join(root, *rel.split("/"))
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
    return str(root)


def write_zip(path, files):
    with zipfile.ZipFile(path, "w") as archive:
        for rel, data in files.items():
            archive.writestr(rel, data)
    return str(path)


def class_tree(prefix="", per_class=3, classes=("cat", "dog"), size=(6, 5)):
    """PNG files `<prefix><class>/<i>.png`; pixel [0,0] = 10*class + i."""
    files = {}
    for label, name in enumerate(classes):
        for i in range(per_class):
            files[f"{prefix}{name}/{i}.png"] = image_bytes(
                pattern(10 * label + i, size))
    return files


def write_idx(path, array, gz=True):
    """Writes an unsigned-byte IDX file (MNIST format)."""
    array = np.asarray(array, np.uint8)
    header = bytes([0, 0, 0x08, array.ndim])
    header += np.asarray(array.shape, ">i4").tobytes()
    data = header + array.tobytes()
    opener = gzip.open if gz else open
    with opener(str(path), "wb") as f:
        f.write(data)
    return str(path)


def idx_folder(root, train=7, test=4, size=(5, 4), gz=True):
    """train-* and t10k-* IDX files of random images; returns the arrays."""
    os.makedirs(root, exist_ok=True)
    rng = np.random.default_rng(1)
    arrays = {}
    suffix = ".gz" if gz else ""
    for prefix, count in (("train", train), ("t10k", test)):
        images = rng.integers(0, 256, (count, *size), dtype=np.uint8)
        labels = rng.integers(0, 3, count, dtype=np.uint8)
        labels[0] = 2  # every split sees the largest class
        write_idx(os.path.join(root, f"{prefix}-images-idx3-ubyte{suffix}"),
                  images, gz)
        write_idx(os.path.join(root, f"{prefix}-labels-idx1-ubyte{suffix}"),
                  labels, gz)
        arrays[prefix] = (images, labels)
    return arrays
