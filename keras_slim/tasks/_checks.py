"""Argument checks of the tasks."""


def int_at_least(name, value, low):
    """`value` as an int, or a ValueError naming `name`."""
    try:
        whole = not isinstance(value, bool) and int(value) == value
    except (TypeError, ValueError):
        whole = False
    if not whole or value < low:
        raise ValueError(f"`{name}` must be an int >= {low}, got {value!r}.")
    return int(value)


def check_head_matches(backbone, head, plan):
    """Raises when the head's input slice differs from the features' size."""
    for width in plan.all_widths():
        if backbone.feature_dim(width) != head.input_channels_at(width):
            raise ValueError(
                f"At width {width:g} the backbone's features have "
                f"{backbone.feature_dim(width)} channels but a slimmable "
                f"head slices {head.input_channels_at(width)}: this backbone's "
                f"channel rounding does not follow its width. Choose a "
                f"`grid_step` whose widths round alike, or a width list.")
