"""`load`: image classification data sets into memory, from several sources."""

import os
import warnings
import zipfile

import numpy as np

from keras_slim.data import _cache
from keras_slim.data import _convert
from keras_slim.data import _digits
from keras_slim.data import _idx
from keras_slim.data import _image_tree
from keras_slim.data import _tfds
from keras_slim.data.image_data import ImageData

DEFAULT_MAX_BYTES = 8 * 2**30
SOURCE_KINDS = ("digits", "tfds", "folder", "zip", "idx")
_HELP = ("Pass 'digits', a TFDS name ('cifar10' or 'tfds:cifar10'), or a "
         "path: a folder of class subfolders ('folder:PATH'), a .zip of one "
         "('zip:PATH') or a folder of IDX files ('idx:PATH').")


def load(
    source,
    split="train",
    data_dir=None,
    image_size=None,
    channels=None,
    on_corrupt="fail",
    max_examples=None,
    cache_dir=None,
    max_bytes=DEFAULT_MAX_BYTES,
):
    """Loads one split of an image classification data set into memory.

    Sources (`source`, a string or path):

    * `"digits"`: scikit-learn's bundled 8x8 digits (1,797 grey images,
      values 0..16 scaled to 0..255). Splits "train" / "test": a fixed
      stratified 80/20 split (per class, seed 0), the same on every call.
    * a TFDS name, `"cifar10"` or `"tfds:cifar10"`: read through
      `tensorflow_datasets` from `data_dir`, downloaded and prepared there
      when missing (which needs network access; without it, point `data_dir`
      at a prepared copy or use a folder/ZIP/IDX source).
    * a folder of class subfolders (`<class>/<image>`, as
      `keras.utils.image_dataset_from_directory` reads), or of split folders
      (`<split>/<class>/<image>`; `<dir>/<split>` is used when present);
      also `"folder:PATH"`. Labels follow the sorted class-folder names.
      Files without an image extension (and hidden files) are ignored. A
      class tree without split folders serves split "train".
    * a `.zip` of such a tree (`"zip:PATH"` too), read without unpacking.
    * a folder of IDX files (`train-images-idx3-ubyte[.gz]`,
      `train-labels-idx1-ubyte[.gz]`, `t10k-*` for split "test"), like
      MNIST and Fashion-MNIST; also `"idx:PATH"`.

    Images are decoded with Pillow; a corrupt or truncated file raises
    (`on_corrupt="fail"`) or is left out and named in `skipped`
    (`on_corrupt="skip"`, with a warning). Images of different sizes need
    `image_size`; a mix of grey and RGB images becomes RGB unless `channels`
    says otherwise.

    The data set lives in memory as uint8, which suits this library's
    CPU-scale data sets (digits, Fashion-MNIST, CIFAR-10/100, STL-10); an
    ImageNet-size image folder streams instead (`stream`): a source that
    would need more than `max_bytes` raises `MemoryError` suggesting
    `max_examples` or streaming.

    Args:
        source: str or path-like, see above.
        split: str, the split to load ("train", "test", ...).
        data_dir: str, the TFDS data folder (TFDS sources only).
        image_size: int or `(height, width)`: resize every image at load
            time (bilinear, antialiased; still uint8). `None` keeps sizes,
            which must then all be equal.
        channels: 1 or 3 to convert every image to grey or RGB; `None` keeps
            the source's (RGB if any image is RGB).
        on_corrupt: `"fail"` or `"skip"`, what an unreadable image does.
        max_examples: int, load a subset of at most this many examples: a
            seeded random subset (the same on every call) in the source's
            order; for TFDS the first ones (its records are shuffled).
        cache_dir: str, a folder where decoded arrays are cached, keyed by
            the source (and its files' sizes and times), split and options,
            so a folder or ZIP is decoded once.
        max_bytes: int or `None`, the memory budget for the decoded images.

    Returns:
        an `ImageData`.

    Example:

    ```python
    import os
    import tempfile
    import zipfile

    import numpy as np
    from PIL import Image
    from keras_slim.data import load

    data = load("digits", split="test")  # bundled with scikit-learn
    assert data.images.shape == (359, 8, 8, 1) and data.num_classes == 10
    # A ZIP of class folders, decoded once into a cache folder.
    folder = tempfile.mkdtemp()
    path = os.path.join(folder, "shapes.zip")
    with zipfile.ZipFile(path, "w") as archive:
        for name in ("circle", "square"):
            image = os.path.join(folder, f"{name}.png")
            Image.fromarray(np.zeros((6, 6, 3), "uint8")).save(image)
            archive.write(image, f"train/{name}/0.png")
    shapes = load(path, split="train", cache_dir=os.path.join(folder, "cache"))
    assert shapes.class_names == ["circle", "square"]
    ```
    """
    options = _check_options(split, image_size, channels, on_corrupt,
                             max_examples)
    kind, target = resolve_source(source)
    name = "digits" if kind == "digits" else f"{kind}:{target}"
    stem = None
    if cache_dir is not None:
        stem = _cache_stem(cache_dir, kind, target, data_dir, options)
        cached = _cache.read(stem)
        if cached is not None:
            images, labels, meta = cached
            return _finish(images, labels, meta["class_names"], name,
                           options["split"], meta["skipped"])
    images, labels, class_names, skipped = _read(
        kind, target, data_dir, options, max_bytes)
    images = _convert.resize_images(images, options["image_size"])
    images = _convert.convert_channels(images, options["channels"])
    if stem is not None:
        _cache.write(stem, images, labels,
                     {"class_names": list(class_names), "skipped": skipped})
    return _finish(images, labels, class_names, name, options["split"],
                   skipped)


