"""The recipe and base registries: what the config, the CLI and builders read.

A recipe class (a `SlimSSL` subclass) registers itself with
`@register_recipe`: its `recipe_name` becomes a choice of `method.name`. A
base class (an `SSLBase` subclass) registers itself with `@register_base`:
its `recipes` mapping names the recipes it serves, which makes it a choice of
`method.base` for them. The packages import every module they hold, so adding
a recipe or a base is one new file.
"""

_RECIPES = {}
_BASES = {}


def register_recipe(cls):
    """Class decorator: makes a recipe class a choice of `method.name`."""
    return _register(_RECIPES, cls.recipe_name, cls, "recipe")


def register_base(cls):
    """Class decorator: makes a base class a choice of `method.base`."""
    return _register(_BASES, cls.name, cls, "base")


def _register(table, name, cls, kind):
    if not name:
        raise ValueError(f"{cls.__name__} has no {kind} name to register.")
    if table.get(name, cls) is not cls:
        raise ValueError(
            f"Two {kind}s named {name!r}: {table[name].__name__} and "
            f"{cls.__name__}. Give the new one another name.")
    table[name] = cls
    return cls


def recipe_names():
    """The registered recipe names, in registration order."""
    return tuple(_RECIPES)


def recipe_class(name):
    """The recipe class registered as `name`."""
    if name not in _RECIPES:
        raise ValueError(
            f"Unknown recipe {name!r}; registered: {', '.join(_RECIPES)}.")
    return _RECIPES[name]


def base_names(recipe):
    """The bases of `recipe`: its default base first, then in registration
    order."""
    served = [n for n, cls in _BASES.items() if recipe in cls.recipes]
    default = recipe_class(recipe).default_base
    return tuple(sorted(served, key=lambda n: n != default))


def base_class(name, recipe):
    """The base class `name`, checked to serve `recipe` (a `ValueError`
    naming the recipe's bases otherwise)."""
    cls = _BASES.get(name)
    if cls is None or recipe not in cls.recipes:
        raise ValueError(
            f"{recipe_class(recipe).__name__} `base` must be one of "
            f"{list(base_names(recipe))}, got {name!r}.")
    return cls
