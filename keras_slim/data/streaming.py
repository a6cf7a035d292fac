"""`stream`: an image-folder data set left on disk, decoded while training."""

import os
import warnings

import numpy as np
import tensorflow as tf

from keras_slim.data import _convert
from keras_slim.data import _image_tree
from keras_slim.data.image_files import ImageFiles
from keras_slim.data.loading import resolve_source


def stream(source, split="train", image_size=224, channels=3,
           on_corrupt="fail", max_examples=None, verify=True):
    """An image-folder split as `ImageFiles`: listed now, decoded in training.

    For data sets larger than memory (ImageNet). The tree layout is the one
    `load` reads (`<split>/<class>/<image>` or `<class>/<image>`); only
    plain folders stream (a ZIP must be extracted first, and the small
    sources, digits / TFDS / IDX, fit in memory: use `load`).

    With `verify` (the default), every file is decoded once now, in
    parallel, by the same TensorFlow decoder training uses, so a corrupt or
    truncated file fails here with its name (`on_corrupt="fail"`) or is left
    out (`"skip"`, listed in `skipped`), never in the middle of training.
    That costs one decode of every image (about an hour for ImageNet on 8
    cores); `verify=False` skips it for data you trust, and a bad file then
    stops training with TensorFlow's decode error.

    Args:
        source: a folder (or "folder:PATH").
        split: the split ("train", "val", ...).
        image_size: int or `(height, width)` every image is resized to.
        channels: 1 or 3 (default 3: grey files become RGB).
        on_corrupt: "fail" or "skip".
        max_examples: a seeded random subset of at most this many files.
        verify: decode every file once now (see above).

    Returns:
        an `ImageFiles`.

    Example:

    ```python
    import os
    import tempfile

    import numpy as np
    from PIL import Image
    from keras_slim.data import stream

    root = tempfile.mkdtemp()  # e.g. ImageNet's train/<class>/<image>.JPEG
    for name in ("n01440764", "n01443537"):
        os.makedirs(os.path.join(root, "train", name))
        Image.fromarray(np.zeros((20, 30, 3), "uint8")).save(
            os.path.join(root, "train", name, "0.JPEG"), format="JPEG")
    train = stream(root, "train", image_size=16)
    assert (train.num_examples, train.image_shape) == (2, (16, 16, 3))
    assert train.class_names == ["n01440764", "n01443537"]
    ```
    """
    size = _convert.image_size_pair(image_size)
    if size is None:
        raise ValueError("`image_size` is required: streamed images are "
                         "resized to it when decoded.")
    if channels not in (1, 3):
        raise ValueError(f"`channels` must be 1 or 3, got {channels!r}.")
    if on_corrupt not in ("fail", "skip"):
        raise ValueError(f"`on_corrupt` must be 'fail' or 'skip', got "
                         f"{on_corrupt!r}.")
    kind, root = resolve_source(source)
    if kind != "folder":
        raise ValueError(
            f"stream() reads a folder of images; {source!r} is a {kind} "
            f"source. " + ("Extract the ZIP and pass the folder."
                           if kind == "zip" else
                           "It fits in memory: use keras_slim.data.load()."))
    class_names, items = _image_tree.select_split(
        _image_tree.list_folder(root), split, root)
    keep = _convert.subset_indices(len(items),
                                   _convert.check_max_examples(max_examples))
    items = [items[i] for i in keep]
    paths = [os.path.join(root, *path.split("/")) for path, _ in items]
    labels = [label for _, label in items]
    files = ImageFiles(paths, labels, class_names, size, channels,
                       name=f"folder:{root}", split=split)
    if verify:
        files = _verified(files, on_corrupt)
    if files.num_examples == 0:
        raise ValueError(f"{root} split {split!r} holds no readable images.")
    return files


def _verified(files, on_corrupt):
    """`files` without the ones TensorFlow cannot decode."""
    indices = tf.data.Dataset.range(files.num_examples)
    paths = tf.constant(files.paths)

    def decodes(index):
        image = files.decode(paths[index])  # a bad file raises: dropped
        # Returned so the decode runs: an unused result would be pruned.
        return index, tf.reduce_max(image)

    good = indices.map(decodes, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True).ignore_errors()
    readable = np.zeros(files.num_examples, bool)
    for index, _ in good.batch(4096).as_numpy_iterator():
        readable[index] = True
    bad = [files.paths[i] for i in np.flatnonzero(~readable)]
    if not bad:
        return files
    if on_corrupt == "fail":
        listed = ", ".join(bad[:5]) + (" ..." if len(bad) > 5 else "")
        raise ValueError(
            f"{len(bad)} corrupt or unreadable image file(s) in "
            f"{files.name}: {listed}. Remove or replace them, or pass "
            f"on_corrupt='skip' to leave them out (listed in "
            f"ImageFiles.skipped).")
    warnings.warn(
        f"{files.name}: skipped {len(bad)} corrupt image file(s) "
        f"(on_corrupt='skip'), e.g. {bad[0]}; all are listed in "
        f"ImageFiles.skipped.", stacklevel=3)
    keep = np.flatnonzero(readable)
    return ImageFiles([files.paths[i] for i in keep], files.labels[keep],
                      files.class_names, files.image_size, files.channels,
                      name=files.name, split=files.split, skipped=bad)
