"""A labeled image data set kept on disk and decoded batch by batch."""

import numpy as np
import tensorflow as tf


class ImageFiles:
    """Image files with labels, decoded inside the `tf.data` pipeline.

    What `keras_slim.data.stream` returns, for data sets too large to hold
    in memory (ImageNet: 1.28 M images). `view_pairs`, `labeled_batches` and
    `steps_per_epoch` take it like an `ImageData`: each batch's files are
    read, decoded and resized to `image_size` by TensorFlow in parallel
    (batch `n` is still a pure function of the seed and `n`).

    Args:
        paths: file paths (absolute), one per example.
        labels: integer class ids `(N,)` in `[0, len(class_names))`.
        class_names: list of class names, index = label.
        image_size: `(height, width)` every image is resized to when
            decoded (bilinear, antialiased).
        channels: 1 (grey) or 3 (RGB); images are converted on decode.
        name: str, where the data came from.
        split: str, which split.
        skipped: list of str, unreadable files left out.

    Attributes:
        num_examples, num_classes, image_shape: as for `ImageData`.

    Example:

    ```python
    import os
    import tempfile

    import numpy as np
    from PIL import Image
    from keras_slim.data import TwoViewAugmentation, stream, view_pairs

    root = tempfile.mkdtemp()  # an image tree <split>/<class>/<image>
    for name in ("cat", "dog"):
        os.makedirs(os.path.join(root, "train", name))
        for i in range(2):
            Image.fromarray(np.full((12, 10, 3), 40 * i, "uint8")).save(
                os.path.join(root, "train", name, f"{i}.png"))
    files = stream(root, split="train", image_size=8)  # an ImageFiles
    assert files.num_examples == 4 and files.image_shape == (8, 8, 3)
    augment = TwoViewAugmentation.from_preset("cifar", image_size=8)
    view1, view2 = next(iter(view_pairs(files, augment, batch_size=2)))
    assert view1.shape == (2, 8, 8, 3)
    ```

    References:
        - [tf.io.decode_image](https://www.tensorflow.org/api_docs/python/tf/io/decode_image)
    """

    def __init__(self, paths, labels, class_names, image_size, channels=3,
                 name="", split="", skipped=()):
        paths = [str(p) for p in paths]
        labels = np.asarray(labels)
        if labels.shape != (len(paths),):
            raise ValueError(f"`labels` must have one entry per path "
                             f"({len(paths)}), got shape {labels.shape}.")
        if channels not in (1, 3):
            raise ValueError(f"`channels` must be 1 or 3, got {channels!r}.")
        class_names = [str(c) for c in class_names]
        if labels.size and (labels.min() < 0
                            or labels.max() >= len(class_names)):
            raise ValueError(
                f"`labels` must lie in [0, {len(class_names)}), got "
                f"{labels.min()}..{labels.max()}.")
        height, width = (int(v) for v in image_size)
        self.paths = paths
        self.labels = labels.astype(np.int32)
        self.class_names = class_names
        self.image_size = (height, width)
        self.channels = int(channels)
        self.name = str(name)
        self.split = str(split)
        self.skipped = list(skipped)

    @property
    def num_examples(self):
        return len(self.paths)

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def image_shape(self):
        return (*self.image_size, self.channels)

    def __len__(self):
        return self.num_examples

    def decode(self, path):
        """One file -> uint8 `(height, width, channels)` (graph-safe)."""
        image = tf.io.decode_image(tf.io.read_file(path),
                                   channels=self.channels,
                                   expand_animations=False)
        image.set_shape([None, None, self.channels])
        image = tf.image.resize(image, self.image_size, antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0),
                       tf.uint8)

    def decode_batch(self, paths):
        """A vector of paths -> uint8 `(len(paths), h, w, channels)`."""
        return tf.map_fn(
            self.decode, paths,
            fn_output_signature=tf.TensorSpec(self.image_shape, tf.uint8))

    def __repr__(self):
        return (
            f"ImageFiles(name={self.name!r}, split={self.split!r}, "
            f"num_examples={self.num_examples}, "
            f"image_shape={self.image_shape}, num_classes={self.num_classes}"
            f", skipped={len(self.skipped)})"
        )
