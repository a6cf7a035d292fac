"""`MethodConfig`: the `method:` section of a run config."""

from keras_slim.config._checks import fraction
from keras_slim.config._setting import setting
from keras_slim.config.config_section import ConfigSection
from keras_slim.config.config_section import config_section
from keras_slim.methods import base_names
from keras_slim.methods import recipe_names

__all__ = ["MethodConfig"]


@config_section
class MethodConfig(ConfigSection):
    """The `method:` section: the recipe (from the recipe registry) and base.

    `options` is a plain dict (the config's own copy) of the recipe's other
    keyword arguments; the run config checks its keys against the recipe.

    Example:

    ```python
    from keras_slim.config import MethodConfig

    method = MethodConfig(name="us3l", base="byol")
    assert method.slow_start == 0.0 and method.options == {}
    ```
    """

    name: str = setting("slimclr", choices=list(recipe_names()))
    base: str | None = setting(None, doc="; ".join(
        f"{n}: {' | '.join(base_names(n))}" for n in recipe_names()))
    slow_start: float = setting(0.0, check=fraction, doc=(
        "SlimCLR: fraction of training on the full width only, then a "
        "learning-rate restart"))
    options: dict = setting({}, doc="other keyword arguments of the recipe")
