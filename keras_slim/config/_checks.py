"""The checks of configuration values, and the `Widths` of `backbone.widths`.

Each check takes a value of the key's kinds and returns a message saying
what is wrong, or None.
"""

from keras_slim.width import Widths


def positive(value):
    return None if value > 0 else "must be > 0"


def non_negative(value):
    return None if value >= 0 else "must be >= 0"


def fraction(value):
    return None if 0 <= value < 1 else "must be in [0, 1)"


def open_fraction(value):
    return None if 0 < value <= 1 else "must be in (0, 1]"


def crop_area_range(value):
    if (len(value) != 2 or not all(is_number(v) for v in value)
            or not 0 < value[0] <= value[1] <= 1):
        return f"expected [low, high] with 0 < low <= high <= 1, got {value}"
    return None


def fractions(value):
    bad = [v for v in value if not 0 < v <= 1]
    return f"every fraction must be in (0, 1], got {bad}" if bad else None


def image_side(value):
    if value is None:
        return None
    return None if value >= 4 else "must be >= 4 pixels (or null: keep)"


def check_widths(value):
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
        if any(not is_number(v) for v in value):
            return f"widths must be numbers, got {value}"
    else:
        return ("expected a list of widths such as [1.0, 0.5, 0.25] or a "
                "range such as {min: 0.25, max: 1.0}")
    try:
        widths_object(value)
    except ValueError as err:
        return str(err)
    return None


def widths_object(value):
    """The `Widths` of a config's `backbone.widths` (a list or a range)."""
    if isinstance(value, dict):
        kwargs = {"min_width": value["min"], "max_width": value["max"]}
        if "divisor" in value:
            kwargs["divisor"] = value["divisor"]
        if "stat_widths" in value:
            kwargs["stat_widths"] = value["stat_widths"]
        return Widths(**kwargs)
    return Widths(value)


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)
