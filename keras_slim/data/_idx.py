"""IDX files (the MNIST / Fashion-MNIST format), optionally gzipped."""

import gzip
import os
import re

import numpy as np

from keras_slim.data import _convert

# `train-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte`, ...
_IDX_NAME = re.compile(
    r"^(?P<prefix>.+?)-(?P<kind>images|labels)-idx(?P<rank>\d)-ubyte"
    r"(?P<gz>\.gz)?$")

# The MNIST family names its test split "t10k".
_SPLIT_PREFIXES = {"train": ("train",), "test": ("t10k", "test")}


def idx_files(folder):
    """`{prefix: {"images": path, "labels": path}}` for the IDX files found."""
    found = {}
    for name in sorted(os.listdir(folder)):
        match = _IDX_NAME.match(name)
        if match:
            slot = found.setdefault(match["prefix"], {})
            slot.setdefault(match["kind"], os.path.join(folder, name))
    return found


def has_idx_files(folder):
    return os.path.isdir(folder) and bool(idx_files(folder))


def _split_name(prefix):
    for split, prefixes in _SPLIT_PREFIXES.items():
        if prefix in prefixes:
            return split
    return prefix


def read_split(folder, split, max_examples, max_bytes):
    """Returns `(images (N,H,W,C) uint8, labels int32, num_classes)`."""
    files = {_split_name(p): v for p, v in idx_files(folder).items()}
    if split not in files:
        raise ValueError(
            f"Unknown split {split!r} for IDX folder {folder}: available "
            f"splits are {sorted(files)} (train-* files serve 'train', "
            f"t10k-* files 'test'). Pass split= one of them."
        )
    pair = files[split]
    for kind in ("images", "labels"):
        if kind not in pair:
            raise ValueError(
                f"IDX folder {folder} has no {kind} file for split {split!r} "
                f"(expected e.g. {'train' if split == 'train' else 't10k'}-"
                f"{kind}-idx{3 if kind == 'images' else 1}-ubyte[.gz])."
            )
    images, count = _read_idx(pair["images"], max_examples, max_bytes)
    labels, _ = _read_idx(pair["labels"], None, None)
    if images.ndim not in (3, 4) or labels.ndim != 1:
        raise ValueError(
            f"{pair['images']} must hold images (N, H, W[, C]) and "
            f"{pair['labels']} labels (N,); got shapes {images.shape} and "
            f"{labels.shape}."
        )
    if len(labels) != count:
        raise ValueError(
            f"{pair['images']} holds {count} images "
            f"but {pair['labels']} {len(labels)} labels: the files do not "
            f"belong together."
        )
    num_classes = int(labels.max()) + 1 if len(labels) else 0
    keep = _convert.subset_indices(len(labels), max_examples)
    labels = labels[keep]
    if images.ndim == 3:
        images = images[..., None]
    return images, labels.astype(np.int32), num_classes


def _open(path):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def _parse_header(stream, path):
    magic = stream.read(4)
    if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] != 0x08:
        raise ValueError(
            f"{path} is not an unsigned-byte IDX file (magic bytes "
            f"{magic!r}; expected 00 00 08 <rank>)."
        )
    rank = magic[3]
    raw = stream.read(4 * rank)
    if len(raw) < 4 * rank:
        raise ValueError(f"{path} is truncated inside its IDX header.")
    return [int(d) for d in np.frombuffer(raw, ">i4")]


def _read_idx(path, max_examples, max_bytes):
    """Returns `(array, count)`: the kept items and the file's item count."""
    try:
        with _open(path) as stream:
            dims = _parse_header(stream, path)
            if max_bytes is not None:
                kept = len(_convert.subset_indices(dims[0], max_examples))
                _convert.check_memory(path, kept, dims[1:], max_bytes)
            data = stream.read()
    except (OSError, EOFError) as error:
        raise ValueError(
            f"Cannot read IDX file {path}: {error}. The file is corrupt or "
            f"truncated; download it again."
        ) from error
    expected = int(np.prod(dims))
    if len(data) < expected:
        raise ValueError(
            f"IDX file {path} is truncated: its header announces shape "
            f"{tuple(dims)} ({expected} bytes) but it holds {len(data)}. "
            f"Download it again."
        )
    array = np.frombuffer(data, np.uint8, count=expected).reshape(dims)
    if max_examples is not None:
        array = array[_convert.subset_indices(dims[0], max_examples)]
    return array, dims[0]
