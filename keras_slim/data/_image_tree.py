"""Image-folder trees (`<split>/<class>/<image>`) on disk or in a ZIP."""

import io
import os
import zipfile

import numpy as np

from keras_slim.data import _convert

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp",
                    ".tif", ".tiff", ".ppm", ".pgm", ".pbm")

# PIL modes whose pixels are one grey value; every other mode becomes RGB.
_GREY_MODES = ("1", "L", "LA", "I", "I;16", "F")


def is_image_name(path):
    """Whether a tree member counts as an image (others are ignored)."""
    parts = path.split("/")
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return False  # hidden files and macOS resource forks
    return path.lower().endswith(IMAGE_EXTENSIONS)


def list_folder(root):
    """Image paths under `root`, relative, with "/" separators, sorted."""
    paths = []
    for folder, dirs, files in os.walk(root, followlinks=True):
        dirs.sort()
        rel = os.path.relpath(folder, root)
        for name in files:
            path = name if rel == "." else f"{rel}/{name}".replace(os.sep, "/")
            if is_image_name(path):
                paths.append(path)
    return sorted(paths)


def list_zip(archive):
    """Image members of an open `zipfile.ZipFile`, sorted."""
    return sorted(n for n in archive.namelist()
                  if not n.endswith("/") and is_image_name(n))


def select_split(paths, split, where):
    """Picks `split` from a tree; returns `(class_names, [(path, label)])`.

    Layouts: `<class>/<image>` (served as split "train") or
    `<split>/<class>/<image>`, either possibly inside wrapper folders (a
    ZIP of a folder). A tree whose images all lie two or more folders deep
    reads as `<split>/<class>/...`.
    """
    if not paths:
        raise ValueError(
            f"{where} holds no image files ({', '.join(IMAGE_EXTENSIONS)}). "
            f"Expected <class>/<image> or <split>/<class>/<image>."
        )
    parts = [p.split("/") for p in paths]
    prefix = []
    while _all_deep(parts) and len({q[0] for q in parts}) == 1:
        top = parts[0][0]
        prefix.append(top)
        parts = [q[1:] for q in parts]
        if top == split:
            return _class_tree(parts, prefix, where)
    if _all_deep(parts):
        splits = sorted({q[0] for q in parts})
        if split not in splits:
            raise ValueError(
                f"Unknown split {split!r} for {where}: available splits are "
                f"{splits}. Pass split= one of them."
            )
        chosen = [q[1:] for q in parts if q[0] == split]
        return _class_tree(chosen, prefix + [split], where)
    if split != "train":
        raise ValueError(
            f"Unknown split {split!r} for {where}: it holds class folders "
            f"directly (<class>/<image>), which load() serves as split "
            f"'train'. Available splits: ['train']. For separate splits use "
            f"<split>/<class>/<image> folders."
        )
    return _class_tree(parts, prefix, where)


def _all_deep(parts):
    return all(len(q) >= 3 for q in parts)


def _class_tree(parts, prefix, where):
    # Images lying directly in the root have no class: ignored, like Keras.
    in_classes = [q for q in parts if len(q) >= 2]
    if not in_classes:
        raise ValueError(
            f"{where} has no class subfolders: put each class's images in "
            f"its own folder, <class>/<image>."
        )
    class_names = sorted({q[0] for q in in_classes})
    label_of = {name: i for i, name in enumerate(class_names)}
    items = [("/".join(prefix + q), label_of[q[0]]) for q in in_classes]
    return class_names, sorted(items)


class TreeDecoder:
    """Decodes a tree's images into one uint8 array, file by file.

    Every image becomes `image_size` (resized) or must share the first
    image's size; channels become `channels`, or RGB as soon as one image is
    RGB (the grey images decoded so far are converted once).
    """

    def __init__(self, where, image_size, channels, on_corrupt, max_bytes):
        self.where = where
        self.image_size = image_size
        self.channels = channels
        self.on_corrupt = on_corrupt
        self.max_bytes = max_bytes
        self.skipped = []

    def decode_all(self, read, items):
        """`read(path) -> bytes`; returns the good images and their labels."""
        buffer, labels, first_path, count = None, [], None, 0
        for path, label in items:
            image = self._decode(read, path)
            if image is None:
                continue
            if buffer is None:
                buffer = self._allocate(len(items), image)
                first_path = path
            buffer = self._fit(buffer, image, path, first_path, count)
            if image.shape[-1] != buffer.shape[-1]:
                image = _convert.convert_channels(image, buffer.shape[-1])
            buffer[count] = image
            labels.append(label)
            count += 1
        if buffer is None:
            raise ValueError(f"{self.where}: every image file is corrupt; "
                             f"nothing to load.")
        # Skipped files left unused rows: copy so the big buffer is freed.
        images = buffer if count == len(buffer) else buffer[:count].copy()
        return images, np.asarray(labels, np.int32)

    def _decode(self, read, path):
        from PIL import Image

        try:
            with Image.open(io.BytesIO(read(path))) as image:
                image.load()
                if image.mode not in ("L", "RGB"):  # convert() copies
                    image = image.convert(
                        "L" if image.mode in _GREY_MODES else "RGB")
                if self.image_size is not None and (
                        image.size != self.image_size[::-1]):
                    image = image.resize(self.image_size[::-1],
                                         Image.Resampling.BILINEAR)
                array = np.asarray(image, dtype=np.uint8)
        except Exception as error:  # any decoder failure means a bad file
            return self._corrupt(path, error)
        return array[..., None] if array.ndim == 2 else array

    def _corrupt(self, path, error):
        name = f"{self.where}/{path}"
        if self.on_corrupt == "fail":
            raise ValueError(
                f"Corrupt or unreadable image file {name}: {error}. Remove or "
                f"replace it, or pass on_corrupt='skip' to leave such files "
                f"out (listed in ImageData.skipped)."
            ) from error
        self.skipped.append(name)
        return None

    def _allocate(self, count, image):
        channels = self.channels or image.shape[-1]
        shape = (*image.shape[:2], channels)
        _convert.check_memory(self.where, count, shape, self.max_bytes)
        return np.empty((count, *shape), np.uint8)

    def _fit(self, buffer, image, path, first_path, count):
        if image.shape[:2] != buffer.shape[1:3]:
            raise ValueError(
                f"{self.where} has images of different sizes: "
                f"{first_path} is {buffer.shape[1]}x{buffer.shape[2]} but "
                f"{path} is {image.shape[0]}x{image.shape[1]} (height x "
                f"width). Pass image_size=(height, width) to resize every "
                f"image at load time."
            )
        if self.channels is None and image.shape[-1] > buffer.shape[-1]:
            # First RGB image after grey ones: the data set becomes RGB.
            rgb = np.empty(buffer.shape[:3] + (3,), np.uint8)
            rgb[:count] = _convert.convert_channels(buffer[:count], 3)
            return rgb
        return buffer


def open_zip(path):
    try:
        return zipfile.ZipFile(path)
    except zipfile.BadZipFile as error:
        raise ValueError(
            f"{path} is not a readable ZIP archive ({error}). Check the file "
            f"(a partial download?) or pass the folder it came from."
        ) from error
