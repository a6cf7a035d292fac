import numpy as np


class ImageData:
    """A labeled image data set held in memory as uint8 arrays.

    What `keras_slim.data.load` returns and what the pipelines
    (`view_pairs`, `labeled_batches`) consume. Holding every image in memory
    is the design for the CPU-scale data sets this library pretrains on
    (digits, Fashion-MNIST, CIFAR-10/100, STL-10: at most a few GB); an
    ImageNet-size image folder streams instead (`keras_slim.data.stream`,
    an `ImageFiles`).

    Args:
        images: uint8 array `(N, H, W, C)`, C 1 (grey) or 3 (RGB).
        labels: integer array `(N,)`, class indices in `[0, num_classes)`.
        class_names: list of `num_classes` strings, index = label.
        name: str, where the data came from (for messages and reports).
        split: str, which split of it ("train", "test", ...).
        skipped: list of str, corrupt files left out while loading.

    Attributes:
        num_examples: int, N.
        num_classes: int, `len(class_names)`.
        image_shape: tuple `(H, W, C)`.

    Example:

    ```python
    import numpy as np
    from keras_slim.data import ImageData

    data = ImageData(np.zeros((4, 8, 8, 1), "uint8"), [0, 1, 0, 1],
                     class_names=["a", "b"], name="toy")
    assert (data.num_examples, data.image_shape, data.num_classes) == (
        4, (8, 8, 1), 2)
    ```

    References:
        - [keras.utils.image_dataset_from_directory](
          https://keras.io/api/data_loading/image/), the folder layout `load`
          reads.
    """

    def __init__(self, images, labels, class_names, name="", split="",
                 skipped=()):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype != np.uint8 or images.ndim != 4:
            raise ValueError(
                "`images` must be a uint8 array of shape (N, H, W, C), got "
                f"dtype {images.dtype} and shape {images.shape}."
            )
        if images.shape[-1] not in (1, 3):
            raise ValueError(
                f"`images` must have 1 (grey) or 3 (RGB) channels, got "
                f"shape {images.shape}."
            )
        if labels.shape != (images.shape[0],):
            raise ValueError(
                f"`labels` must have shape ({images.shape[0]},) (one per "
                f"image), got {labels.shape}."
            )
        class_names = [str(c) for c in class_names]
        if labels.size and (labels.min() < 0
                            or labels.max() >= len(class_names)):
            raise ValueError(
                f"`labels` must lie in [0, {len(class_names)}) (one per "
                f"class name), got values {labels.min()}..{labels.max()}."
            )
        self.images = images
        self.labels = labels.astype(np.int32)
        self.class_names = class_names
        self.name = str(name)
        self.split = str(split)
        self.skipped = list(skipped)

    @property
    def num_examples(self):
        return int(self.images.shape[0])

    @property
    def num_classes(self):
        return len(self.class_names)

    @property
    def image_shape(self):
        return tuple(int(d) for d in self.images.shape[1:])

    def __len__(self):
        return self.num_examples

    def __repr__(self):
        return (
            f"ImageData(name={self.name!r}, split={self.split!r}, "
            f"num_examples={self.num_examples}, "
            f"image_shape={self.image_shape}, num_classes={self.num_classes}"
            f", skipped={len(self.skipped)})"
        )
