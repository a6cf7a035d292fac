"""Tiny labeled images whose class is easy to read from random features."""

import numpy as np

from keras_slim import Widths
from tests.methods._helpers import tiny_backbone

# Each class has its own colour, so even a randomly initialized backbone
# maps the classes to well separated feature clusters.
_COLOURS = np.array(
    [[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9], [0.9, 0.9, 0.1]],
    dtype="float32",
)


def colour_images(per_class, num_classes=3, size=8, noise=0.05, seed=0):
    """(images, labels): `per_class` noisy images of each class's colour."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), per_class)
    images = _COLOURS[labels][:, None, None, :] + rng.normal(
        0, noise, (len(labels), size, size, 3)
    )
    order = rng.permutation(len(labels))
    return np.clip(images[order], 0, 1).astype("float32"), labels[order]


def range_backbone(**kwargs):
    widths = Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.5])
    return tiny_backbone(widths=widths, **kwargs)
