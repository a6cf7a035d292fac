"""US3L's losses and group regularization equal the official code's numbers.

`tools/make_golden_us3l.py` ran the official `InfoNCEv2_distill.py`
(`nt_xentv2`), `CosineSimilarity.py` (BYOL and the sub-width distillation)
and `GroupReg.py` of megvii-research/US3L-CVPR2023 on fixed inputs
(tests/golden/us3l_losses.json).
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_slim import losses
from keras_slim.backbones import SlimResNet
from keras_slim.methods import US3L
from keras_slim.methods._group_terms import group_terms

GOLDEN = os.path.join(os.path.dirname(__file__), os.pardir, "golden")


def _case(name):
    with open(os.path.join(GOLDEN, "us3l_losses.json")) as f:
        return next(c for c in json.load(f)["cases"] if c["name"] == name)


def _check(case, loss_fn, leaves):
    inputs = {k: np.asarray(v, "float32") for k, v in case["inputs"].items()}
    variables = {k: tf.Variable(inputs[k]) for k in leaves}
    with tf.GradientTape() as tape:
        loss = tf.reduce_mean(loss_fn({**inputs, **variables}))
    grads = tape.gradient(loss, [variables[k] for k in leaves])
    np.testing.assert_allclose(float(loss), case["outputs"]["loss"],
                               rtol=1e-5)
    for name, grad in zip(leaves, grads):
        official = np.asarray(case["outputs"][f"grad_{name}"])
        np.testing.assert_allclose(grad.numpy(), official, rtol=1e-4,
                                   atol=1e-6 * np.abs(official).max())


def test_simclr_momentum_base_is_the_official_nt_xentv2():
    t = _case("nt_xentv2")["settings"]["T"]
    _check(_case("nt_xentv2"), lambda x: 0.5 * (
        losses.nt_xent_v2(x["q1"], x["k2"], t)
        + losses.nt_xent_v2(x["q2"], x["k1"], t)), ["q1", "q2"])


def test_byol_base_is_the_official_mean_negative_cosine():
    _check(_case("byol"), lambda x: 0.5 * (
        losses.negative_cosine(x["p2"], x["z1"])
        + losses.negative_cosine(x["p1"], x["z2"])), ["p1", "p2"])


def test_sub_width_distillation_is_the_official_cross_view_mean():
    _check(_case("cosine_distill"), lambda x: 0.5 * (
        losses.negative_cosine(x["s2"], x["k1"])
        + losses.negative_cosine(x["s1"], x["k2"])), ["s1", "s2"])


def _keras_layout(value):
    """A PyTorch tensor in keras_slim's layout (output channels last)."""
    value = np.asarray(value, "float32")
    if value.ndim == 4:
        return value.transpose(2, 3, 1, 0)
    if value.ndim == 2:
        return value.T
    return value


@pytest.mark.parametrize("index", range(4))
def test_group_regularization_is_the_official_group_reg(index):
    case = _case("group_reg")
    settings = case["settings"]
    official = case["outputs"]["cases"][index]
    parameters = case["inputs"]["parameters"]
    variables = {name: tf.Variable(_keras_layout(parameters[name]))
                 for name in official["grad"]}
    with tf.GradientTape() as tape:
        value = tf.add_n([
            losses.group_regularization(
                v, settings["lambda"], official["alpha_t"], groups=8,
                binned=len(v.shape) != 2)
            for v in variables.values()])
    grads = tape.gradient(value, list(variables.values()))
    np.testing.assert_allclose(float(value), official["value"], rtol=1e-5)
    for (name, _), grad in zip(variables.items(), grads):
        np.testing.assert_allclose(
            grad.numpy(), _keras_layout(official["grad"][name]), rtol=1e-4,
            atol=1e-9, err_msg=name)


def test_the_recipe_regularizes_every_online_weight_but_the_teacher():
    backbone = SlimResNet(widths={"min_width": 0.25, "max_width": 1.0},
                          base_width=8, depth=18)
    model = US3L(backbone, projection_dim=16, hidden_dim=32,
                 group_lambda=5e-5)
    full = group_terms([model.backbone, model.projector])
    with_predictor = group_terms([model.backbone, model.projector,
                                  model.distill_predictor])
    expected_full = sum(float(losses.group_regularization(
        t, 5e-5, 0.05, binned=b)) for t, b in full)
    expected_sub = sum(float(losses.group_regularization(
        t, 5e-5, 0.05, binned=b)) for t, b in with_predictor)
    # total_steps=0: alpha is its final 0.05.
    np.testing.assert_allclose(float(model.regularization(1.0)),
                               expected_full, rtol=1e-6)
    np.testing.assert_allclose(float(model.regularization(0.5)),
                               expected_sub, rtol=1e-6)
    # Every trainable backbone/projector weight is in (BN offsets included).
    assert len(full) == len([v for v in model.backbone.trainable_variables
                             + model.projector.trainable_variables])
