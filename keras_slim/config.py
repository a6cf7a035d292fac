"""Run configurations: one YAML file plus `key=value` overrides, checked up front.

A configuration is a nested mapping with a fixed schema (`SCHEMA` below). Every
key has a type and a default, so a YAML file only lists what it changes.
`load_config` reports *every* problem at once (unknown keys, wrong types,
values out of range), each with its key path, before anything expensive runs:

```
keras_slim.config.ConfigError: 3 problems in configs/typo.yaml:
  train.epochs: expected an integer, got 'ten' (str)
  train.optimiser: unknown key; did you mean 'optimizer'?
  backbone.widths: widths must run largest first, e.g. [1.0, 0.5, 0.25]
```
"""

import copy
import difflib
import inspect
import os

import yaml

from keras_slim import methods
from keras_slim.data import TwoViewAugmentation
from keras_slim._config_schema import SCHEMA
from keras_slim._config_schema import widths_object

__all__ = [
    "ConfigError",
    "SCHEMA",
    "default_config",
    "load_config",
    "parse_override",
    "validate_config",
    "dump_config",
    "widths_from_config",
]


class ConfigError(ValueError):
    """A configuration has problems; `problems` lists them as (path, message)."""

    def __init__(self, problems, source="the configuration"):
        self.problems = list(problems)
        lines = [f"  {path}: {message}" for path, message in self.problems]
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} {noun} in {source}:\n" + "\n".join(lines))


def default_config():
    """The schema's defaults as a nested dict."""
    return _defaults(SCHEMA)


def _defaults(schema):
    return {
        key: _defaults(value) if isinstance(value, dict)
        else copy.deepcopy(value.default)
        for key, value in schema.items()
    }


# ------------------------------------------------------------------ loading
def load_config(path=None, overrides=()):
    """Read a YAML config, apply `key=value` overrides, validate, fill defaults.

    Args:
        path: a YAML file, or None for the defaults alone.
        overrides: strings `"train.epochs=5"`; values are parsed as YAML
            (`5`, `0.1`, `true`, `[1.0, 0.5]`, `null`, text).

    Returns:
        The complete configuration (every key present).

    Raises:
        ConfigError: listing every problem with its key path.
    """
    source = path or "the configuration"
    raw = {}
    if path is not None:
        raw = _read_yaml(path)
    problems = []
    for text in overrides:
        try:
            key_path, value = parse_override(text)
        except ValueError as err:
            problems.append(("<override>", str(err)))
            continue
        _set_path(raw, key_path, value, problems)
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


def parse_override(text):
    """`"train.epochs=5"` -> (("train", "epochs"), 5)."""
    if "=" not in text:
        raise ValueError(
            f"override {text!r} is not key=value (e.g. train.epochs=5)"
        )
    key, value = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ValueError(f"override {text!r} has an empty key")
    try:
        parsed = yaml.safe_load(value) if value.strip() else ""
    except yaml.YAMLError:
        parsed = value
    return tuple(key.split(".")), parsed


