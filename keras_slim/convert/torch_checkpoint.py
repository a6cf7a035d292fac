"""Reads PyTorch checkpoint files safely, without PyTorch.

A `.pth` / `.pth.tar` file written by `torch.save` (PyTorch >= 1.6) is a ZIP
archive: `<name>/data.pkl` is a pickle of the saved object, and each tensor's
bytes lie in a record `<name>/data/<key>`. Unpickling runs whatever the pickle
names: a plain `pickle.load` of a downloaded checkpoint can execute any code
(`os.system`, `eval`, ...). This reader unpickles with an allow-list: the
tensor rebuild functions, typed storages, and plain containers. Any other
object (a function, a class, an `argparse.Namespace`) is refused by name,
before anything is called, with `UnsafeCheckpointError`.

Tensors come back as `TorchTensor`: shape and dtype at once, bytes read from
the archive only when `numpy()` (or `np.asarray`) asks for them, so reading a
checkpoint's model weights does not load its optimizer state.
"""

import collections
import io
import os
import pickle
import zipfile

import numpy as np

__all__ = ["TorchTensor", "UnsafeCheckpointError", "CheckpointFormatError",
           "read_torch_checkpoint"]

# numpy dtype of each typed storage PyTorch pickles (torch.<Name>Storage).
_STORAGE_DTYPES = {
    "FloatStorage": "float32",
    "DoubleStorage": "float64",
    "HalfStorage": "float16",
    "BFloat16Storage": "bfloat16",
    "LongStorage": "int64",
    "IntStorage": "int32",
    "ShortStorage": "int16",
    "CharStorage": "int8",
    "ByteStorage": "uint8",
    "BoolStorage": "bool",
}


class UnsafeCheckpointError(pickle.UnpicklingError):
    """A checkpoint's pickle names an object outside the allow-list."""


class CheckpointFormatError(ValueError):
    """A file is not a readable PyTorch checkpoint (wrong format, truncated)."""


class TorchTensor:
    """A tensor of a PyTorch checkpoint: shape and dtype now, values on demand.

    Args:
        storage: the `_Storage` holding the bytes.
        offset: element offset of the tensor in its storage.
        shape: tuple of ints.
        strides: element strides, one per axis.
    """

    def __init__(self, storage, offset, shape, strides):
        self.storage = storage
        self.offset = int(offset)
        self.shape = tuple(int(d) for d in shape)
        self.strides = tuple(int(s) for s in strides)

    @property
    def dtype(self):
        return self.storage.dtype_name

    @property
    def size(self):
        return int(np.prod(self.shape, dtype=np.int64))

    def numpy(self):
        """The values as a new C-contiguous numpy array (bfloat16 as float32)."""
        flat = self.storage.values()
        if self.size == 0:
            return np.zeros(self.shape, flat.dtype)
        last = self.offset + sum(
            (d - 1) * s for d, s in zip(self.shape, self.strides)
        )
        if self.offset < 0 or last >= flat.size:
            raise CheckpointFormatError(
                f"Tensor of shape {self.shape} reads past the end of its "
                f"storage record {self.storage.record!r} in "
                f"{self.storage.path}: the file is damaged."
            )
        view = np.lib.stride_tricks.as_strided(
            flat[self.offset:],
            shape=self.shape,
            strides=tuple(s * flat.itemsize for s in self.strides),
            writeable=False,
        )
        return np.array(view, order="C")  # a copy; keeps 0-d tensors 0-d

    def __array__(self, dtype=None, copy=None):
        values = self.numpy()
        return values if dtype is None else values.astype(dtype)

    def __repr__(self):
        return f"TorchTensor(shape={self.shape}, dtype={self.dtype})"


