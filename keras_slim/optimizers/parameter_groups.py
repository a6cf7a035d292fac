"""Which variables share a LARS trust ratio and which are not decayed.

Decided by layer type and variable shape, never by variable names: renaming
a layer changes nothing.
"""

import dataclasses

import keras

from keras_slim.layers._roles import WeightGroup
from keras_slim.layers._roles import affine_groups
from keras_slim.layers._roles import tagged_group
from keras_slim.layers._slim_kernel import SlimKernelLayer
from keras_slim.layers._slim_norm import SlimNormLayer

# Keras's own normalization layers: their `gamma`/`beta` (RMSNormalization's
# `scale`) are normalization parameters.
_KERAS_NORMALIZATIONS = (
    keras.layers.BatchNormalization,
    keras.layers.LayerNormalization,
    keras.layers.GroupNormalization,
) + ((keras.layers.RMSNormalization,)
     if hasattr(keras.layers, "RMSNormalization") else ())


# eq=False: comparing variables with `==` is elementwise, not identity.
@dataclasses.dataclass(frozen=True, eq=False)
class ParameterGroups:
    """The optimizer-relevant structure of a model's trainable variables.

    Attributes:
        trust_groups: tuple of tuples of variables, every trainable variable
            in exactly one: the variables of one logical weight (the bands
            of a banded kernel), which share one LARS trust ratio.
        no_decay: tuple of the variables left out of weight decay and of
            LARS's adaptation: biases and normalization scales/offsets.
    """

    trust_groups: tuple
    no_decay: tuple


def default_weight_group(variable):
    """`variable`'s `WeightGroup` as tagged, else the shape rule's.

    The rule for a variable no keras_slim layer tagged (a plain Keras
    model's): a weight of its own, excluded from decay and adaptation when
    it has rank <= 1 (biases, normalization scales and offsets). It is the
    official rule: SlimCLR's `utils/optim.py` LARS (MoCo v3's
    `moco/optimizer.py`) decays and adapts exactly the parameters with
    `p.ndim > 1`.
    """
    group = tagged_group(variable)
    if group is not None:
        return group
    return WeightGroup((variable,), len(variable.shape) <= 1)


def parameter_groups(model_or_layers):
    """The `ParameterGroups` of a model, a layer, or a list of them.

    Walks the layers and classifies their weights by type: keras_slim layers
    publish theirs (`weight_groups()`: a banded kernel is one group; biases,
    BatchNorm gamma/beta are not decayed); Keras's normalization layers'
    scales and offsets and any Keras layer's `bias` are not decayed; every
    other trainable variable follows `default_weight_group`'s shape rule.
    No variable name is read.

    Args:
        model_or_layers: a `keras.layers.Layer` (a model is one) or a list of
            them.

    Returns:
        A `ParameterGroups` over the trainable variables, in their order.

    Example:

    ```python
    import keras
    from keras_slim.backbones import SlimResNet
    from keras_slim.optimizers import parameter_groups

    backbone = SlimResNet(depth=10, base_width=4, widths=[1.0, 0.5])
    groups = parameter_groups(backbone)
    # BatchNorm gammas/betas (and biases) are left out of decay, by type.
    assert groups.no_decay and all(len(v.shape) == 1 for v in groups.no_decay)
    optimizer = keras.optimizers.AdamW(1e-3)
    optimizer.exclude_from_weight_decay(var_list=groups.no_decay)
    ```
    """
    roots = _as_layers(model_or_layers)
    variables = _unique(v for root in roots for v in root.trainable_variables)
    trainable = {id(v) for v in variables}
    typed = {}
    for root in roots:
        for layer in root._flatten_layers(include_self=True):
            for group in _typed_groups(layer):
                typed.update({id(v): group for v in group.variables})
    trust_groups, no_decay, grouped = [], [], set()
    for variable in variables:
        group = typed.get(id(variable)) or default_weight_group(variable)
        if group.no_decay:
            no_decay.append(variable)
        if id(variable) not in grouped:
            members = tuple(v for v in group.variables if id(v) in trainable)
            grouped.update(id(v) for v in members)
            trust_groups.append(members)
    return ParameterGroups(tuple(trust_groups), tuple(no_decay))


def _typed_groups(layer):
    if isinstance(layer, (SlimKernelLayer, SlimNormLayer)):
        return layer.weight_groups()
    if isinstance(layer, _KERAS_NORMALIZATIONS):
        return affine_groups(*_variables(layer, "gamma", "beta", "scale"))
    return affine_groups(*_variables(layer, "bias"))


def _variables(layer, *attributes):
    """The layer's attributes of those names that are variables.

    (BatchNormalization's `scale` is a bool, RMSNormalization's a weight.)
    """
    values = (getattr(layer, name, None) for name in attributes)
    return [v for v in values if isinstance(v, keras.Variable)]


def _as_layers(model_or_layers):
    if isinstance(model_or_layers, keras.layers.Layer):
        return [model_or_layers]
    layers = list(model_or_layers)
    for layer in layers:
        if not isinstance(layer, keras.layers.Layer):
            raise ValueError(
                "`parameter_groups` takes a Keras model, a layer or a list of "
                f"them; got {type(layer).__name__} {layer!r}. For a list of "
                "variables, use `default_weight_group(variable)` on each."
            )
    return layers


def _unique(variables):
    seen, out = set(), []
    for variable in variables:
        if id(variable) not in seen:
            seen.add(id(variable))
            out.append(variable)
    return out
