"""Trust groups and no-decay variables by layer type equal the old name rule.

LARS used to find the bands of a weight by parsing `kernel_0_1` suffixes and
to leave out biases and BatchNorm by regexes on the variable path. The old
regexes are frozen here, in the test only, as the reference: on keras_slim's
models the type-based answer must be exactly theirs.
"""

import re

import keras
import numpy as np
import pytest

from keras_slim import Widths
from keras_slim.backbones import SlimMobileNetV2
from keras_slim.backbones import SlimResNet
from keras_slim.heads import SlimMLPHead
from keras_slim.layers import SlimBatchNormalization
from keras_slim.layers import SlimConv2D
from keras_slim.layers import SlimDense
from keras_slim.layers import SlimDepthwiseConv2D
from keras_slim.optimizers import LARS
from keras_slim.optimizers import parameter_groups

# The name rule LARS applied before (its DEFAULT_EXCLUDE_PATTERNS).
OLD_PATTERNS = (
    r"(^|/)[^/]*(bias|beta|gamma)[^/]*$",
    r"(^|/)[^/]*(batch_?norm)[^/]*/",
    r"(^|/)([^/]*_)?bn\d*(_[^/]*)?/",
)
RANGE = Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.5, 0.25])
KERNEL_LAYERS = (SlimConv2D, SlimDense, SlimDepthwiseConv2D)


def _old_excluded(variable):
    return any(p in variable.path or re.search(p, variable.path)
               for p in OLD_PATTERNS)


def _expected_by_type(model):
    """{id: band tuple} of each weight, and the ids of BN/bias variables."""
    groups, no_decay = {}, set()
    for layer in model._flatten_layers(include_self=True):
        if isinstance(layer, KERNEL_LAYERS):
            for banded in (layer._kernel, layer._bias):
                if banded is not None:
                    bands = tuple(banded.variables)
                    groups.update({id(v): bands for v in bands})
            if layer._bias is not None:
                no_decay.update(id(v) for v in layer._bias.variables)
        if isinstance(layer, (SlimBatchNormalization,
                              keras.layers.BatchNormalization)):
            no_decay.update(id(v) for v in (layer.gamma, layer.beta)
                            if v is not None)
    return groups, no_decay


def _resnet():
    return SlimResNet(depth=18, stem="cifar", base_width=8,
                      widths=[1.0, 0.5, 0.25])


def _head(widths):
    head = SlimMLPHead(16, 8, widths=widths, num_layers=3, batch_norm=True,
                       output_batch_norm=True, bias_before_norm=[True, False,
                                                                 False])
    head.build((None, 32))
    return head


MODELS = {
    "resnet_list": _resnet,
    "mobilenet_list": lambda: SlimMobileNetV2(widths=[1.0, 0.5, 0.35]),
    "mobilenet_range": lambda: SlimMobileNetV2(widths=RANGE),
    "head_list": lambda: _head([1.0, 0.5]),
    "head_range": lambda: _head(RANGE),
}


@pytest.fixture(scope="module", params=list(MODELS))
def model(request):
    return MODELS[request.param]()


def test_no_decay_is_the_old_name_rule_and_the_layer_types(model):
    variables = model.trainable_variables
    old = {id(v) for v in variables if _old_excluded(v)}
    _, by_type = _expected_by_type(model)
    groups = parameter_groups(model)
    new = [id(v) for v in groups.no_decay]
    assert len(new) == len(set(new))
    assert set(new) == old == by_type
    assert 0 < len(old) < len(variables)


def test_trust_groups_are_the_bands_of_each_weight(model):
    variables = model.trainable_variables
    bands, _ = _expected_by_type(model)
    groups = parameter_groups(model).trust_groups
    # Every trainable variable in exactly one group, in variable order.
    flat = [id(v) for group in groups for v in group]
    assert sorted(flat) == sorted(id(v) for v in variables)
    assert len(flat) == len(set(flat))
    for group in groups:
        expected = bands.get(id(group[0]), (group[0],))
        assert [id(v) for v in group] == [id(v) for v in expected]
    banded = any(len(g) > 1 for g in groups)
    assert banded is (not model.widths.is_range)


def test_lars_on_the_flat_variable_list_decides_the_same(model):
    variables = model.trainable_variables
    groups = parameter_groups(model)
    no_decay = {id(v) for v in groups.no_decay}
    group_of = {id(v): [id(m) for m in g] for g in groups.trust_groups
                for v in g}
    opt = LARS(weight_decay=1e-4)
    opt.build(variables)  # what compile/fit hand the optimizer
    for variable in variables:
        excluded = id(variable) in no_decay
        assert excluded is _old_excluded(variable), variable.path
        assert opt.uses_weight_decay(variable) is not excluded
        assert opt.uses_adaptation(variable) is not excluded
        assert [id(v) for v in opt.trust_ratio_group(variable)] == (
            group_of[id(variable)])


def test_renaming_changes_nothing():
    # A BatchNorm whose name has no `bn` and a Dense named like a norm: the
    # old rule got both wrong, the type rule does not.
    model = keras.Sequential([
        keras.Input((4,)),
        SlimDense(6, [1.0, 0.5], name="projection"),
        keras.layers.BatchNormalization(name="scaler"),
        keras.layers.Dense(3, name="batchnorm_like"),
    ], name="net")
    groups = parameter_groups(model)
    names = {v.path for v in groups.no_decay}
    assert names == {"net/projection/bias_0", "net/projection/bias_1",
                     "net/scaler/gamma", "net/scaler/beta",
                     "net/batchnorm_like/bias"}
    norm = model.layers[1]
    assert id(norm.gamma) in {id(v) for v in groups.no_decay}
    kernel = model.layers[-1].kernel
    opt = LARS(weight_decay=0.1)
    opt.build(model.trainable_variables)
    assert opt.uses_weight_decay(kernel) and opt.uses_adaptation(kernel)
    assert _old_excluded(kernel)  # the old name rule left it out


def test_parameter_groups_of_a_list_and_bad_input():
    dense = SlimDense(4, [1.0, 0.5], input_channels=6)
    dense.build((None, 6))
    plain = keras.layers.Dense(2)
    plain.build((None, 4))
    groups = parameter_groups([dense, plain, dense])
    assert [len(g) for g in groups.trust_groups] == [4, 2, 1, 1]
    assert len(groups.no_decay) == 3
    np.testing.assert_array_equal(groups.no_decay[-1].numpy(),
                                  plain.bias.numpy())
    with pytest.raises(ValueError, match="takes a Keras model, a layer"):
        parameter_groups(dense.trainable_variables)
