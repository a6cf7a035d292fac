"""scikit-learn's bundled digits (1,797 8x8 grey images), split 80/20."""

import numpy as np

from keras_slim.data import _convert

SPLITS = ("train", "test")
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def split_indices(labels):
    """`{"train": idx, "test": idx}`: a stratified 80/20 split, seed 0.

    Per class, a seeded permutation puts `round(0.2 * n_class)` examples in
    "test" and the rest in "train", so both splits keep the class balance and
    every call (any machine, any scikit-learn version) gives the same split.
    """
    rng = np.random.default_rng(SPLIT_SEED)
    test = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        count = int(round(TEST_FRACTION * len(members)))
        test.extend(rng.permutation(members)[:count])
    test = np.sort(np.asarray(test, np.int64))
    train = np.setdiff1d(np.arange(len(labels)), test)
    return {"train": train, "test": test}


def read_split(split, max_examples):
    """Returns `(images uint8 (N,8,8,1), labels int32, class_names)`."""
    from sklearn.datasets import load_digits

    if split not in SPLITS:
        raise ValueError(
            f"Unknown split {split!r} for 'digits': available splits are "
            f"{list(SPLITS)}. Pass split= one of them."
        )
    digits = load_digits()
    labels = digits.target.astype(np.int32)
    chosen = split_indices(labels)[split]
    chosen = chosen[_convert.subset_indices(len(chosen), max_examples)]
    # Pixel values are 0..16: scale to the uint8 range.
    images = np.rint(digits.images[chosen] * (255.0 / 16.0))
    images = images.astype(np.uint8)[..., None]
    return images, labels[chosen], [str(i) for i in range(10)]
