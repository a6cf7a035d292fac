"""write_torch_checkpoint: torch.save's layout, read back exactly."""

import pickletools
import zipfile

import numpy as np
import pytest

from keras_slim.convert import read_torch_checkpoint
from keras_slim.convert import write_torch_checkpoint
from tests.convert._fixtures import fixture


def _arrays(obj):
    if isinstance(obj, dict):
        return {k: _arrays(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(_arrays(v) for v in obj)
    if hasattr(obj, "numpy"):
        return obj.numpy()
    return obj


def test_a_real_checkpoint_written_back_reads_the_same(tmp_path):
    source = _arrays(read_torch_checkpoint(
        fixture("slimclr_lincls_tiny.pth.tar")))
    path = tmp_path / "copy.pth.tar"
    write_torch_checkpoint(source, path)
    copy = read_torch_checkpoint(path)
    assert set(copy) == set(source)
    assert copy["epoch"] == source["epoch"]
    state = copy["state_dict"]
    assert list(state) == list(source["state_dict"])
    for key, value in source["state_dict"].items():
        assert state[key].dtype == value.dtype, key
        np.testing.assert_array_equal(np.asarray(state[key]), value)


def test_views_scalars_and_dtypes_keep_shape_and_values(tmp_path):
    grid = np.arange(24, dtype="float32").reshape(2, 3, 4)
    values = {"strided": grid[:, ::2], "transposed": grid.T,
              "scalar": np.float64(2.5), "count": np.array([7], np.int64),
              "mask": np.array([True, False]), "half": grid.astype("float16"),
              "bytes": np.arange(3, dtype="uint8")}
    path = tmp_path / "values.pth"
    write_torch_checkpoint({"state_dict": values, "meta": [1, ("a", 2.0)]},
                           path)
    back = read_torch_checkpoint(path)
    assert back["meta"] == [1, ("a", 2.0)]
    for key, value in values.items():
        read = np.asarray(back["state_dict"][key])
        assert read.shape == np.shape(value) and read.dtype == value.dtype
        np.testing.assert_array_equal(read, value)


def test_tensors_are_pickled_as_torch_save_pickles_them(tmp_path):
    path = tmp_path / "one.pth"
    write_torch_checkpoint({"w": np.ones((2, 3), "float32")}, path)
    with zipfile.ZipFile(path) as archive:
        names = archive.namelist()
        ops = list(pickletools.genops(archive.read("archive/data.pkl")))
        raw = archive.read("archive/data/0")
    assert {"archive/data.pkl", "archive/data/0", "archive/version",
            "archive/byteorder"} <= set(names)
    assert ops[0][0].name == "PROTO" and ops[0][1] == 2
    globals_ = [arg for op, arg, _ in ops if op.name == "GLOBAL"]
    assert globals_ == ["torch._utils _rebuild_tensor_v2",
                        "torch FloatStorage", "collections OrderedDict"]
    assert np.frombuffer(raw, "<f4").tolist() == [1.0] * 6


def test_a_dtype_torch_files_do_not_hold_is_refused(tmp_path):
    with pytest.raises(TypeError, match="complex128"):
        write_torch_checkpoint({"z": np.zeros(2, "complex128")},
                               tmp_path / "z.pth")
    assert not (tmp_path / "z.pth").exists()
