"""Pretrained weights from PyTorch checkpoints, read safely without torch.

* `load_slimclr(path)` / `load_slimclr_lincls(path)`: the official SlimCLR
  ResNet checkpoints (MoCo v2, MoCo v3, SimCLR; linear evaluation).
* `load_us3l(path)`: US3L checkpoints (torchvision names, one shared BN);
  `us3l_state_dict(backbone)` names a backbone's weights the official way.
* `read_torch_checkpoint(path)`: any `torch.save` file, through an allow-list
  unpickler that refuses code (`UnsafeCheckpointError`);
  `write_torch_checkpoint(obj, path)` writes numpy arrays as one.
* `PRESETS`, `load_preset(name)`: the released SlimCLR checkpoints, fetched
  from their official URL, hash-checked, converted once and cached.
"""

from keras_slim.convert._slimclr_layout import slimclr_state_dict
from keras_slim.convert._state import ConversionError
from keras_slim.convert._us3l_layout import us3l_state_dict
from keras_slim.convert.presets import PRESETS
from keras_slim.convert.presets import PresetError
from keras_slim.convert.presets import load_classifiers
from keras_slim.convert.presets import load_preset
from keras_slim.convert.presets import preset_checkpoint
from keras_slim.convert.presets import save_classifiers
from keras_slim.convert.slimclr import IMAGENET_NORMALIZATION
from keras_slim.convert.slimclr import inspect_slimclr
from keras_slim.convert.slimclr import load_slimclr
from keras_slim.convert.slimclr import load_slimclr_lincls
from keras_slim.convert.torch_checkpoint import CheckpointFormatError
from keras_slim.convert.torch_checkpoint import TorchTensor
from keras_slim.convert.torch_checkpoint import UnsafeCheckpointError
from keras_slim.convert.torch_checkpoint import read_torch_checkpoint
from keras_slim.convert.torch_writer import write_torch_checkpoint
from keras_slim.convert.us3l import CIFAR_NORMALIZATION
from keras_slim.convert.us3l import inspect_us3l
from keras_slim.convert.us3l import load_us3l

__all__ = [
    "CIFAR_NORMALIZATION",
    "CheckpointFormatError",
    "ConversionError",
    "IMAGENET_NORMALIZATION",
    "PRESETS",
    "PresetError",
    "TorchTensor",
    "UnsafeCheckpointError",
    "inspect_slimclr",
    "inspect_us3l",
    "load_classifiers",
    "load_preset",
    "load_slimclr",
    "load_slimclr_lincls",
    "load_us3l",
    "preset_checkpoint",
    "read_torch_checkpoint",
    "save_classifiers",
    "slimclr_state_dict",
    "us3l_state_dict",
    "write_torch_checkpoint",
]