def resolve_source(source):
    """`source` -> `(kind, target)`: kind in SOURCE_KINDS, target a path
    (absolute) or a TFDS name (`None` for digits)."""
    if isinstance(source, os.PathLike):
        source = os.fspath(source)
    if not isinstance(source, str) or not source:
        raise TypeError(
            f"`source` must be a non-empty string or path, got {source!r}. "
            + _HELP)
    if source == "digits":
        return "digits", None
    prefix, colon, rest = source.partition(":")
    if colon and _is_kind_prefix(prefix) and not os.path.exists(source):
        return _explicit_source(prefix, rest)
    path = os.path.abspath(os.path.expanduser(source))
    if os.path.isdir(path):
        return ("idx" if _idx.has_idx_files(path) else "folder"), path
    if os.path.isfile(path):
        if not zipfile.is_zipfile(path):
            raise ValueError(
                f"{source} is a file but not a ZIP archive; load() reads a "
                f"folder, a .zip of one, or a folder of IDX files. " + _HELP)
        return "zip", path
    if _looks_like_path(source):
        raise FileNotFoundError(
            f"{source}: no such file or directory. Check the path. " + _HELP)
    return "tfds", source


def _is_kind_prefix(prefix):
    """`tfds` in "tfds:mnist"; not a drive letter or a path with a colon."""
    return len(prefix) > 1 and not any(c in prefix for c in "/\\.")


def _explicit_source(kind, rest):
    if kind not in SOURCE_KINDS or kind == "digits":
        raise ValueError(
            f"Unknown source kind {kind!r} in '{kind}:{rest}'; known kinds: "
            f"tfds:NAME, folder:PATH, zip:PATH, idx:PATH, or 'digits'. "
            + _HELP)
    if kind == "tfds":
        return kind, rest
    path = os.path.abspath(os.path.expanduser(rest))
    if not os.path.exists(path):
        raise FileNotFoundError(
            f"{kind}:{rest}: no such file or directory. Check the path.")
    wants_dir = kind in ("folder", "idx")
    if wants_dir != os.path.isdir(path):
        raise ValueError(
            f"'{kind}:{rest}' needs a {'folder' if wants_dir else 'ZIP file'}"
            f", but {path} is {'a file' if wants_dir else 'a folder'}.")
    if kind == "idx" and not _idx.has_idx_files(path):
        raise ValueError(
            f"{path} holds no IDX files (e.g. train-images-idx3-ubyte.gz and "
            f"train-labels-idx1-ubyte.gz).")
    return kind, path


