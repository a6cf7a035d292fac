"""One US3L training step equals the official step.

`tools/make_golden_us3l.py` loaded tests/fixtures/convert/
us3l_simclr_cifar_resnet18_tiny.pth.tar plus tests/golden/
us3l_step_before.pth.tar (its EMA teacher `encoder_k.`) into the official
`SimCLR_Momentum` (a universally slimmable CIFAR ResNet-18 at 1/8 of the
channels, projection 16, hidden 32), and ran one iteration of the official
`workers/ssl.py` `train()` at epoch 380 of the CIFAR config: widths
[1.0, 0.625, 0.25] (the uniform draw forced to 0.625), largest first, one SGD
step per width (lr 0.0031, momentum 0.9, no weight decay: group
regularization instead), the EMA teacher updated once in the full width's
pass. Here the same weights, converted, take the same step through `fit`'s
`train_step`: per-width losses and every weight after the step.

As in the SlimCLR step test, the weights are compared in float64 against the
official float64 rerun; the losses in float32 too. The epoch is late on
purpose: this tiny network amplifies rounding through the three sequential
updates (at epoch 350, lr 0.0190, the official float32 run ends up to 0.15%
from its float64 rerun, and keras_slim, whose losses are float32 arithmetic
even for float64 weights, drifted up to 4%, while each two-width step agreed
to 1e-5: measured with throwaway scripts while choosing the epoch).
The heads' BatchNorm running statistics are not compared: keras_slim's range
BatchNorms keep none in training (they are calibrated for inference).
"""

import json
import os

import numpy as np
import pytest

from keras_slim import convert
from keras_slim.convert import _state
from keras_slim.convert import read_torch_checkpoint
from keras_slim.convert import us3l as us3l_module
from keras_slim.convert._us3l_layout import torch_layers
from keras_slim.methods._plan import uniform_draws
from keras_slim.methods._plan import width_grid
from keras_slim.optimizers import CoupledSGD
from tests.convert._fixtures import fixture
from tests.methods._official_step import check_moves
from tests.methods._official_step import in_precision

GOLDEN = os.path.join(os.path.dirname(__file__), os.pardir, "golden")
CHECKPOINT = fixture("us3l_simclr_cifar_resnet18_tiny.pth.tar")
TEACHER = os.path.join(GOLDEN, "us3l_step_before.pth.tar")
SLOTS = {1.0: "w1", 0.625: "wrand1", 0.25: "wmin"}


def _golden():
    with open(os.path.join(GOLDEN, "us3l_step.json")) as f:
        summary = json.load(f)
    return summary, np.load(os.path.join(GOLDEN, "us3l_step.npz"))


def _before():
    """The official state before the step: the fixture and its teacher."""
    state = {}
    for path in (CHECKPOINT, TEACHER):
        for key, value in read_torch_checkpoint(path)["state_dict"].items():
            state[key[len("module."):]] = value
    return state


def _seed_drawing(width):
    """A sampling seed whose step 0 draws `width` (official: forced)."""
    grid = width_grid(1.0, 0.25, 0.0625)
    for seed in range(1000):
        if grid[int(uniform_draws(seed, 0, grid, 0.25, 1)[0])] == width:
            return seed
    raise AssertionError(f"no seed draws {width}")


def _keras_step(monkeypatch, floatx):
    before = _before()
    # The two official files as one (the converter reads one checkpoint).
    monkeypatch.setattr(us3l_module, "read_state_dict", lambda path: (
        _state.StateDict(before, path), {}))
    summary, arrays = _golden()
    model = in_precision(floatx, lambda: convert.load_us3l(
        CHECKPOINT, as_method=True, seed=_seed_drawing(0.625),
        temperature=0.5, momentum=0.99, group_lambda=5e-5,
        group_alpha=0.05, num_widths=3))
    assert model.sampled_widths(0) == [1.0, 0.625, 0.25]
    assert model.backbone.stem_conv.kernel.dtype == floatx
    model.compile(optimizer=CoupledSGD(summary["settings"]["lr"],
                                       momentum=0.9, weight_decay=0.0),
                  run_eagerly=True)
    logs = model.train_on_batch(arrays["view1"], arrays["view2"],
                                return_dict=True)
    before = {k: np.asarray(v, np.float64) for k, v in before.items()}
    return model, logs, before, _official_layout(model)


@pytest.fixture(scope="module")
def us3l_step():
    with pytest.MonkeyPatch.context() as monkeypatch:
        return _keras_step(monkeypatch, "float64")


