"""What LARS does to each variable, decided once when it is built.

From the variables' tags (`keras_slim.layers` tags each logical weight) and
shapes, never from their names: which variables share one trust ratio, which
are decayed, which are adapted.
"""

import dataclasses

from keras_slim.optimizers.parameter_groups import default_weight_group

# The `exclude_from_*` defaults of LARS configs saved before LARS stopped
# matching names. Kept only to recognize such configs (they load: the rule
# that replaced these patterns leaves out the same variables of keras_slim
# models); they are never matched against anything.
LEGACY_DEFAULT_PATTERNS = (
    r"(^|/)[^/]*(bias|beta|gamma)[^/]*$",
    r"(^|/)[^/]*(batch_?norm)[^/]*/",
    r"(^|/)([^/]*_)?bn\d*(_[^/]*)?/",
)
LEGACY_ARGUMENTS = ("exclude_from_adaptation", "exclude_from_weight_decay")


@dataclasses.dataclass(frozen=True)
class LarsPlan:
    """Per variable index: decayed, adapted, and the indices of its group."""

    use_decay: list
    use_adaptation: list
    trust_groups: list


def pop_legacy_arguments(kwargs):
    """Removes the old name-pattern arguments; refuses non-default ones.

    `None` and the old default patterns (what every `.keras` file saved with
    the defaults holds) are accepted: the variables they left out are those
    the type and shape rule leaves out. Anything else asked for a name
    match, which LARS no longer does.
    """
    for name in LEGACY_ARGUMENTS:
        value = kwargs.pop(name, None)
        if value is None or (isinstance(value, (list, tuple))
                             and tuple(value) == LEGACY_DEFAULT_PATTERNS):
            continue
        raise ValueError(
            f"LARS no longer takes `{name}` patterns of variable names (got "
            f"{name}={value!r}): it reads no names. Biases and normalization "
            "parameters are left out by layer type and shape (rank <= 1). "
            f"To leave out other variables, call `optimizer.{name}("
            "var_list=[...])` with the variables themselves before the "
            "first step; `keras_slim.optimizers.parameter_groups(model)` "
            "lists a model's groups. Remove the argument from the config "
            "to load it."
        )


def make_plan(variables, key, decay_on, decay_excluded, adapt_excluded):
    """The `LarsPlan` of `variables`.

    Args:
        variables: the optimizer's trainable variables, in build order.
        key: the optimizer's `_var_key`.
        decay_on: whether the weight decay is non-zero.
        decay_excluded, adapt_excluded: sets of keys the user excluded.
    """
    position = {key(v): i for i, v in enumerate(variables)}
    decay, adapt, groups = [], [], []
    for i, variable in enumerate(variables):
        weight = default_weight_group(variable)
        decay.append(decay_on and not weight.no_decay
                     and key(variable) not in decay_excluded)
        adapt.append(not weight.no_decay
                     and key(variable) not in adapt_excluded)
        members = tuple(
            position[key(v)] for v in weight.variables if key(v) in position
        )
        groups.append(members or (i,))
    plan = LarsPlan(decay, adapt, groups)
    for group in set(groups):
        _check_group_is_treated_alike(plan, group, variables)
    return plan


def _check_group_is_treated_alike(plan, group, variables):
    for flags, what, argname in (
        (plan.use_adaptation, "adapted", "exclude_from_adaptation"),
        (plan.use_decay, "decayed", "exclude_from_weight_decay"),
    ):
        if len({flags[i] for i in group}) > 1:
            paths = [variables[i].path for i in group]
            chosen = [p for i, p in zip(group, paths) if flags[i]]
            raise ValueError(
                f"LARS treats the variables {paths} as bands of one weight "
                f"(one trust ratio), but only {chosen} are {what}. Exclude "
                f"all of them or none: pass every band to `{argname}("
                "var_list=...)` (`parameter_groups(model).trust_groups` "
                "lists them), not single bands."
            )


def check_exclusion_call(method, var_names, built):
    """Raises when an `exclude_from_*` call asks for names or comes late."""
    if var_names:
        raise ValueError(
            f"LARS reads no variable names: `{method}(var_names=...)` is not "
            f"supported. Pass the variables, `{method}(var_list=[...])`; "
            "`keras_slim.optimizers.parameter_groups(model)` lists a model's "
            "groups and no-decay variables."
        )
    if built:
        raise ValueError(
            f"`{method}()` can only be called before the optimizer is built."
        )


def check_bool(value, argname):
    if not isinstance(value, bool):
        raise ValueError(
            f"`{argname}` must be a bool. Received: {argname}={value!r}"
        )
    return value


def check_number(value, argname, low, low_inclusive=True, high=None):
    """`value` as a float, or a clear error when it is out of bounds."""
    if isinstance(value, bool):
        raise ValueError(f"`{argname}` must be a number. Received: {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{argname}` must be a number. Received: {argname}={value!r}"
        ) from None
    too_low = value < low if low_inclusive else value <= low
    too_high = high is not None and value >= high
    if too_low or too_high or value != value:
        bounds = f"{'>=' if low_inclusive else '>'} {low}"
        if high is not None:
            bounds += f" and < {high}"
        raise ValueError(
            f"`{argname}` must be {bounds}. Received: {argname}={value!r}"
        )
    return value
