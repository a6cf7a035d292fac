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


class Field:
    """One configuration value: accepted kinds, default, optional check."""

    def __init__(self, kind, default, choices=None, check=None, doc=""):
        self.kind = kind
        self.default = default
        self.choices = choices
        self.check = check
        self.doc = doc


# ------------------------------------------------------------------ checks
def _positive(value):
    return None if value > 0 else "must be > 0"


def _non_negative(value):
    return None if value >= 0 else "must be >= 0"


def _fraction(value):
    return None if 0 <= value < 1 else "must be in [0, 1)"


def _open_fraction(value):
    return None if 0 < value <= 1 else "must be in (0, 1]"


def _fractions(value):
    bad = [v for v in value if not 0 < v <= 1]
    return f"every fraction must be in (0, 1], got {bad}" if bad else None


def _image_size(value):
    if value is None:
        return None
    return None if value >= 4 else "must be >= 4 pixels (or null: keep)"


def _check_widths(value):
    """A descending width list, or a range mapping {min, max[, ...]}."""
    if isinstance(value, dict):
        allowed = {"min", "max", "divisor", "stat_widths"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            return (f"unknown range keys {unknown}; a range takes "
                    f"{sorted(allowed)}")
        if "min" not in value or "max" not in value:
            return "a width range needs both `min` and `max`"
    elif isinstance(value, list):
        if not value:
            return "give at least one width"
        if any(not _is_number(v) for v in value):
            return f"widths must be numbers, got {value}"
    else:
        return ("expected a list of widths such as [1.0, 0.5, 0.25] or a "
                "range such as {min: 0.25, max: 1.0}")
    try:
        _widths_object(value)
    except ValueError as err:
        return str(err)
    return None


def _widths_object(value):
    from keras_slim.width import Widths

    if isinstance(value, dict):
        kwargs = {"min_width": value["min"], "max_width": value["max"]}
        if "divisor" in value:
            kwargs["divisor"] = value["divisor"]
        if "stat_widths" in value:
            kwargs["stat_widths"] = value["stat_widths"]
        return Widths(**kwargs)
    return Widths(value)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ------------------------------------------------------------------ schema
SCHEMA = {
    "name": Field(str, "run", doc="run name (the run directory's default)"),
    "seed": Field(int, 0, check=_non_negative),
    "output_dir": Field((str, type(None)), None,
                        doc="run directory (default: runs/<name>)"),
    "data": {
        "source": Field(str, "digits", doc=(
            "digits | a TFDS name (cifar10, ...) | a folder of class "
            "subfolders | a .zip of one | a folder of IDX files")),
        "data_dir": Field((str, type(None)), None),
        "train_split": Field(str, "train"),
        "test_split": Field(str, "test"),
        "image_size": Field((int, type(None)), None, check=_image_size,
                            doc="square side the images are resized to"),
        "channels": Field((int, type(None)), None, choices=[None, 1, 3]),
        "max_examples": Field((int, type(None)), None, doc=(
            "use a seeded subset of this many training images")),
        "max_test_examples": Field((int, type(None)), None, doc=(
            "use a seeded subset of this many test images")),
        "on_corrupt": Field(str, "fail", choices=["fail", "skip"]),
        "cache_dir": Field((str, type(None)), None),
        "stream": Field(bool, False, doc=(
            "leave the training images on disk and decode them batch by "
            "batch (a folder source too large for memory, e.g. ImageNet); "
            "needs data.image_size")),
    },
    "augmentation": {
        "preset": Field(str, "mocov2",
                        choices=["simclr", "mocov2", "byol", "small", "cifar"]),
        "crop_size": Field((int, type(None)), None, check=_image_size,
                           doc="view side (default: data.image_size)"),
        "options": Field(dict, {}, doc="overrides of the preset's fields"),
    },
    "backbone": {
        "name": Field(str, "resnet", choices=["resnet", "mobilenet_v2"]),
        "depth": Field(int, 18, choices=[18, 34, 50, 101, 152]),
        "stem": Field(str, "cifar", choices=["cifar", "imagenet"]),
        "base_width": Field(int, 64, check=_positive),
        "widths": Field((list, dict), [1.0, 0.75, 0.5, 0.25],
                        check=_check_widths),
        "synchronized": Field(bool, False),
        "zero_init_residual": Field(bool, False, doc=(
            "resnet: start each block's last BN gamma at 0 (official "
            "SlimCLR s_resnet.py does)")),
        "padding": Field(str, "same", choices=["same", "symmetric"], doc=(
            "resnet: 'symmetric' pads like PyTorch (converted checkpoints)")),
        "input_normalization": Field((dict, type(None)), None, doc=(
            "resnet: {mean: [...], std: [...]} applied inside the network")),
    },
    "method": {
        "name": Field(str, "slimclr", choices=["slimclr", "us3l", "dspnet"]),
        "base": Field((str, type(None)), None, doc=(
            "slimclr: mocov2 | mocov3 | simclr; us3l: simclr | byol | simsiam")),
        "slow_start": Field(float, 0.0, check=_fraction, doc=(
            "SlimCLR: fraction of training on the full width only, then a "
            "learning-rate restart")),
        "options": Field(dict, {}, doc="other keyword arguments of the recipe"),
    },
    "train": {
        "epochs": Field(int, 100, check=_positive),
        "batch_size": Field(int, 256, check=_positive),
        "optimizer": Field(str, "sgd", choices=[
            "sgd", "sgd_decoupled", "lars", "adamw", "lamb"], doc=(
            "sgd: torch.optim.SGD's coupled L2 decay (the official code); "
            "sgd_decoupled: Keras' SGD (decay outside the momentum)")),
        "learning_rate": Field(float, 0.06, check=_positive),
        "momentum": Field(float, 0.9, check=_fraction),
        "weight_decay": Field(float, 5e-4, check=_non_negative),
        "warmup_epochs": Field(float, 0.0, check=_non_negative),
        "final_learning_rate": Field(float, 0.0, check=_non_negative),
        "slow_start_schedule": Field(str, "official", choices=[
            "official", "restart"], doc=(
            "official: one cosine over the run whose scale becomes "
            "restart_learning_rate at slim start (SlimCLR's main_ssl.py); "
            "restart: a second warm cosine from restart_learning_rate")),
        "learning_rate_per": Field(str, "auto", choices=[
            "auto", "batch", "epoch"], doc=(
            "when the rate changes: auto follows the recipe's official code "
            "(us3l: epoch, workers/ssl.py adjust_learning_rate; slimclr and "
            "dspnet: batch)")),
        "restart_learning_rate": Field((float, type(None)), None, doc=(
            "official: the cosine's scale after slim start (default 1e-4, "
            "the official --slim_start_lr default); restart: the restart's "
            "peak (default learning_rate)")),
        "jit_compile": Field(bool, False),
        "mixed_precision": Field((str, type(None)), None,
                                 choices=[None, "mixed_float16",
                                          "mixed_bfloat16"]),
        "strategy": Field(str, "default",
                          choices=["default", "mirrored", "multi_worker"]),
        "checkpoint_every_steps": Field(int, 0, check=_non_negative, doc=(
            "also back up mid-epoch every N steps (0: at epoch ends)")),
        "verbose": Field(int, 1, choices=[0, 1, 2], doc=(
            "1: compact per-width progress; 2: Keras' line per epoch with "
            "every metric; 0: silent")),
    },
    "evaluation": {
        "knn_every_epochs": Field(int, 0, check=_non_negative,
                                  doc="kNN monitor period (0: off)"),
        "knn_k": Field(int, 200, check=_positive),
        "knn_temperature": Field(float, 0.1, check=_positive),
        "max_train_examples": Field((int, type(None)), None, doc=(
            "cap on the labelled training images used by kNN and probes")),
        "linear_epochs": Field(int, 100, check=_positive),
        "linear_learning_rate": Field(float, 0.01, check=_positive),
        "paper_learning_rate": Field(float, 60.0, check=_positive, doc=(
            "SGD rate of the 'paper' linear protocol (MoCo v2 script: 60; "
            "x0.1 at 60% and 80% of evaluation.linear_epochs)")),
        "joint_probe": Field(bool, False),
        "random_baseline": Field(bool, True),
        "require_beating_baseline": Field(bool, False, doc=(
            "fail the run (exit status 3) if a width's pretrained kNN or "
            "linear accuracy does not beat the random-init baseline")),
        "semi_supervised": Field(list, [], check=_fractions, doc=(
            "label fractions for semi-supervised fine-tuning, e.g. [0.01, 0.1]")),
        "semi_supervised_epochs": Field(int, 30, check=_positive),
        "calibration_batches": Field(int, 20, check=_positive, doc=(
            "BN calibration batches per width (width ranges only)")),
        "eval_widths": Field((list, type(None)), None, doc=(
            "widths to evaluate (default: the list, or the range's "
            "stat_widths)")),
    },
}

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
    if method["name"] in _METHOD_BASES and isinstance(method["options"], dict):
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


_METHOD_BASES = {
    # None: the recipe's default base (the first listed).
    "slimclr": (None, "mocov2", "mocov3", "simclr"),
    "us3l": (None, "simclr", "byol", "simsiam"),
    "dspnet": (None, "mocov2"),
}


def _check_cross_fields(config, problems):
    method = config["method"]
    name = method["name"]
    if method["base"] not in _METHOD_BASES[name]:
        allowed = [b for b in _METHOD_BASES[name] if b]
        problems.append(("method.base", f"{name} takes base "
                                        f"{' | '.join(allowed)}; got "
                                        f"{method['base']!r}"))
    widths = config["backbone"]["widths"]
    is_range = isinstance(widths, dict)
    if name == "us3l" and not is_range:
        problems.append(("backbone.widths", "us3l trains a width range: use "
                                            "{min: 0.25, max: 1.0}"))
    if name in ("slimclr", "dspnet") and is_range:
        problems.append(("backbone.widths", f"{name} trains a width list, "
                                            f"e.g. [1.0, 0.5, 0.25]"))
    if method["slow_start"] and name == "us3l":
        problems.append(("method.slow_start", "us3l has its own dynamic "
                                              "sampling phases; set 0"))
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


# Keys the pretraining run sets itself from other config values.
_RUN_OWNED_OPTIONS = {"backbone", "base", "seed", "slow_start_steps",
                      "total_steps", "momentum_total_steps", "steps_per_epoch"}


def _check_method_options(name, options, problems):
    from keras_slim import methods

    cls = {"slimclr": methods.SlimCLR, "us3l": methods.US3L,
           "dspnet": methods.DSPNet}[name]
    accepted = _constructor_arguments(cls)
    for key in options:
        path = f"method.options.{key}"
        if key in _RUN_OWNED_OPTIONS:
            problems.append((path, "is set by the run from the config "
                                   "(method.base / method.slow_start / "
                                   "train.epochs / seed); remove it"))
        elif key not in accepted:
            close = difflib.get_close_matches(key, sorted(accepted), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            problems.append((path, f"{cls.__name__} has no argument "
                                   f"{key!r}{hint}"))


def _check_augmentation_options(options, problems):
    from keras_slim.data import TwoViewAugmentation

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
    widths = _widths_object(config["backbone"]["widths"])
    for width in requested:
        try:
            widths.validate(width)
        except (ValueError, TypeError) as err:
            problems.append(("evaluation.eval_widths", str(err)))


def widths_from_config(config):
    """The `Widths` object of a validated config."""
    return _widths_object(config["backbone"]["widths"])


def dump_config(config):
    """The YAML text of a config (stable key order)."""
    return yaml.safe_dump(config, sort_keys=False, default_flow_style=None)
