"""`ConfigSection`: the base of a run config's frozen sections."""

import collections.abc
import copy
import dataclasses
import difflib
import functools
import re
import textwrap

from keras_slim.config._overrides import apply_overrides
from keras_slim.config._overrides import set_path
from keras_slim.config._setting import Setting
from keras_slim.config.config_error import ConfigError

__all__ = ["ConfigSection", "config_section"]

_EXAMPLE = re.compile(r"^[ \t]*Examples?:[ \t]*$", re.M)


def config_section(cls):
    """Make a `ConfigSection` subclass a frozen dataclass (a class decorator).

    Its fields are its keys (made with `setting`) and its nested sections
    (a `ConfigSection` subclass as the type, e.g.
    `train: TrainConfig = dataclasses.field(default_factory=TrainConfig)`).
    The class docstring gains an `Args:` section listing every key with
    its kinds, default, choices and doc, read from the fields.
    """
    cls = dataclasses.dataclass(frozen=True, eq=False)(cls)
    cls.__setattr__ = _refuse_assignment
    cls.__delattr__ = _refuse_assignment
    cls.__doc__ = _with_args(cls.__doc__ or "", _members(cls))
    return cls


class ConfigSection(collections.abc.Mapping):
    """The base of a run config's sections (and of `RunConfig`).

    A subclass declares its keys once, as dataclass fields made with
    `setting` (type, default, choices, check, doc); from them alone it
    gets its validation, its `SCHEMA` entry (`schema()`), its defaults and
    its docs. An instance is frozen and always valid: building one checks
    every key (`ConfigError` lists every problem with its key path).
    Assigning a key raises an error; `replace` and `with_overrides` make a
    changed copy, validated again.

    Read-only mapping access (`config["train"]["batch_size"]`, `dict(...)`,
    `keys()`, `items()`) is kept for scripts written against the plain
    dicts of earlier versions; new code reads attributes
    (`config.train.batch_size`). A section compares equal to another one,
    or to a mapping, with the same keys and values (`to_dict()`).
    Mapping-valued keys (`method.options`, `augmentation.options`,
    `backbone.input_normalization`, a width range) and list-valued ones
    stay plain dicts and lists, each config holding its own copy: do not
    change them in place, make a copy with `replace`.

    Example:

    ```python
    import dataclasses

    import pytest

    from keras_slim.config import ConfigError
    from keras_slim.config import ConfigSection
    from keras_slim.config import config_section
    from keras_slim.config import setting

    @config_section
    class ProbeConfig(ConfigSection):
        \"\"\"A made-up section: one edit per key.\"\"\"

        epochs: int = setting(10, check=lambda v: None if v > 0 else
                              "must be > 0", doc="probe epochs")
        optimizer: str = setting("sgd", choices=["sgd", "adamw"])

    probe = ProbeConfig(epochs=5)
    assert probe.epochs == 5 and probe["optimizer"] == "sgd"
    assert probe.replace(epochs=3) == {"epochs": 3, "optimizer": "sgd"}
    with pytest.raises(dataclasses.FrozenInstanceError, match="replace"):
        probe.epochs = 3
    with pytest.raises(ConfigError, match="epochs: must be > 0"):
        probe.with_overrides(["epochs=0"])
    assert "epochs: an integer, default 10" in ProbeConfig.__doc__
    ```
    """

    # ------------------------------------------------------------- schema
    @classmethod
    def schema(cls):
        """`{key: Setting, section: {...}}`: what the validator reads."""
        return {key: member.schema() if _is_section(member) else member
                for key, member in _members(cls).items()}

    @classmethod
    def defaults(cls):
        """Every key's default as a nested dict (not checked together)."""
        return {key: member.defaults() if _is_section(member)
                else copy.deepcopy(member.default)
                for key, member in _members(cls).items()}

    # --------------------------------------------------------- validation
    @classmethod
    def from_dict(cls, raw, source="the configuration"):
        """A mapping (e.g. a YAML file's) validated, defaults filled in.

        Raises:
            ConfigError: listing every problem with its key path.
        """
        problems = []
        values = cls._parse(raw, "", problems)
        problems.extend(cls._value_problems(values))
        if problems:
            raise ConfigError(problems, source)
        try:
            return cls._build(values)
        except ConfigError as error:  # a rule across sections
            raise ConfigError(error.problems, source) from None

    @classmethod
    def _parse(cls, raw, prefix, problems):
        """The checked values of `raw` (a nested dict, defaults filled)."""
        if not isinstance(raw, collections.abc.Mapping):
            problems.append((prefix.rstrip(".") or "<root>",
                             f"expected a section (mapping), got "
                             f"{type(raw).__name__} {raw!r}"))
            raw = {}
        members = _members(cls)
        for key in raw:
            if key not in members:
                problems.append((prefix + str(key), _unknown_key(key, members)))
        values = {}
        for key, member in members.items():
            path = prefix + key
            if _is_section(member):
                values[key] = member._parse(raw.get(key, {}) or {},
                                            path + ".", problems)
            elif key in raw:
                values[key] = member.validate(raw[key], path, problems)
            else:
                values[key] = copy.deepcopy(member.default)
        return values

    @classmethod
    def _build(cls, values):
        members = _members(cls)
        return cls(**{key: members[key]._build(value)
                      if _is_section(members[key]) else value
                      for key, value in values.items()})

    @classmethod
    def _value_problems(cls, values):
        """Problems of checked values that no single key sees (a hook)."""
        return []

    def _problems(self):
        """Problems across keys of a section whose keys are each valid."""
        return []

    def __post_init__(self):
        problems = []
        for key, member in _members(type(self)).items():
            value = getattr(self, key)
            if not _is_section(member):
                object.__setattr__(self, key,
                                   member.validate(value, key, problems))
            elif not isinstance(value, member):
                problems.append((key, f"expected a {member.__name__}, got "
                                      f"{type(value).__name__}"))
        if not problems:
            problems.extend(self._problems())
        if problems:
            raise ConfigError(problems, f"this {type(self).__name__}")

    # -------------------------------------------------------------- copies
    def to_dict(self):
        """The plain nested dict (what a run directory's config.yaml holds)."""
        return {key: value.to_dict() if isinstance(value, ConfigSection)
                else copy.deepcopy(value) for key, value in self.items()}

    def replace(self, **changes):
        """A copy with `changes` at their key paths, validated again.

        Args:
            **changes: `key=value`; a nested key by its dotted path
                (`**{"train.epochs": 3}`); a section's key takes a mapping
                of the keys it changes (`train={"epochs": 3}`).

        Raises:
            ConfigError: listing every problem of the changed config.

        Example:

        ```python
        from keras_slim.config import load_config

        config = load_config(None, ["data.image_size=16"])
        longer = config.replace(seed=1, **{"train.epochs": 3})
        assert (longer.seed, longer.train.epochs) == (1, 3)
        assert longer.replace(train={"epochs": 5}).train.batch_size == 256
        assert config.train.epochs == 100  # unchanged
        ```
        """
        raw = self.to_dict()
        problems = []
        for path, value in _flat_changes(type(self), changes):
            set_path(raw, tuple(path.split(".")), value, problems)
        if problems:
            raise ConfigError(problems, "the changes")
        return type(self).from_dict(raw)

    def with_overrides(self, overrides):
        """A copy with `key=value` overrides (the command line's), validated.

        Args:
            overrides: strings such as `"train.epochs=3"`; values are read
                as YAML (`3`, `0.1`, `true`, `[1.0, 0.5]`, `null`, text).

        Example:

        ```python
        from keras_slim.config import load_config

        config = load_config(None, ["data.image_size=16"])
        short = config.with_overrides(["train.epochs=3",
                                       "backbone.widths=[1.0, 0.5]"])
        assert short.train.epochs == 3
        assert short.backbone.widths == [1.0, 0.5]
        ```
        """
        raw = self.to_dict()
        problems = []
        apply_overrides(raw, overrides, problems)
        if problems:
            raise ConfigError(problems, "the overrides")
        return type(self).from_dict(raw)

    # ---------------------------------------------- read-only mapping view
    def __getitem__(self, key):
        members = _members(type(self))
        if key not in members:
            raise KeyError(f"{key!r}: {_unknown_key(key, members)}")
        return getattr(self, key)

    def __iter__(self):
        return iter(_members(type(self)))

    def __len__(self):
        return len(_members(type(self)))

    def __setitem__(self, key, value):
        raise TypeError(_read_only_message(self, key))

    def __delitem__(self, key):
        raise TypeError(_read_only_message(self, key))

    def __eq__(self, other):
        if not isinstance(other, collections.abc.Mapping):
            return NotImplemented
        return self.to_dict() == _plain(other)


