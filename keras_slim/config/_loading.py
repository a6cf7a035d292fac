"""Reading, validating and writing run configs (`keras_slim.config`'s API)."""

import collections.abc
import os

import yaml

from keras_slim.config._checks import widths_object
from keras_slim.config._overrides import apply_overrides
from keras_slim.config.config_error import ConfigError
from keras_slim.config.config_section import ConfigSection
from keras_slim.config.run_config import RunConfig

# `{key: Setting, section: {key: Setting}}`, derived from the dataclasses.
SCHEMA = RunConfig.schema()


def default_config():
    """Every key's default as a nested dict (the schema's defaults)."""
    return RunConfig.defaults()


def load_config(path=None, overrides=()):
    """Read a YAML config, apply `key=value` overrides, validate, fill defaults.

    Args:
        path: a YAML file, or None for the defaults alone.
        overrides: strings `"train.epochs=5"`; values are parsed as YAML
            (`5`, `0.1`, `true`, `[1.0, 0.5]`, `null`, text).

    Returns:
        The complete `RunConfig` (every key present).

    Raises:
        ConfigError: listing every problem with its key path.

    Example:

    ```python
    from keras_slim.config import load_config

    config = load_config(None, ["data.image_size=32", "train.epochs=5"])
    assert config.train.epochs == 5 and config.train.batch_size == 256
    assert config.to_dict()["train"]["epochs"] == 5
    ```
    """
    source = path or "the configuration"
    raw = {}
    if path is not None:
        raw = _read_yaml(path)
    problems = []
    apply_overrides(raw, overrides, problems)
    if problems:
        raise ConfigError(problems, source)
    return validate_config(raw, source)


def _read_yaml(path):
    if not os.path.isfile(path):
        hint = ""
        folder = os.path.dirname(path) or "."
        if os.path.isdir(folder):
            names = sorted(f for f in os.listdir(folder)
                           if f.endswith((".yaml", ".yml")))
            if names:
                hint = f" Configs in {folder}: {', '.join(names)}."
        raise ConfigError([("<file>", f"no such file: {path}.{hint}")], path)
    with open(path, encoding="utf-8") as f:
        try:
            raw = yaml.safe_load(f)
        except yaml.YAMLError as err:
            raise ConfigError([("<yaml>", f"not valid YAML: {err}")],
                              path) from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(
            [("<root>", f"expected a mapping of sections, got "
                        f"{type(raw).__name__}")], path)
    return raw


def validate_config(raw, source="the configuration"):
    """Check a mapping against the schema; the `RunConfig` it describes.

    `raw` is a YAML file's mapping (keys it omits get their defaults), or
    any mapping of sections, e.g. a `RunConfig` turned into a `dict`.

    Raises:
        ConfigError: listing every problem with its key path.
    """
    return RunConfig.from_dict(raw, source)


def as_run_config(config):
    """`config` itself if a `RunConfig`, else the mapping validated.

    What the functions that take a run config call first, so that scripts
    passing plain dicts (e.g. `dict(config, train=dict(config["train"],
    epochs=3))`) keep working.
    """
    if isinstance(config, RunConfig):
        return config
    if not isinstance(config, collections.abc.Mapping):
        raise TypeError(f"expected a RunConfig (keras_slim.config."
                        f"load_config) or a mapping, got "
                        f"{type(config).__name__}")
    return validate_config(config)


def widths_from_config(config):
    """The `Widths` of a config's `backbone.widths`."""
    return widths_object(as_run_config(config).backbone.widths)


def dump_config(config):
    """The YAML text of a config (a `RunConfig` or a dict; stable key order)."""
    if isinstance(config, ConfigSection):
        config = config.to_dict()
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
