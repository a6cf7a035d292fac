"""The bundled run configurations (`keras-slim pretrain --config NAME`)."""

import os

__all__ = ["bundled_config_names", "resolve_config_path"]

CONFIG_DIR = os.path.dirname(os.path.abspath(__file__))


def bundled_config_names():
    return sorted(
        name[: -len(".yaml")] for name in os.listdir(CONFIG_DIR)
        if name.endswith(".yaml")
    )


def resolve_config_path(name_or_path):
    """A config file path from a path or the name of a bundled config."""
    if os.path.isfile(name_or_path):
        return name_or_path
    candidate = os.path.join(CONFIG_DIR, f"{name_or_path}.yaml")
    if os.path.isfile(candidate):
        return candidate
    raise FileNotFoundError(
        f"no config file {name_or_path!r} and no bundled config of that "
        f"name. Bundled: {', '.join(bundled_config_names())}."
    )
