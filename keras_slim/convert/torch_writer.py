"""Writes numpy arrays as a PyTorch checkpoint file, without PyTorch.

The inverse of `read_torch_checkpoint`, in the layout `torch.save` uses
since PyTorch 1.6: a ZIP archive whose `archive/data.pkl` pickles the object
(protocol 2) with each tensor as `torch._utils._rebuild_tensor_v2(storage,
offset, shape, strides, False, OrderedDict())`, the storage a persistent id
`("storage", torch.<Type>Storage, key, "cpu", numel)` whose little-endian
bytes lie in `archive/data/<key>`. With `slimclr_state_dict` it writes a
keras_slim model back as an official SlimCLR file; the tests and the
docstring examples make their checkpoints with it.
"""

import collections
import io
import os
import pickle
import zipfile

import numpy as np

from keras_slim.io import atomic_path

__all__ = ["write_torch_checkpoint"]

# torch.<Name>Storage of each numpy dtype written (bfloat16 has no numpy
# dtype; it is read, never written).
_STORAGE_NAMES = {
    "float32": "FloatStorage",
    "float64": "DoubleStorage",
    "float16": "HalfStorage",
    "int64": "LongStorage",
    "int32": "IntStorage",
    "int16": "ShortStorage",
    "int8": "CharStorage",
    "uint8": "ByteStorage",
    "bool": "BoolStorage",
}


class _Global:
    """A module-level name of PyTorch, pickled by name (PyTorch is absent)."""

    def __init__(self, module, name):
        self.module = module
        self.name = name

    def __call__(self, *args):
        # Callable only because pickle's reduce protocol requires it.
        raise TypeError(f"{self.module}.{self.name} is PyTorch's; only its "
                        f"name is written.")


_REBUILD_TENSOR = _Global("torch._utils", "_rebuild_tensor_v2")


class _Storage:
    """One tensor's bytes: pickled as a persistent id, kept for the archive."""

    def __init__(self, key, array):
        self.key = key
        self.array = array


class _Pickler(pickle._Pickler):  # the Python pickler: its dispatch is a dict
    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, file):
        super().__init__(file, protocol=2)
        self.storages = []

    def save_torch_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[_Global] = save_torch_global

    def reducer_override(self, obj):
        if isinstance(obj, np.generic):
            obj = np.asarray(obj)
        if not isinstance(obj, np.ndarray):
            return NotImplemented
        # C order (ascontiguousarray would turn a 0-d array into 1-d).
        array = obj if obj.flags.c_contiguous else np.array(obj, order="C")
        storage = _Storage(str(len(self.storages)), array)
        self.storages.append(storage)
        strides = tuple(s // array.itemsize for s in array.strides)
        return (_REBUILD_TENSOR, (storage, 0, array.shape, strides, False,
                                  collections.OrderedDict()))

    def persistent_id(self, obj):
        if not isinstance(obj, _Storage):
            return None
        dtype = obj.array.dtype.name
        return ("storage", _Global("torch", _STORAGE_NAMES[dtype]), obj.key,
                "cpu", obj.array.size)


def write_torch_checkpoint(obj, path):
    """Writes `obj` as a PyTorch checkpoint, numpy arrays as tensors.

    `read_torch_checkpoint` reads the file back (tensors as `TorchTensor`).

    Args:
        obj: dicts, lists, tuples, numbers, strings and numpy arrays (e.g.
            `{"state_dict": slimclr_state_dict(model), "epoch": 200}`).
        path: the file to write (atomically).

    Raises:
        TypeError: an array of a dtype PyTorch files do not hold.

    Example:

    ```python
    import os
    import tempfile

    import numpy as np
    from keras_slim.convert import read_torch_checkpoint
    from keras_slim.convert import write_torch_checkpoint

    path = os.path.join(tempfile.mkdtemp(), "weights.pth.tar")
    write_torch_checkpoint({"state_dict": {"w": np.eye(2, dtype="float32")},
                            "epoch": 3}, path)
    checkpoint = read_torch_checkpoint(path)
    assert checkpoint["epoch"] == 3
    assert np.asarray(checkpoint["state_dict"]["w"]).tolist() == [[1, 0],
                                                                  [0, 1]]
    ```
    """
    stream = io.BytesIO()
    pickler = _Pickler(stream)
    _check_dtypes(obj)
    pickler.dump(obj)
    with atomic_path(os.fspath(path)) as tmp:
        with zipfile.ZipFile(tmp, "w") as archive:
            archive.writestr("archive/data.pkl", stream.getvalue())
            archive.writestr("archive/byteorder", "little")
            for storage in pickler.storages:
                archive.writestr(f"archive/data/{storage.key}",
                                 storage.array.astype(
                                     storage.array.dtype.newbyteorder("<"))
                                 .tobytes())
            archive.writestr("archive/version", "3\n")


def _check_dtypes(obj):
    if isinstance(obj, dict):
        for value in obj.values():
            _check_dtypes(value)
    elif isinstance(obj, (list, tuple)):
        for value in obj:
            _check_dtypes(value)
    elif isinstance(obj, (np.ndarray, np.generic)):
        if np.asarray(obj).dtype.name not in _STORAGE_NAMES:
            raise TypeError(
                f"Cannot write an array of dtype {np.asarray(obj).dtype} as a "
                f"PyTorch tensor; use one of {sorted(_STORAGE_NAMES)}.")
