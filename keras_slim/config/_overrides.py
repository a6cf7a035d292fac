"""`key=value` overrides: parsed as YAML, set at their key path."""

import yaml


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


def parsed_overrides(overrides, problems):
    """`(key path, value)` of each `key=value` of `overrides` (or of one
    string); one that does not parse goes to `problems` instead."""
    if isinstance(overrides, str):
        overrides = [overrides]
    for text in overrides:
        try:
            yield parse_override(text)
        except ValueError as err:
            problems.append(("<override>", str(err)))


def apply_overrides(raw, overrides, problems):
    """Set each `key=value` of `overrides` (or of one string) in `raw`."""
    for key_path, value in parsed_overrides(overrides, problems):
        set_path(raw, key_path, value, problems)


def set_path(raw, key_path, value, problems):
    """`raw[a][b]... = value`, making the sections on the way."""
    node = raw
    for depth, key in enumerate(key_path[:-1]):
        child = node.setdefault(key, {})
        if not isinstance(child, dict):
            problems.append((".".join(key_path[: depth + 1]),
                             "is a value, not a section"))
            return
        node = child
    node[key_path[-1]] = value
