"""The self-supervised bases the recipes share: one module each (a base class
decorated with `register_base`), every module here imported, hence
registered, so that a new base is one new file."""

import importlib
import pkgutil

from keras_slim.methods.bases._base import Contrast
from keras_slim.methods.bases._base import SSLBase

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = ["Contrast", "SSLBase"]