class _Storage:
    """One storage record of the archive, read once when first needed."""

    def __init__(self, archive, path, record, dtype_name, numel):
        self.archive = archive
        self.path = path
        self.record = record
        self.dtype_name = dtype_name
        self.numel = int(numel)
        self._values = None

    def values(self):
        if self._values is None:
            try:
                raw = self.archive.read(self.record)
            except KeyError:
                raise CheckpointFormatError(
                    f"{self.path} has no record {self.record!r} for a tensor "
                    f"it names: the file is truncated or damaged."
                ) from None
            except (zipfile.BadZipFile, OSError, EOFError) as err:
                raise CheckpointFormatError(
                    f"Cannot read record {self.record!r} of {self.path} "
                    f"({err}): the file is truncated or damaged. Download "
                    f"it again."
                ) from None
            self._values = _decode(raw, self.dtype_name, self.numel, self)
        return self._values


def _decode(raw, dtype_name, numel, storage):
    if dtype_name == "bfloat16":
        expected = 2 * numel
        if len(raw) < expected:
            raise _short_record(storage, len(raw), expected)
        bits = np.frombuffer(raw[:expected], "<u2").astype(np.uint32) << 16
        return bits.view(np.float32)
    dtype = np.dtype(dtype_name).newbyteorder("<")
    expected = dtype.itemsize * numel
    if len(raw) < expected:
        raise _short_record(storage, len(raw), expected)
    return np.frombuffer(raw[:expected], dtype).astype(dtype.newbyteorder("="))


def _short_record(storage, got, expected):
    return CheckpointFormatError(
        f"Record {storage.record!r} of {storage.path} holds {got} bytes, the "
        f"tensor needs {expected}: the file is truncated or damaged."
    )


def _rebuild_tensor(storage, offset, shape, strides, *unused):
    # torch._utils._rebuild_tensor_v2(storage, storage_offset, size, stride,
    # requires_grad, backward_hooks[, metadata]); only the layout matters.
    if not isinstance(storage, _Storage):
        raise UnsafeCheckpointError(
            "A tensor in the checkpoint is not backed by a storage record."
        )
    return TorchTensor(storage, offset, shape, strides)


def _rebuild_parameter(data, requires_grad=None, backward_hooks=None, *unused):
    return data


def _numpy_scalar(dtype, data=None):
    if not isinstance(dtype, np.dtype) or dtype.hasobject:
        raise UnsafeCheckpointError(
            f"A numpy scalar of dtype {dtype!r} is not a plain number."
        )
    return np.frombuffer(data, dtype)[0] if data is not None else dtype.type()


def _numpy_dtype(name, align=False, copy=False):
    dtype = np.dtype(name)
    if dtype.hasobject:
        raise UnsafeCheckpointError(f"numpy dtype {name!r} holds objects.")
    return dtype


def _latin1_bytes(text, encoding="latin1"):
    # Protocol-2 pickles spell bytes as codecs.encode(str, "latin1").
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafeCheckpointError(
            "_codecs.encode is allowed only to spell bytes (latin1)."
        )
    return text.encode("latin1")


class _StorageType:
    """Stands for `torch.<Name>Storage` inside a persistent id."""

    def __init__(self, name):
        self.dtype_name = _STORAGE_DTYPES[name]


_ALLOWED = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("numpy.core.multiarray", "scalar"): _numpy_scalar,
    ("numpy._core.multiarray", "scalar"): _numpy_scalar,
    ("numpy", "dtype"): _numpy_dtype,
    ("_codecs", "encode"): _latin1_bytes,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
}


class _RestrictedUnpickler(pickle.Unpickler):
    def __init__(self, data, archive, prefix, path):
        super().__init__(io.BytesIO(data))
        self.archive = archive
        self.prefix = prefix
        self.path = path
        self.storages = {}

    def find_class(self, module, name):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        allowed = _ALLOWED.get((module, name))
        if allowed is None:
            raise UnsafeCheckpointError(
                f"Refused to load {self.path}: its pickle asks for "
                f"'{module}.{name}', which is not a tensor, a storage or a "
                f"plain container. Loading it with a plain unpickler (or "
                f"torch.load(weights_only=False)) would call that object and "
                f"could run code from the file. Nothing was run. If you trust "
                f"the file, re-save just its tensors in PyTorch: "
                f"torch.save({{'state_dict': ckpt['state_dict']}}, path)."
            )
        return allowed

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5
                and pid[0] == "storage" and isinstance(pid[1], _StorageType)):
            raise UnsafeCheckpointError(
                f"Refused to load {self.path}: unknown persistent object "
                f"{pid[0] if isinstance(pid, tuple) and pid else pid!r} (only "
                f"tensor storages are allowed)."
            )
        _, kind, key, _location, numel = pid[:5]
        key = str(key)
        if key not in self.storages:
            self.storages[key] = _Storage(
                self.archive, self.path, f"{self.prefix}data/{key}",
                kind.dtype_name, numel,
            )
        return self.storages[key]