def _official_layout(model):
    """The model's trainable weights under the official state-dict keys."""
    state = {}
    for prefix, backbone, projector in (
            ("encoder_q.", model.backbone, model.projector),
            ("encoder_k.", model.teacher_backbone, model.teacher_projector)):
        for (conv, norm), conv_layer, norm_layer in torch_layers(backbone):
            kernel = np.asarray(conv_layer.kernel, np.float64)
            state[f"{prefix}{conv}.weight"] = kernel.transpose(3, 2, 0, 1)
            _put_norm(state, f"{prefix}{norm}", norm_layer)
        _put_head(state, f"{prefix}fc.", projector, ("0", "3", "6"),
                  ("1", "4"))
    _put_head(state, "predictor.", model.distill_predictor, ("0", "3"),
              ("1",))
    return state


def _put_norm(state, key, norm):
    state[f"{key}.weight"] = np.asarray(norm.gamma, np.float64)
    state[f"{key}.bias"] = np.asarray(norm.beta, np.float64)


def _put_head(state, prefix, head, dense_keys, norm_keys):
    for layer, key in zip(head.dense_layers, dense_keys):
        state[f"{prefix}{key}.weight"] = np.asarray(layer.kernel,
                                                    np.float64).T
        if layer.use_bias:
            state[f"{prefix}{key}.bias"] = np.asarray(layer.bias, np.float64)
    for norm, key in zip(head.norms, norm_keys):
        _put_norm(state, f"{prefix}{key}", norm)


def _check_losses(logs, per_width, rtol):
    total = 0.0
    for row in per_width:
        slot = SLOTS[row["width"]]
        if row["role"] == "teacher":
            np.testing.assert_allclose(float(logs[f"{slot}/ssl_loss"]),
                                       row["base_loss"], rtol=rtol)
        else:
            np.testing.assert_allclose(float(logs[f"{slot}/distill_loss"]),
                                       row["distill_loss"], rtol=rtol)
        # loss + group regularization, as the official `loss += reg_loss`
        # (relative to the terms: a sub-width's -cos and penalty cancel).
        scale = abs(row.get("base_loss", row.get("distill_loss"))) + abs(
            row["reg_loss"])
        np.testing.assert_allclose(float(logs[f"{slot}/loss"]), row["total"],
                                   rtol=0, atol=rtol * scale)
        total += row["total"]
    np.testing.assert_allclose(float(logs["loss"]), total, rtol=rtol)


def test_per_width_losses_equal_the_official_step(us3l_step):
    _, logs, _, _ = us3l_step
    summary, _ = _golden()
    _check_losses(logs, summary["float64_rerun"]["per_width"], rtol=1e-5)


def test_per_width_losses_equal_the_official_step_in_float32(monkeypatch):
    summary, _ = _golden()
    _, logs, _, _ = _keras_step(monkeypatch, "float32")
    _check_losses(logs, summary["per_width"], rtol=1e-5)


def test_every_weight_moves_as_in_the_official_step(us3l_step):
    _, _, before, after = us3l_step
    _, arrays = _golden()
    keys = [str(k) for k in arrays["state_keys"]]
    checked = [k for k in keys if k in after]
    unchecked = {k.rsplit(".", 1)[-1] for k in keys if k not in after}
    # Only the heads' BN statistics and counters are left out.
    assert unchecked == {"running_mean", "running_var",
                         "num_batches_tracked"}
    assert len(checked) == 70 + 5 + 70  # encoder_q, predictor, encoder_k
    check_moves(before, after, arrays, checked)
    for key in [k[len("after/"):] for k in arrays.files
                if k.startswith("after/")]:
        if key not in after:
            continue
        expected = arrays[f"after/{key}"]
        np.testing.assert_allclose(after[key], expected, rtol=1e-3,
                                   atol=5e-5 * np.abs(expected).max() + 1e-8,
                                   err_msg=key)


def test_the_teacher_is_the_ema_of_the_online_weights_before_the_step(
        us3l_step):
    """k = 0.99 k + 0.01 q, once, from the pre-step online weights."""
    _, _, before, after = us3l_step
    for key in ("conv1.weight", "layer4.1.conv2.weight", "fc.6.bias"):
        expected = (0.99 * before[f"encoder_k.{key}"]
                    + 0.01 * before[f"encoder_q.{key}"])
        np.testing.assert_allclose(after[f"encoder_k.{key}"], expected,
                                   rtol=1e-12, atol=1e-15)
