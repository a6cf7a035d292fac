"""One configuration key: kinds, default, choices, check and doc.

A key is declared once, as a field of its section's dataclass:

    epochs: int = setting(100, check=positive, doc="...")

Its kinds come from the field's type (`int | None` accepts an integer or
null), its default from `setting`'s first argument; the validator and the
`SCHEMA` read both from the field (`Setting.of_field`).
"""

import copy
import dataclasses
import types
import typing

_NONE = type(None)
_KIND_NAMES = {int: "an integer", float: "a number", str: "a string",
               bool: "true or false", list: "a list", dict: "a mapping",
               _NONE: "null"}


def setting(default, choices=None, check=None, doc=""):
    """A dataclass field that is one configuration key.

    Args:
        default: the value a config that omits the key gets (a list or a
            mapping is copied for every config).
        choices: the values allowed, or None for any value of the kinds.
        check: `check(value) -> message or None`, run on a non-null value
            of the right kind (e.g. `positive`).
        doc: what the key does (the section's generated Args and SCHEMA).
    """
    metadata = {"choices": choices, "check": check, "doc": doc}
    if isinstance(default, (list, dict)):
        return dataclasses.field(
            default_factory=lambda: copy.deepcopy(default), metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


class Setting:
    """A configuration key as the validator reads it (a `SCHEMA` value).

    Args:
        kind: a type (`int`, `float`, `str`, `bool`, `list`, `dict`) or a
            tuple of them; `type(None)` allows null.
        default: the value when the key is omitted.
        choices: the allowed values, or None.
        check: `check(value) -> message or None` for a non-null value.
        doc: what the key does.

    Example:

    ```python
    from keras_slim.config import SCHEMA

    epochs = SCHEMA["train"]["epochs"]
    assert (epochs.kind, epochs.default) == (int, 100)
    problems = []
    assert epochs.validate("ten", "train.epochs", problems) == "ten"
    assert problems == [("train.epochs",
                         "expected an integer, got 'ten' (str)")]
    ```
    """

    def __init__(self, kind, default, choices=None, check=None, doc=""):
        self.kind = kind
        self.kinds = kind if isinstance(kind, tuple) else (kind,)
        self.default = default
        self.choices = choices
        self.check = check
        self.doc = doc

    @classmethod
    def of_field(cls, field):
        """The `Setting` a dataclass field made by `setting` declares."""
        kinds = (typing.get_args(field.type)
                 if isinstance(field.type, types.UnionType) else field.type)
        if field.default_factory is not dataclasses.MISSING:
            default = field.default_factory()
        else:
            default = field.default
        return cls(kinds, default, **field.metadata)

    def kind_names(self):
        """`"an integer or null"`: the kinds in words."""
        return " or ".join(_KIND_NAMES[k] for k in self.kinds)

    def validate(self, value, path, problems):
        """`value` coerced to the kinds (a copy); problems appended."""
        value = _coerce(copy.deepcopy(value), self.kinds)
        if not _is_kind(value, self.kinds):
            problems.append((path, f"expected {self.kind_names()}, got "
                                   f"{value!r} ({type(value).__name__})"))
            return value
        if self.choices is not None and value not in self.choices:
            shown = ", ".join("null" if c is None else str(c)
                              for c in self.choices)
            problems.append((path, f"must be one of {shown}; got {value!r}"))
            return value
        if self.check is not None and value is not None:
            message = self.check(value)
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
        if kind is _NONE and value is None:
            return True
        if kind is int and isinstance(value, int) and not isinstance(
                value, bool):
            return True
        if kind in (float, str, list, dict, bool) and isinstance(value, kind):
            if kind is not float or not isinstance(value, bool):
                return True
    return False