def read_torch_checkpoint(path):
    """Reads a `torch.save` file without PyTorch and without running its code.

    Args:
        path: path of a `.pth` / `.pth.tar` / `.pt` file written by PyTorch
            >= 1.6 (the ZIP format).

    Returns:
        The saved object: dicts, lists, tuples, numbers and strings as they
        were, each tensor as a `TorchTensor` (`np.asarray(t)` reads it).

    Raises:
        UnsafeCheckpointError: the pickle names anything but tensors,
            storages and plain containers; nothing from it was called.
        CheckpointFormatError: not a PyTorch ZIP checkpoint, or truncated.
        FileNotFoundError: no such file.

    Example:

    ```python
    import os
    import tempfile

    import numpy as np
    from keras_slim.convert import read_torch_checkpoint
    from keras_slim.convert import write_torch_checkpoint

    path = os.path.join(tempfile.mkdtemp(), "slimclr-mocov2-ep200.pth.tar")
    write_torch_checkpoint({"state_dict": {
        "module.encoder_q.conv1.weight": np.ones((4, 3, 7, 7), "float32")}}, path)
    checkpoint = read_torch_checkpoint(path)
    tensor = checkpoint["state_dict"]["module.encoder_q.conv1.weight"]
    assert tensor.shape == (4, 3, 7, 7)  # known before any value is read
    kernel = np.asarray(tensor)
    ```
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file at {path}.")
    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile:
        raise CheckpointFormatError(_not_zip_message(path)) from None
    pickles = [n for n in archive.namelist()
               if n.endswith("data.pkl") and n.count("/") <= 1]
    if len(pickles) != 1:
        raise CheckpointFormatError(
            f"{path} is a ZIP archive but not a PyTorch checkpoint: expected "
            f"one '<name>/data.pkl' record, found {len(pickles)}."
        )
    prefix = pickles[0][: -len("data.pkl")]
    _check_byte_order(archive, prefix, path)
    try:
        data = archive.read(pickles[0])
    except (zipfile.BadZipFile, OSError, EOFError) as err:
        raise CheckpointFormatError(
            f"Cannot read {pickles[0]} of {path} ({err}): the file is "
            f"truncated or damaged."
        ) from None
    unpickler = _RestrictedUnpickler(data, archive, prefix, path)
    try:
        return unpickler.load()
    except UnsafeCheckpointError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError,
            AttributeError, IndexError, KeyError) as err:
        raise CheckpointFormatError(
            f"Cannot unpickle {path} ({type(err).__name__}: {err}): the file "
            f"is damaged or not a PyTorch checkpoint."
        ) from None


def _check_byte_order(archive, prefix, path):
    name = f"{prefix}byteorder"
    if name in archive.namelist():
        order = archive.read(name).decode("ascii", "replace").strip()
        if order != "little":
            raise CheckpointFormatError(
                f"{path} stores tensors as {order}-endian; only little-endian "
                f"checkpoints (every x86 and ARM machine) are supported."
            )


def _not_zip_message(path):
    with open(path, "rb") as f:
        head = f.read(2)
    if head[:1] == b"\x80":
        return (
            f"{path} is a legacy (PyTorch < 1.6) pickle checkpoint, which "
            f"keeps tensors inside the pickle stream. Re-save it in the "
            f"current format with PyTorch >= 1.6 (torch.save(torch.load(p, "
            f"weights_only=True), p2)), then convert that file."
        )
    return (
        f"{path} is not a PyTorch checkpoint (not a ZIP archive): the file is "
        f"truncated, damaged, or of another kind. Download it again."
    )
