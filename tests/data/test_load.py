"""keras_slim.data.load: every source kind, every bad input, the cache."""

import gzip
import io
import os
import zipfile

import numpy as np
import pytest
from PIL import Image

from keras_slim.data import ImageData
from keras_slim.data import load
from keras_slim.data import loading
from tests.conftest import SHARED_DATA
from tests.data import _trees

FASHION = os.path.join(SHARED_DATA, "fashion-mnist")
CIFAR_ZIP = os.path.join(SHARED_DATA, "cifar10", "cifar10-jpeg.zip")


# ------------------------------------------------------------------ digits
def test_digits_split_is_fixed_stratified_and_disjoint():
    train = load("digits")
    test = load("digits", split="test")
    assert (train.num_examples, test.num_examples) == (1438, 359)
    assert train.image_shape == (8, 8, 1) and train.images.dtype == np.uint8
    assert train.images.max() == 255 and train.images.min() == 0
    assert train.class_names == [str(i) for i in range(10)]
    again = load("digits", split="test")
    np.testing.assert_array_equal(again.images, test.images)
    np.testing.assert_array_equal(again.labels, test.labels)
    # Stratified: each class puts round(20%) of its examples in "test".
    train_counts = np.bincount(train.labels, minlength=10)
    test_counts = np.bincount(test.labels, minlength=10)
    expected = np.rint(0.2 * (train_counts + test_counts))
    np.testing.assert_array_equal(test_counts, expected)
    # Disjoint: no test image occurs in train (digits has few duplicates,
    # so compare index sets through the raw data instead).
    from sklearn.datasets import load_digits

    from keras_slim.data import _digits

    split = _digits.split_indices(load_digits().target)
    assert not set(split["train"]) & set(split["test"])
    assert len(split["train"]) + len(split["test"]) == 1797


def test_digits_unknown_split_lists_available():
    with pytest.raises(ValueError, match=r"'valid'.*\['train', 'test'\]"):
        load("digits", split="valid")


def test_max_examples_is_a_seeded_subset_in_order():
    full = load("digits", split="test")
    part = load("digits", split="test", max_examples=50)
    assert part.num_examples == 50
    np.testing.assert_array_equal(
        part.images, load("digits", split="test", max_examples=50).images)
    # The subset keeps the source's order: it is a subsequence of `full`.
    rows = [np.flatnonzero((full.images == img).all(axis=(1, 2, 3)))[0]
            for img in part.images]
    assert rows == sorted(rows)
    assert len(set(part.labels)) >= 8  # random subset, not one class


# ------------------------------------------------------------- folder, zip
def test_folder_of_class_subfolders(tmp_path):
    files = _trees.class_tree()
    files["cat/readme.txt"] = b"not an image: ignored"
    files[".DS_Store"] = b"hidden: ignored"
    data = load(_trees.write_files(tmp_path, files))
    assert isinstance(data, ImageData)
    assert data.class_names == ["cat", "dog"]
    assert data.image_shape == (6, 5, 3)
    np.testing.assert_array_equal(data.labels, [0, 0, 0, 1, 1, 1])
    np.testing.assert_array_equal(data.images[:, 0, 0, 0],
                                  [0, 1, 2, 10, 11, 12])
    assert (data.images[:, 1:, 1:] == 40).all()  # PNG is lossless
    assert data.skipped == [] and data.split == "train"
    same = load(tmp_path)  # a path object works too
    np.testing.assert_array_equal(same.images, data.images)


def test_folder_split_subfolders_and_prefix(tmp_path):
    files = _trees.class_tree("train/")
    files.update(_trees.class_tree("test/", per_class=1))
    root = _trees.write_files(tmp_path, files)
    assert load(root).num_examples == 6
    test = load(f"folder:{root}", split="test")
    assert test.num_examples == 2 and test.name == f"folder:{root}"
    with pytest.raises(ValueError, match=r"'val'.*\['test', 'train'\]"):
        load(root, split="val")


def test_zip_with_splits_and_wrapper_folder(tmp_path):
    files = _trees.class_tree("data/train/")
    files.update(_trees.class_tree("data/test/", per_class=2))
    files["data/train/cat/notes.txt"] = b"ignored"
    path = _trees.write_zip(tmp_path / "set.zip", files)
    train = load(path)
    test = load(f"zip:{path}", split="test")
    assert (train.num_examples, test.num_examples) == (6, 4)
    assert test.class_names == ["cat", "dog"]
    np.testing.assert_array_equal(test.images[:, 0, 0, 0], [0, 1, 10, 11])
    np.testing.assert_array_equal(test.labels, [0, 0, 1, 1])


def test_zip_and_folder_of_the_same_tree_agree(tmp_path):
    files = _trees.class_tree(size=(4, 4))
    folder = load(_trees.write_files(tmp_path / "tree", files))
    archive = load(_trees.write_zip(tmp_path / "tree.zip", files))
    np.testing.assert_array_equal(folder.images, archive.images)
    np.testing.assert_array_equal(folder.labels, archive.labels)


