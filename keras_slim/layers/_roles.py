"""What optimizers must know of a layer's weights, published by the layer.

Each keras_slim layer lists its logical weights with `weight_groups()`, and
tags the variables it creates with the same facts, because an optimizer
built the Keras way (`compile`/`fit` hand it the flat list
`model.trainable_variables`) cannot see layers:

- the variables that form one logical weight (the bands of a banded kernel;
  one variable otherwise): LARS gives them one trust ratio;
- whether the weight is a bias or a normalization scale/offset, which
  weight decay and LARS's adaptation leave out (`no_decay`).

Untagged variables (a plain Keras model's) are classified by layer type or
shape in `keras_slim.optimizers.parameter_groups`.
"""

import collections

_TAG = "_keras_slim_weight_group"

WeightGroup = collections.namedtuple("WeightGroup", ["variables", "no_decay"])
WeightGroup.__doc__ = """One logical weight: its variables, and whether it is
a bias or normalization parameter (no weight decay, no LARS adaptation)."""


def affine_groups(*variables):
    """One no-decay `WeightGroup` per variable of `variables` (`None` skipped).

    For normalization scales/offsets and other one-variable exclusions.
    """
    return [WeightGroup((v,), True) for v in variables if v is not None]


def tag_groups(groups):
    """Tags every variable of `groups` (`WeightGroup`s) with its group."""
    for group in groups:
        group = WeightGroup(tuple(group.variables), bool(group.no_decay))
        for variable in group.variables:
            setattr(variable, _TAG, group)


def tagged_group(variable):
    """The `WeightGroup` a keras_slim layer tagged `variable` with, or None."""
    return getattr(variable, _TAG, None)
