"""One SlimCLR-MoCo v2 training step equals the official step.

`tools/make_golden_slimclr.py` loaded tests/fixtures/convert/
slimclr_mocov2_tiny.pth.tar (a slimmable ResNet-50 at 1/16 of the channels,
widths [1, .75, .5, .25]) into the official `s_MoCo`, ran one training step
on two fixed views (`model(...)`, `loss.backward()`, `torch.optim.SGD.step()`
with the official parameter groups and schedule) and recorded the per-width
losses and, for every tensor of the state dict, how far the step moved it.
Here the same checkpoint, converted, takes the same step through `fit`'s
`train_step`: losses, key encoder, queue, every weight and every statistic.

The weights are compared in float64 (the golden file has the official step
rerun in float64 too): this tiny network's width 0.25 has one-channel
BatchNorms whose float32 gradients are dominated by rounding (the official
float32 and float64 steps move one of them 19% apart, and float32 rounding in
keras_slim lands elsewhere), while in float64 both codes agree to 1e-3 or
better on every tensor. The per-width losses are also checked in float32.
"""

import json
import os

import numpy as np
import pytest

from keras_slim import convert
from keras_slim.convert import read_torch_checkpoint
from keras_slim.optimizers import CoupledSGD
from tests.convert._fixtures import fixture
from tests.methods._official_step import check_moves
from tests.methods._official_step import in_precision

GOLDEN = os.path.join(os.path.dirname(__file__), os.pardir, "golden")
WIDTHS = [1.0, 0.75, 0.5, 0.25]


def _golden():
    with open(os.path.join(GOLDEN, "slimclr_mocov2_step.json")) as f:
        summary = json.load(f)
    return summary, np.load(os.path.join(GOLDEN, "slimclr_mocov2_step.npz"))


def _step(slow_start, floatx="float64"):
    """(logs, official-layout state before, after) of one keras_slim step."""
    model, logs, before, after = in_precision(
        floatx, lambda: _keras_step(slow_start))
    assert model.backbone.stem_conv.kernel.dtype == floatx
    return model, logs, before, after


def _keras_step(slow_start):
    path = fixture("slimclr_mocov2_tiny.pth.tar")
    model = convert.load_slimclr(path, as_method=True,
                                 slow_start_steps=1 if slow_start else 0)
    before = read_torch_checkpoint(path)["state_dict"]
    before = {k[len("module."):]: np.asarray(v, np.float64)
              for k, v in before.items()}
    model.compile(optimizer=CoupledSGD(0.03, momentum=0.9, weight_decay=1e-4),
                  run_eagerly=True)
    _, arrays = _golden()
    logs = model.train_on_batch(arrays["view1"], arrays["view2"],
                                return_dict=True)
    return model, logs, before, convert.slimclr_state_dict(model)


@pytest.fixture(scope="module")
def slim_step():
    return _step(slow_start=False)


def _check_per_width_losses(logs, expected, rtol=1e-5):
    for width in WIDTHS:
        official = expected["per_width"][f"{width}"]
        name = f"w{width:g}/loss"
        if official == 0.0:  # slow start: only the full width trains
            assert float(logs[name]) == 0.0
            continue
        np.testing.assert_allclose(float(logs[name]), official, rtol=rtol)
    np.testing.assert_allclose(float(logs["loss"]), expected["total"],
                               rtol=rtol)


def _check_every_tensor_moved_as_officially(before, after, arrays, prefix):
    """Every tensor but the running variances (compared apart: Keras updates
    them with the batch's biased variance, PyTorch with the unbiased one,
    n / (n - 1), n = batch x height x width)."""
    keys = [str(k) for k in arrays["state_keys"]]
    checked = [k for k in keys if k in after and not k.endswith("running_var")]
    assert len(checked) > 1000
    check_moves(before, after, arrays, checked, prefix)


def test_per_width_losses_equal_the_official_step(slim_step):
    _, logs, _, _ = slim_step
    summary, _ = _golden()
    _check_per_width_losses(logs, summary["float64_rerun"])


def test_per_width_losses_equal_the_official_step_in_float32():
    summary, _ = _golden()
    _, logs, _, _ = _step(slow_start=False, floatx="float32")
    _check_per_width_losses(logs, summary["slim"])


def test_every_weight_and_statistic_moves_as_in_the_official_step(slim_step):
    _, _, before, after = slim_step
    _, arrays = _golden()
    _check_every_tensor_moved_as_officially(before, after, arrays, "")
    for key in [k[len("after/"):] for k in arrays.files
                if k.startswith("after/")]:
        expected = arrays[f"after/{key}"]
        if key.endswith("running_var"):
            continue
        # The official values are float32 (a 1e-4 move of conv1, whose
        # gradient norm is ~200, carries float32 noise of ~2e-5).
        np.testing.assert_allclose(after[key], expected, rtol=1e-3,
                                   atol=5e-5 * np.abs(expected).max() + 1e-8,
                                   err_msg=key)


def test_running_variances_differ_only_by_the_unbiased_estimate(slim_step):
    """PyTorch: rv = 0.9 rv + 0.1 var * n / (n - 1); Keras: 0.1 var.

    From the official stem statistics (n = 4 images x 32 x 32 pixels) the
    batch variance `var` follows; keras_slim's must be the biased update.
    """
    _, _, before, after = slim_step
    _, arrays = _golden()
    n = 4 * 32 * 32
    keys = [f"encoder_q.bn1.bn.{i}.running_var" for i in range(4)]
    keys.append("encoder_k.bn1.bn.0.running_var")
    for key in keys:
        official = arrays[f"after/{key}"].astype(np.float64)
        variance = (official - 0.9 * before[key]) / (0.1 * n / (n - 1))
        np.testing.assert_allclose(after[key], 0.9 * before[key]
                                   + 0.1 * variance, rtol=1e-5, err_msg=key)
        assert np.all(np.abs(after[key] - official) > 0)  # really differs


def test_the_queue_takes_the_keys_of_the_updated_key_encoder(slim_step):
    _, _, _, after = slim_step
    _, arrays = _golden()
    np.testing.assert_allclose(after["queue"], arrays["after/queue"],
                               rtol=1e-3, atol=1e-5)
    assert int(after["queue_ptr"][0]) == int(arrays["after/queue_ptr"][0])


def test_a_slow_start_step_trains_the_full_width_alone_with_weight_1():
    summary, arrays = _golden()
    _, logs, before, after = _step(slow_start=True)
    _check_per_width_losses(logs, summary["slow_start"])
    _check_every_tensor_moved_as_officially(before, after, arrays,
                                            "slow_start/")
