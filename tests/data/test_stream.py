"""`stream`: image folders decoded batch by batch, same contract as `load`."""

import numpy as np
import pytest

from keras_slim import data
from tests.data import _trees

AUGMENT = data.TwoViewAugmentation.from_preset("cifar", image_size=4)


def _tree(tmp_path, extra=None):
    files = _trees.class_tree("train/", per_class=4, size=(6, 6))
    files.update(_trees.class_tree("test/", per_class=2, size=(6, 6)))
    files.update(extra or {})
    return _trees.write_files(tmp_path / "tree", files)


def test_streamed_batches_equal_the_loaded_ones(tmp_path):
    root = _tree(tmp_path)
    files = data.stream(root, "train", image_size=6)
    loaded = data.load(root, "train")
    assert (files.num_examples, files.image_shape, files.class_names) == (
        8, (6, 6, 3), ["cat", "dog"])
    np.testing.assert_array_equal(files.labels, loaded.labels)
    # Same seed, same batch: PNGs decode to the same pixels either way.
    streamed = next(iter(data.view_pairs(files, AUGMENT, 4, seed=3)))
    held = next(iter(data.view_pairs(loaded, AUGMENT, 4, seed=3)))
    for a, b in zip(streamed, held):
        np.testing.assert_allclose(a.numpy(), b.numpy(), atol=1e-6)
    # Resuming at batch 5 gives batch 5.
    tail = list(data.view_pairs(files, AUGMENT, 4, seed=3, start_step=5,
                                steps=1))[0]
    whole = list(data.view_pairs(files, AUGMENT, 4, seed=3, steps=6))[5]
    np.testing.assert_array_equal(tail[0].numpy(), whole[0].numpy())


def test_labeled_batches_resize_and_keep_order(tmp_path):
    files = data.stream(_tree(tmp_path), "test", image_size=(4, 5),
                        channels=1)
    images, labels = next(iter(data.labeled_batches(files, 16)))
    assert images.shape == (4, 4, 5, 1) and images.dtype == "float32"
    assert labels.numpy().tolist() == [0, 0, 1, 1]
    assert 0.0 <= images.numpy().min() and images.numpy().max() <= 1.0


def test_corrupt_files_fail_with_their_name_or_are_skipped(tmp_path):
    root = _tree(tmp_path, {"train/dog/bad.jpg": _trees.truncated_jpeg(),
                            "train/cat/junk.png": b"not an image"})
    with pytest.raises(ValueError, match=r"2 corrupt or unreadable .*bad\.jpg"
                       r"|2 corrupt or unreadable .*junk\.png"):
        data.stream(root, "train", image_size=6)
    with pytest.warns(UserWarning, match="skipped 2 corrupt"):
        files = data.stream(root, "train", image_size=6, on_corrupt="skip")
    assert files.num_examples == 8
    assert sorted(p.rsplit("/", 1)[-1] for p in files.skipped) == [
        "bad.jpg", "junk.png"]
    batch = next(iter(data.view_pairs(files, AUGMENT, 8, seed=0)))
    assert np.isfinite(batch[0].numpy()).all()


def test_mixed_sizes_and_grey_files_become_one_shape(tmp_path):
    root = _tree(tmp_path, {
        "train/cat/big.png": _trees.image_bytes(
            _trees.pattern(1, size=(12, 9))),
        "train/dog/grey.png": _trees.image_bytes(
            _trees.pattern(2, size=(5, 5), channels=1)),
    })
    files = data.stream(root, "train", image_size=6)
    assert files.num_examples == 10
    images, _ = next(iter(data.labeled_batches(files, 10)))
    assert images.shape == (10, 6, 6, 3)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(image_size=None), ValueError, "`image_size` is required"),
    (dict(channels=2), ValueError, "`channels` must be 1 or 3"),
    (dict(split="val"), ValueError, "available splits are"),
    (dict(on_corrupt="ignore"), ValueError, "`on_corrupt`"),
])
def test_bad_requests(tmp_path, kwargs, error, message):
    arguments = dict(source=_tree(tmp_path), split="train", image_size=6)
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        data.stream(**arguments)


def test_only_folders_stream(tmp_path):
    archive = _trees.write_zip(tmp_path / "t.zip", _trees.class_tree())
    with pytest.raises(ValueError, match="Extract the ZIP"):
        data.stream(archive, image_size=6)
    with pytest.raises(ValueError, match="use keras_slim.data.load"):
        data.stream("digits", image_size=6)
    with pytest.raises(FileNotFoundError, match="no such file"):
        data.stream(str(tmp_path / "missing"), image_size=6)
