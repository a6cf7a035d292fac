"""Slimmable self-supervised recipes: one `model.fit`, every width trained.

Every public module here is imported, so that each recipe registers itself
(`register_recipe`) and a new recipe is one new file; the bases they share
live in `keras_slim.methods.bases`.
"""

import importlib
import pkgutil

from keras_slim.methods import bases
from keras_slim.methods._registry import base_class
from keras_slim.methods._registry import base_names
from keras_slim.methods._registry import recipe_class
from keras_slim.methods._registry import recipe_names
from keras_slim.methods._registry import register_base
from keras_slim.methods._registry import register_recipe
from keras_slim.methods.slim_ssl import SlimSSL

for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_") and _module.name != "bases":
        importlib.import_module(f"{__name__}.{_module.name}")
for _name in recipe_names():
    globals()[recipe_class(_name).__name__] = recipe_class(_name)

__all__ = sorted(
    [recipe_class(n).__name__ for n in recipe_names()]
    + ["SlimSSL", "base_class", "base_names", "bases", "recipe_class",
       "recipe_names", "register_base", "register_recipe"]
)