def test_class_tree_serves_only_train(tmp_path):
    root = _trees.write_files(tmp_path, _trees.class_tree())
    with pytest.raises(ValueError, match=r"'test'.*class folders.*'train'"):
        load(root, split="test")


# --------------------------------------------------------------------- IDX
@pytest.mark.parametrize("gz", [True, False])
def test_idx_folder(tmp_path, gz):
    arrays = _trees.idx_folder(tmp_path, gz=gz)
    train = load(str(tmp_path))
    test = load(f"idx:{tmp_path}", split="test")
    np.testing.assert_array_equal(train.images[..., 0], arrays["train"][0])
    np.testing.assert_array_equal(train.labels, arrays["train"][1])
    np.testing.assert_array_equal(test.images[..., 0], arrays["t10k"][0])
    assert train.class_names == ["0", "1", "2"]
    assert test.image_shape == (5, 4, 1)


def test_idx_errors(tmp_path):
    _trees.idx_folder(tmp_path)
    with pytest.raises(ValueError, match=r"'valid'.*\['test', 'train'\]"):
        load(str(tmp_path), split="valid")
    # Truncated image file: the header promises more bytes than it holds.
    path = tmp_path / "train-images-idx3-ubyte.gz"
    with gzip.open(path, "rb") as f:
        data = f.read()
    with gzip.open(path, "wb") as f:
        f.write(data[:-7])
    with pytest.raises(ValueError, match="truncated.*Download it again"):
        load(str(tmp_path))
    # Images and labels of different lengths.
    _trees.write_idx(path, np.zeros((3, 5, 4), np.uint8))
    with pytest.raises(ValueError, match="3 images but .* 7 labels"):
        load(str(tmp_path))


@pytest.mark.skipif(not os.path.isdir(FASHION),
                    reason="../shared/data/fashion-mnist absent")