def _looks_like_path(source):
    if source.startswith((".", "~", "/")) or source.lower().endswith(".zip"):
        return True
    if os.sep in source or "/" in source:
        # "name/config" can be a TFDS name; anything else is a path.
        import tensorflow_datasets as tfds

        try:
            tfds.builder_cls(source.split("/")[0])
        except Exception:  # DatasetNotFoundError
            return True
    return False


def _check_options(split, image_size, channels, on_corrupt, max_examples):
    if not isinstance(split, str) or not split:
        raise ValueError(f"`split` must be a split name such as 'train' or "
                         f"'test', got {split!r}.")
    if on_corrupt not in ("fail", "skip"):
        raise ValueError(f"`on_corrupt` must be 'fail' or 'skip', got "
                         f"{on_corrupt!r}.")
    return {
        "split": split,
        "image_size": _convert.image_size_pair(image_size),
        "channels": _convert.check_channels(channels),
        "on_corrupt": on_corrupt,
        "max_examples": _convert.check_max_examples(max_examples),
    }


def _read(kind, target, data_dir, options, max_bytes):
    """Returns `(images, labels, class_names, skipped)`."""
    split, max_examples = options["split"], options["max_examples"]
    if kind == "digits":
        return (*_digits.read_split(split, max_examples), [])
    if kind == "tfds":
        return (*_tfds.read_split(target, split, data_dir,
                                  options["image_size"], max_examples,
                                  max_bytes), [])
    if kind == "idx":
        images, labels, num_classes = _idx.read_split(
            target, split, max_examples, max_bytes)
        return images, labels, [str(i) for i in range(num_classes)], []
    return _read_tree(kind, target, options, max_bytes)


def _read_tree(kind, path, options, max_bytes):
    decoder = _image_tree.TreeDecoder(
        path, options["image_size"], options["channels"],
        options["on_corrupt"], max_bytes)
    if kind == "folder":
        paths = _image_tree.list_folder(path)
        read = lambda member: _read_file(os.path.join(path, member))  # noqa
        return _decode_tree(decoder, paths, read, options, path)
    with _image_tree.open_zip(path) as archive:
        paths = _image_tree.list_zip(archive)
        return _decode_tree(decoder, paths, archive.read, options, path)


def _decode_tree(decoder, paths, read, options, where):
    class_names, items = _image_tree.select_split(paths, options["split"],
                                                  where)
    keep = _convert.subset_indices(len(items), options["max_examples"])
    images, labels = decoder.decode_all(read, [items[i] for i in keep])
    return images, labels, class_names, decoder.skipped


def _read_file(path):
    with open(path, "rb") as f:
        return f.read()


def _cache_stem(cache_dir, kind, target, data_dir, options):
    cache_dir = os.path.abspath(os.path.expanduser(cache_dir))
    description = dict(options, kind=kind, target=target, data_dir=data_dir)
    if kind in ("folder", "zip", "idx"):
        description["files"] = _cache.fingerprint([target])
    key = _cache.cache_key(description)
    return _cache.cache_stem(cache_dir, target or kind, options["split"], key)


def _finish(images, labels, class_names, name, split, skipped):
    if len(images) == 0:
        raise ValueError(f"{name} split {split!r} holds no images.")
    if skipped:
        warnings.warn(
            f"{name}: skipped {len(skipped)} corrupt image file(s) "
            f"(on_corrupt='skip'), e.g. {skipped[0]}; all are listed in "
            f"ImageData.skipped.",
            stacklevel=3,
        )
    return ImageData(images, np.asarray(labels, np.int32), class_names,
                     name=name, split=split, skipped=skipped)
