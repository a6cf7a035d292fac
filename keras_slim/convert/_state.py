"""A checkpoint's state dict, read key by key with shape checks."""

import numpy as np

from keras_slim.convert.torch_checkpoint import TorchTensor
from keras_slim.convert.torch_checkpoint import read_torch_checkpoint


class ConversionError(ValueError):
    """A checkpoint does not have the layout a converter expects."""


class StateDict:
    """The tensors of a checkpoint under one key prefix.

    Args:
        tensors: dict of key -> `TorchTensor` (or array).
        path: the file they come from (for messages).
        prefix: keys are looked up as `prefix + key`.
    """

    def __init__(self, tensors, path, prefix=""):
        self.tensors = tensors
        self.path = path
        self.prefix = prefix

    def scope(self, prefix):
        """The same tensors under `self.prefix + prefix`."""
        return StateDict(self.tensors, self.path, self.prefix + prefix)

    def has(self, key):
        return self.prefix + key in self.tensors

    def keys(self):
        """Keys under the prefix, without it."""
        n = len(self.prefix)
        return [k[n:] for k in self.tensors if k.startswith(self.prefix)]

    def shape(self, key):
        return tuple(self._tensor(key).shape)

    def array(self, key, shape=None):
        """The tensor `key` as float32 numpy, checked against `shape`."""
        value = np.asarray(self._tensor(key), dtype=np.float32)
        if shape is not None and tuple(value.shape) != tuple(shape):
            raise ConversionError(
                f"{self.path}: '{self.prefix}{key}' has shape "
                f"{tuple(value.shape)}, the Keras model needs {tuple(shape)}. "
                f"The checkpoint is of another architecture or width list "
                f"than the one inferred."
            )
        return value

    def _tensor(self, key):
        full = self.prefix + key
        if full not in self.tensors:
            raise ConversionError(
                f"{self.path} has no tensor '{full}': it is not a complete "
                f"checkpoint of the expected layout (truncated, or of another "
                f"architecture)."
            )
        return self.tensors[full]


def read_state_dict(path):
    """The state dict of a training checkpoint, the `module.` prefix removed.

    Accepts `{"state_dict": {...}, ...}` (the official training scripts),
    `{"model": {...}}`, or a bare state dict.
    """
    checkpoint = read_torch_checkpoint(path)
    if not isinstance(checkpoint, dict):
        raise ConversionError(
            f"{path} holds a {type(checkpoint).__name__}, not a checkpoint "
            f"dict with a 'state_dict'."
        )
    state = checkpoint
    for key in ("state_dict", "model"):
        if isinstance(checkpoint.get(key), dict):
            state = checkpoint[key]
            break
    tensors = {k: v for k, v in state.items() if isinstance(v, TorchTensor)}
    if not tensors:
        raise ConversionError(
            f"{path} holds no tensors under 'state_dict' (keys: "
            f"{sorted(map(str, checkpoint))[:8]}): not a model checkpoint."
        )
    if all(k.startswith("module.") for k in tensors):
        tensors = {k[len("module."):]: v for k, v in tensors.items()}
    meta = {k: v for k, v in checkpoint.items()
            if isinstance(v, (int, float, str)) and not isinstance(v, bool)}
    return StateDict(tensors, path), meta


def assign_conv(layer, state, key):
    """An OIHW PyTorch kernel into a SlimConv2D's HWIO kernel."""
    kernel = layer.kernel
    h, w, i, o = kernel.shape
    value = state.array(key, (o, i, h, w))
    layer.assign_weight("kernel", value.transpose(2, 3, 1, 0))


def assign_dense(layer, state, key, bias=True):
    """A PyTorch Linear (`weight` [out, in], `bias`) into a SlimDense."""
    kernel = layer.kernel
    value = state.array(f"{key}.weight", (kernel.shape[1], kernel.shape[0]))
    layer.assign_weight("kernel", value.T)
    if not bias:
        return
    if state.has(f"{key}.bias") != layer.use_bias:
        raise ConversionError(
            f"{state.path}: '{state.prefix}{key}' "
            f"{'has' if state.has(f'{key}.bias') else 'has no'} bias, the "
            f"Keras layer '{layer.name}' "
            f"{'has one' if layer.use_bias else 'has none'}."
        )
    if layer.use_bias:
        layer.assign_weight("bias", state.array(f"{key}.bias",
                                                (kernel.shape[1],)))


def assign_batch_norm(norm, state, key, bias_before=None):
    """One PyTorch BatchNorm into a `keras.layers.BatchNormalization`.

    `bias_before`: the bias of a linear layer feeding this BN that the Keras
    model does not have; inference folds it into the moving mean (training
    BN removes it anyway).
    """
    channels = norm.moving_mean.shape[0]
    mean = state.array(f"{key}.running_mean", (channels,))
    if bias_before is not None:
        mean = mean - bias_before
    norm.moving_mean.assign(mean)
    norm.moving_variance.assign(state.array(f"{key}.running_var", (channels,)))
    if norm.scale:
        norm.gamma.assign(state.array(f"{key}.weight", (channels,)))
    if norm.center:
        norm.beta.assign(state.array(f"{key}.bias", (channels,)))