def test_fashion_mnist_idx_from_shared_data():
    data = load(FASHION, max_examples=500)
    assert data.num_examples == 500 and data.image_shape == (28, 28, 1)
    assert data.num_classes == 10
    with gzip.open(os.path.join(FASHION, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)
    with gzip.open(os.path.join(FASHION, "train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16)
    images = images.reshape(-1, 28, 28, 1)
    kept = loading._convert.subset_indices(60000, 500)
    np.testing.assert_array_equal(data.labels, labels[kept])
    np.testing.assert_array_equal(data.images, images[kept])
    assert len(np.unique(data.labels)) == 10
    test = load(FASHION, split="test", max_examples=100)
    assert test.num_examples == 100


@pytest.mark.skipif(not os.path.isfile(CIFAR_ZIP),
                    reason="../shared/data/cifar10 absent")
def test_cifar10_zip_from_shared_data():
    data = load(CIFAR_ZIP, split="test", max_examples=200)
    assert data.num_examples == 200 and data.image_shape == (32, 32, 3)
    assert data.class_names == ["airplane", "automobile", "bird", "cat",
                                "deer", "dog", "frog", "horse", "ship",
                                "truck"]
    assert len(np.unique(data.labels)) == 10
    # The first kept example decodes to the same pixels straight from the zip.
    first = loading._convert.subset_indices(10000, 200)[0]
    member = f"test/airplane/{first:04d}.jpg"
    assert data.labels[0] == 0
    with zipfile.ZipFile(CIFAR_ZIP) as archive:
        expected = np.asarray(Image.open(io.BytesIO(archive.read(member))))
    np.testing.assert_array_equal(data.images[0], expected)


# -------------------------------------------------------------------- TFDS
def test_tfds_source_through_mock_data():
    import tensorflow_datasets as tfds

    with tfds.testing.mock_data(num_examples=6):
        data = load("tfds:cifar10", image_size=8)
        plain = load("cifar10", max_examples=4)
    assert data.num_examples == 6 and data.image_shape == (8, 8, 3)
    assert len(data.class_names) == 10  # mock metadata has no names
    assert data.name == "tfds:cifar10"
    assert plain.num_examples == 4 and plain.image_shape == (32, 32, 3)


def test_tfds_without_network_says_how_to_use_a_local_copy(tmp_path,
                                                          monkeypatch):
    import tensorflow_datasets as tfds

    def offline(self, *args, **kwargs):
        raise ConnectionError("no network")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare",
                        offline)
    with pytest.raises(RuntimeError, match=r"(?s)not prepared.*no network.*"
                       r"data_dir=.*folder of IDX files"):
        load("tfds:mnist", data_dir=str(tmp_path))


# --------------------------------------------------------------- bad input
def test_missing_path(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(FileNotFoundError, match="nowhere: no such file"):
        load(missing)
    with pytest.raises(FileNotFoundError, match="no such file"):
        load(f"folder:{missing}")
    with pytest.raises(FileNotFoundError, match="no such file"):
        load("./nowhere.zip")


def test_unknown_source_kind_and_name(tmp_path):
    with pytest.raises(ValueError, match="Unknown source kind 'csv'.*"
                       "folder:PATH"):
        load("csv:/tmp/x.csv")
    with pytest.raises(ValueError, match="neither an existing path nor a "
                       "TFDS data set"):
        load("no_such_data_set_xyz")
    not_zip = tmp_path / "x.bin"
    not_zip.write_bytes(b"abc")
    with pytest.raises(ValueError, match="not a ZIP archive"):
        load(str(not_zip))
    with pytest.raises(ValueError, match="needs a folder"):
        load(f"idx:{not_zip}")
    with pytest.raises(TypeError, match="non-empty string"):
        load(3)


def test_empty_data_sets(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no image files"):
        load(str(empty))
    only_text = _trees.write_files(tmp_path / "text", {"a/x.txt": b"t"})
    with pytest.raises(ValueError, match="no image files"):
        load(only_text)
    flat = _trees.write_files(tmp_path / "flat", {
        "x.png": _trees.image_bytes(_trees.pattern(1))})
    with pytest.raises(ValueError, match="no class subfolders"):
        load(flat)


def test_corrupt_files_fail_or_skip(tmp_path):
    files = _trees.class_tree()
    files["dog/broken.jpg"] = _trees.truncated_jpeg()
    files["cat/fake.png"] = b"this is text with an image extension"
    root = _trees.write_files(tmp_path, files)
    with pytest.raises(ValueError, match=r"(?s)cat/fake\.png.*"
                       r"on_corrupt='skip'"):
        load(root)
    with pytest.warns(UserWarning, match="skipped 2 corrupt"):
        data = load(root, on_corrupt="skip")
    assert data.num_examples == 6
    assert sorted(os.path.basename(p) for p in data.skipped) == [
        "broken.jpg", "fake.png"]
    np.testing.assert_array_equal(data.labels, [0, 0, 0, 1, 1, 1])
    with pytest.raises(ValueError, match="on_corrupt"):
        load(root, on_corrupt="ignore")
    only_bad = _trees.write_files(tmp_path / "bad",
                                  {"a/x.jpg": _trees.truncated_jpeg()})
    with pytest.raises(ValueError, match="every image file is corrupt"):
        load(only_bad, on_corrupt="skip")


def test_mixed_sizes_need_image_size(tmp_path):
    files = _trees.class_tree(size=(6, 5))
    files["dog/big.png"] = _trees.image_bytes(_trees.pattern(0, (9, 7)))
    root = _trees.write_files(tmp_path, files)
    with pytest.raises(ValueError, match=r"(?s)6x5.*9x7.*image_size"):
        load(root)
    data = load(root, image_size=(4, 3))
    assert data.images.shape == (7, 4, 3, 3) and data.images.dtype == np.uint8
    square = load(root, image_size=8)
    assert square.image_shape == (8, 8, 3)
    with pytest.raises(ValueError, match="image_size"):
        load(root, image_size=(4, 0))


def test_grey_and_rgb_mix(tmp_path):
    files = {"a/0.png": _trees.image_bytes(_trees.pattern(7, channels=1)),
             "b/1.png": _trees.image_bytes(_trees.pattern(9, channels=3))}
    root = _trees.write_files(tmp_path, files)
    rgb = load(root)
    assert rgb.image_shape == (6, 5, 3)
    np.testing.assert_array_equal(rgb.images[0, 0, 0], [7, 7, 7])
    grey = load(root, channels=1)
    assert grey.image_shape == (6, 5, 1)
    assert grey.images[1, 0, 0, 0] == 9 and grey.images[0, 0, 0, 0] == 7
    grey_only = load(_trees.write_files(tmp_path / "g", {
        "a/0.png": _trees.image_bytes(_trees.pattern(3, channels=1))}))
    assert grey_only.image_shape == (6, 5, 1)
    assert load("digits", channels=3, max_examples=3).image_shape == (8, 8, 3)
    with pytest.raises(ValueError, match="channels"):
        load(root, channels=2)


def test_memory_budget_suggests_max_examples(tmp_path):
    root = _trees.write_files(tmp_path / "tree", _trees.class_tree())
    with pytest.raises(MemoryError, match=r"(?s)max_bytes.*keras_slim.data.stream.*"
                       r"max_examples=2"):
        load(root, max_bytes=200)
    assert load(root, max_bytes=200, max_examples=2).num_examples == 2
    _trees.idx_folder(tmp_path / "idx")
    with pytest.raises(MemoryError, match="max_examples"):
        load(str(tmp_path / "idx"), max_bytes=50)


# ------------------------------------------------------------------- cache
def test_cache_decodes_once_and_keys_on_options(tmp_path, monkeypatch):
    root = _trees.write_files(tmp_path / "tree", _trees.class_tree())
    cache = str(tmp_path / "cache")
    first = load(root, cache_dir=cache)
    assert len(os.listdir(cache)) == 3  # images, labels, index
    assert not [n for n in os.listdir(cache) if ".tmp" in n]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded again despite the cache")

    monkeypatch.setattr(loading._image_tree.TreeDecoder, "decode_all",
                        no_decoding)
    again = load(root, cache_dir=cache)
    np.testing.assert_array_equal(again.images, first.images)
    np.testing.assert_array_equal(again.labels, first.labels)
    assert again.class_names == first.class_names
    with pytest.raises(AssertionError, match="decoded again"):
        load(root, cache_dir=cache, image_size=4)  # other options: new key