def _set_path(raw, key_path, value, problems):
    node = raw
    for depth, key in enumerate(key_path[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            problems.append((".".join(key_path[: depth + 1]),
                             "is a value, not a section"))
            return
        node = child
    node[key_path[-1]] = value


# --------------------------------------------------------------- validation
def validate_config(raw, source="the configuration"):
    """Check `raw` against the schema; return it completed with defaults."""
    problems = []
    config = _validate_section(raw, SCHEMA, "", problems)
    method = config["method"]
    if (method["name"] in methods.recipe_names()
            and isinstance(method["options"], dict)):
        _check_method_options(method["name"], method["options"], problems)
    if isinstance(config["augmentation"]["options"], dict):
        _check_augmentation_options(config["augmentation"]["options"],
                                    problems)
    if not problems:
        _check_cross_fields(config, problems)
    if problems:
        raise ConfigError(problems, source)
    return config


def _validate_section(raw, schema, prefix, problems):
    if not isinstance(raw, dict):
        problems.append((prefix.rstrip(".") or "<root>",
                         f"expected a section (mapping), got "
                         f"{type(raw).__name__} {raw!r}"))
        raw = {}
    result = {}
    for key in raw:
        if key not in schema:
            problems.append((prefix + str(key), _unknown_key(key, schema)))
    for key, spec in schema.items():
        path = prefix + key
        if isinstance(spec, dict):
            result[key] = _validate_section(raw.get(key, {}) or {}, spec,
                                            path + ".", problems)
        elif key in raw:
            result[key] = _validate_value(raw[key], spec, path, problems)
        else:
            result[key] = copy.deepcopy(spec.default)
    return result


def _unknown_key(key, schema):
    close = difflib.get_close_matches(str(key), list(schema), n=1)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; known keys here: {', '.join(schema)}"


def _validate_value(value, field, path, problems):
    kinds = field.kind if isinstance(field.kind, tuple) else (field.kind,)
    value = _coerce(value, kinds)
    if not _is_kind(value, kinds):
        problems.append((path, f"expected {_kind_names(kinds)}, got "
                               f"{value!r} ({type(value).__name__})"))
        return value
    if field.choices is not None and value not in field.choices:
        shown = ", ".join("null" if c is None else str(c)
                          for c in field.choices)
        problems.append((path, f"must be one of {shown}; got {value!r}"))
        return value
    if field.check is not None and value is not None:
        message = field.check(value)
        if message:
            problems.append((path, message))
    return value


def _numbers_in_options(options):
    """YAML 1.1 reads `5e-5` (no dot) as text: make such option values floats."""
    result = {}
    for key, value in options.items():
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                pass
        result[key] = value
    return result


def _coerce(value, kinds):
    # YAML reads `1` as an int where a float is meant, and `1e-4` (no dot)
    # as a string: accept both for float fields.
    if dict in kinds and isinstance(value, dict):
        return _numbers_in_options(value)
    if float in kinds and not isinstance(value, bool):
        if isinstance(value, int):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return value
    return value


def _is_kind(value, kinds):
    for kind in kinds:
        if kind is type(None) and value is None:
            return True
        if kind is int and isinstance(value, int) and not isinstance(
                value, bool):
            return True
        if kind in (float, str, list, dict, bool) and isinstance(value, kind):
            if kind is not float or not isinstance(value, bool):
                return True
    return False


def _kind_names(kinds):
    names = {int: "an integer", float: "a number", str: "a string",
             bool: "true or false", list: "a list", dict: "a mapping",
             type(None): "null"}
    return " or ".join(names[k] for k in kinds)


def _check_cross_fields(config, problems):
    method = config["method"]
    name = method["name"]
    allowed = methods.base_names(name)
    if method["base"] not in (None,) + allowed:  # None: the default base
        problems.append(("method.base", f"{name} takes base "
                                        f"{' | '.join(allowed)}; got "
                                        f"{method['base']!r}"))
    problems.extend(methods.recipe_class(name).config_problems(config))
    if method["slow_start"] and config["train"]["learning_rate_per"] == "epoch":
        problems.append(("train.learning_rate_per", "the slow-start "
                         "schedules change the rate per batch; use auto or "
                         "batch with method.slow_start"))
    _check_eval_widths(config, problems)
    if config["data"]["stream"] and config["data"]["image_size"] is None:
        problems.append(("data.image_size", "data.stream needs the size "
                         "the streamed images are decoded to, e.g. 256"))
    crop = config["augmentation"]["crop_size"]
    if crop is None and config["data"]["image_size"] is None:
        problems.append(("augmentation.crop_size",
                         "set augmentation.crop_size or data.image_size "
                         "(the side of the training views)"))


def _run_owned_options():
    """Keys a pretraining run sets itself from other config values (those of
    every recipe: the message is the same whichever recipe is asked for)."""
    owned = set()
    for name in methods.recipe_names():
        owned.update(methods.recipe_class(name).run_owned_options)
    return owned


def _check_method_options(name, options, problems):
    cls = methods.recipe_class(name)
    accepted = set(cls.options())
    owned = _run_owned_options()
    for key in options:
        path = f"method.options.{key}"
        if key in owned:
            problems.append((path, "is set by the run from the config "
                                   "(method.base / method.slow_start / "
                                   "train.epochs / seed); remove it"))
        elif key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append((path, f"{cls.__name__} has no argument "
                                   f"{key!r}{hint}"))


def _check_augmentation_options(options, problems):
    accepted = _constructor_arguments(TwoViewAugmentation) - {"image_size"}
    for key in options:
        if key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = (f"did you mean {close[0]!r}?" if close else
                    f"known: {', '.join(sorted(accepted))}")
            problems.append((f"augmentation.options.{key}",
                             f"not an augmentation setting; {hint}"))


def _constructor_arguments(cls):
    accepted = set()
    for klass in cls.__mro__:
        if klass.__module__.startswith("keras_slim"):
            params = inspect.signature(klass.__init__).parameters
            accepted |= {p for p in params if p not in ("self", "kwargs")}
    return accepted


def _check_eval_widths(config, problems):
    requested = config["evaluation"]["eval_widths"]
    if requested is None:
        return
    widths = widths_object(config["backbone"]["widths"])
    for width in requested:
        try:
            widths.validate(width)
        except (ValueError, TypeError) as err:
            problems.append(("evaluation.eval_widths", str(err)))


def widths_from_config(config):
    """The `Widths` object of a validated config."""
    return widths_object(config["backbone"]["widths"])


def dump_config(config):
    """The YAML text of a config (stable key order)."""
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