@functools.cache
def _members(cls):
    """`{key: Setting, or a nested section's class}` in declaration order."""
    members = {}
    for field in dataclasses.fields(cls):
        if isinstance(field.type, type) and issubclass(field.type,
                                                       ConfigSection):
            members[field.name] = field.type
        else:
            members[field.name] = Setting.of_field(field)
    return members


def _is_section(member):
    return isinstance(member, type) and issubclass(member, ConfigSection)


def _unknown_key(key, members):
    close = difflib.get_close_matches(str(key), list(members), n=1)
    if close:
        return f"unknown key; did you mean {close[0]!r}?"
    return f"unknown key; known keys here: {', '.join(members)}"


def _flat_changes(cls, changes, prefix=""):
    """`(dotted path, value)` of `replace`'s changes, section maps spread."""
    for key, value in changes.items():
        member = cls
        for part in key.split("."):
            member = _members(member).get(part) if _is_section(member) else None
        if _is_section(member) and isinstance(value, collections.abc.Mapping):
            yield from _flat_changes(member, value, f"{prefix}{key}.")
        else:
            yield prefix + key, value


def _plain(mapping):
    return {key: _plain(value) if isinstance(value, collections.abc.Mapping)
            else value for key, value in mapping.items()}


def _refuse_assignment(self, name, *value):
    raise dataclasses.FrozenInstanceError(_read_only_message(self, name))


def _read_only_message(section, key):
    return (f"{type(section).__name__} is frozen: {key!r} cannot be set. "
            f"Make a changed copy, validated again: "
            f"config.replace(**{{'train.epochs': 3}}) or "
            f"config.with_overrides(['train.epochs=3'])")


def _with_args(doc, members):
    """`doc` with an `Args:` section of every key, before its Example."""
    lines = ["Args:"]
    for key, member in members.items():
        if _is_section(member):
            summary = (member.__doc__ or "").strip().splitlines()[0]
            text = f"{key}: {member.__name__}. {summary}"
        else:
            text = f"{key}: {member.kind_names()}, default " \
                   f"{_shown(member.default)}"
            if member.choices is not None:
                text += ", one of " + " | ".join(map(_shown, member.choices))
            text += f"; {member.doc}." if member.doc else "."
        lines += textwrap.wrap(text, 72, initial_indent="    ",
                               subsequent_indent="        ")
    block = "\n".join("    " + line for line in lines) + "\n\n"
    match = _EXAMPLE.search(doc)
    if match is None:
        return doc.rstrip() + "\n\n" + block
    return doc[:match.start()] + block + doc[match.start():]


def _shown(value):
    """A value as YAML writes a scalar (null, true), else its repr."""
    if value is None or isinstance(value, bool):
        return {None: "null", True: "true", False: "false"}[value]
    return repr(value)
