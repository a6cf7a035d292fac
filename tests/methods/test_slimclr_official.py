"""SlimCLR's losses equal the official code's numbers (tests/golden/).

`tools/make_golden_slimclr.py` ran the official `models/s_moco.py`,
`s_mocov3.py` and `s_simclr.py` `ssl_loss` (with the released scripts'
settings: KD on the raw cosine logits at T=5, loss weights [2.5, 1, 1, 1],
distillation weight 0.5) on fixed embeddings and wrote the per-width losses,
the total and its gradient w.r.t. each width's raw embeddings.
"""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_slim.backbones import SlimResNet
from keras_slim.methods import SlimCLR

GOLDEN = os.path.join(os.path.dirname(__file__), os.pardir, "golden")
WIDTHS = [1.0, 0.75, 0.5, 0.25]


def _cases():
    with open(os.path.join(GOLDEN, "slimclr_ssl_loss.json")) as f:
        return json.load(f)["cases"]


def _model(case):
    settings = case["settings"]
    backbone = SlimResNet(depth=18, base_width=4, widths=WIDTHS)
    options = dict(base=case["base"], temperature=settings["T"],
                   distill_temperature=settings["student_T"],
                   distill_weight=settings["aux_loss_w"],
                   width_weights=settings["loss_weights"],
                   projection_dim=settings["dim"], hidden_dim=8,
                   slow_start_steps=0 if case["enable_slim"] else 1)
    if case["base"] == "mocov2":
        options["queue_size"] = settings["K"]
    model = SlimCLR(backbone, **options)
    if case["base"] == "mocov2":
        # The official queue is (dim, K); keras_slim keeps (K, dim).
        model.queue.assign(np.asarray(case["inputs"]["queue"], "float32").T)
    return model


def _slots(model, enable_slim):
    phases = model.phases()
    return phases[-1][1] if enable_slim else phases[0][1]


def _run(model, case):
    """(per-width losses, total, {input name: {width: gradient}})."""
    inputs = case["inputs"]
    names = ["q"] if case["base"] == "mocov2" else ["q1", "q2"]
    raw = {n: {w: tf.Variable(np.asarray(inputs[n][f"{w}"], "float32"))
               for w in WIDTHS} for n in names}
    targets = {}
    if case["base"] == "mocov2":
        targets["key"] = np.asarray(inputs["k"], "float32")
    elif case["base"] == "mocov3":
        targets = {"key1": np.asarray(inputs["k1"], "float32"),
                   "key2": np.asarray(inputs["k2"], "float32")}
    per_width, teacher = {}, None
    with tf.GradientTape() as tape:
        total = 0.0
        for slot in _slots(model, case["enable_slim"]):
            width = slot.candidates[0]
            embeddings = tuple(raw[n][width] for n in names)
            out = model.embedding_outputs(embeddings, targets, teacher)
            if slot.is_teacher:
                teacher = tf.nest.map_structure(tf.stop_gradient,
                                                out["teacher"])
            distill = tf.reduce_mean(out["distill"]) if "distill" in out else 0.0
            loss = model.combine(slot, tf.reduce_mean(out["ssl"]), distill)
            per_width[width] = float(loss)
            total += loss
    variables = [raw[n][w] for n in names for w in WIDTHS]
    grads = tape.gradient(total, variables)
    gradients = {n: {} for n in names}
    for (n, w), g in zip([(n, w) for n in names for w in WIDTHS], grads):
        gradients[n][w] = np.zeros(raw[n][w].shape) if g is None else g.numpy()
    return per_width, float(total), gradients


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_losses_and_gradients_equal_the_official_ones(case):
    model = _model(case)
    per_width, total, gradients = _run(model, case)
    expected = case["outputs"]
    for width in WIDTHS:
        official = expected["per_width"][f"{width}"]
        if official == 0.0:  # slow start: the sub-widths do not train
            assert width not in per_width
            continue
        np.testing.assert_allclose(per_width[width], official, rtol=1e-5)
    np.testing.assert_allclose(total, expected["total"], rtol=1e-5)
    for name, by_width in gradients.items():
        for width, grad in by_width.items():
            official = np.asarray(expected[f"grad_{name}"][f"{width}"])
            np.testing.assert_allclose(grad, official, rtol=1e-4,
                                       atol=1e-6 * np.abs(official).max()
                                       + 1e-9)
