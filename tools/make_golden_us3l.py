"""Writes golden numbers of the official US3L code into `tests/golden/`.

Run it in a separate environment that has PyTorch (torch is no dependency of
keras_slim), beside a checkout of the official repository
(megvii-research/US3L-CVPR2023):

    python -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install --no-deps "torch==2.13.0+cpu"
    /tmp/torchenv/bin/pip install filelock sympy networkx jinja2 fsspec \
        typing-extensions numpy yacs==0.1.8   # yacs pulls in PyYAML
    /tmp/torchenv/bin/python tools/make_golden_us3l.py \
        --us3l /path/to/US3L-CVPR2023 --out tests/golden

It takes a few seconds on one CPU thread. The official modules are imported
from the checkout and run unchanged; nothing of them is copied here or into
keras_slim: `config.py` (the yacs defaults; `get_config` merges
`configs/cifar/us_resnet18_simclr_featdistill_cifar.yaml` or
`..._byol_featdistill_cifar.yaml`, `update_config` applies the overrides
named below), `losses/__init__.py` (`LOSS`), `losses/criterions/
InfoNCEv2_distill.py`, `CosineSimilarity.py`, `losses/regularizers/
GroupReg.py`, `meters/`, `models/OFA/slimmable_ops.py`,
`us_cifar_resnet.py`, `utils/ssl_algorithms/` (`SimCLR_Momentum`, `BYOL`),
`utils/builder.py` (`build_ssl_model`) and `workers/ssl.py`, whose
`generate_widths_train`, `adjust_learning_rate` and `train` (the training
iteration) are called as they are. Packages are loaded with
`tools/make_convert_fixtures.py`'s `load_package` (or their own
`__init__.py` where it is harmless). The environment shims, all outside the
official code:

* `datasets` (torchvision) is an empty stub module; `models` is the bare
  package holding only `models.OFA.*` (its `__init__` imports torchvision);
  `utils` is a bare package with `forward_hook`, `ssl_algorithms`, `builder`
  and `logging_information` (utils/train.py's, rank 0: `logger.info`; the
  real `utils/__init__` pulls in `utils/ddp.py`, which imports PIL);
* `torch._six` (gone from current torch) is a stub with `string_classes =
  (str, bytes)` for the official `utils/forward_hook.py`; `turtle` (imported
  unused by `slimmable_ops.py`) a stub where it is not importable;
* `torch.Tensor.cuda` is a no-op (`images[0].cuda(non_blocking=True)`);
* DistributedDataParallel is replaced by a device-less `nn.DataParallel`
  (a pass-through that exposes `.module` and the `module.` state-dict
  prefix, as DDP on one process); no process group is needed;
* `ssl()`'s setup (lines 96-108: the REGULARIZER weight-decay hack,
  `LOSS(config)`, `torch.optim.SGD(model.parameters(), ...)`,
  `GradScaler(enabled=USE_AMP)`) and its epoch loop body
  (`adjust_learning_rate`, then `train`) are re-typed here, without data
  loaders, checkpoints or logging files: the "loader" is a list of
  `([view1, view2], labels)` batches;
* instrumentation that changes no number: wrappers record
  `generate_widths_train`'s result, the sampler's `random.uniform(a, b)`
  calls, `_momentum_update_key_encoder` calls, the base criterion,
  `CosineSimilarity.Criterion.__call__` and `GroupReg.Regularizer.__call__`
  values and `optimizer.step()` (lr, weight decay, parameters with a
  gradient); for the one-step golden the sampler's random draw (workers/
  ssl.py's `random.uniform`) is replaced by a fixed value;
* float32 on the CPU (`TRAIN.USE_AMP` is False in both configs), one thread;
* the model is the fixtures' US3L CIFAR ResNet-18 at 1/8 of the channels
  (tools/make_us3l_fixture.py `_scale_channels`: 8 stem channels, stages
  8/16/32/64), with the fixture's head sizes `SSL.SETTING.DIM` 16 and
  `HIDDEN_DIM` 32 instead of the config's 256 / 2048 (override by
  `update_config`); the rounding of the official `make_divisible(., 8)`
  then makes some widths coarse (an 8-channel layer runs 8 channels at
  every width: at 0.25 make_divisible(2) = 9, sliced to 8).

Everything is seeded (`--seed`; the schedule run uses the config's SEED 100
for python's `random` and torch as utils/train.py `set_random_seed` does).
JSON arrays are nested lists of float32 values written as Python floats
(full precision), a list of numbers on one line.

Files and formats:

`us3l_losses.json`: {"source", "settings": {"simclr_config", "byol_config"
(the config fields the losses read)}, "cases": [{"name", "settings",
"inputs", "outputs"}]}; the three loss cases also rerun in float64
(outputs "float64": loss and terms, no gradients).
  * `nt_xentv2`: the base loss of the largest width in the SimCLR config,
    `LOSS(config)(output, teacher_target)` exactly as workers/ssl.py calls
    it: inputs `q1`, `q2` [6, 8] (the online encoder's raw projector outputs
    of view 1 and view 2, leaves with gradients), `k1`, `k2` [6, 8] (the
    momentum encoder's, detached); outputs `loss`, `terms` (the two
    nt_xentv2 calls, (q1, k2) and (q2, k1)), `grad_q1`, `grad_q2`.
    loss = mean of the two terms; nt_xentv2(a, b, T=0.5) normalizes a and b,
    x = cat([a, b]), S = exp(x x^T / T) without the diagonal [2N, 2N - 1],
    pos = exp(<a_i, b_i> / T) for both halves, mean over the 2N rows of
    -log(pos / sum(S)); student-student and teacher-teacher similarities are
    negatives.
  * `byol`: the BYOL config's base loss (CosineSimilarity), inputs `p1`,
    `p2` (predictor outputs, leaves), `z1`, `z2` (momentum targets,
    detached); loss = (-cos(p2, z1).mean() - cos(p1, z2).mean()) / 2 (not
    2 - 2 cos); outputs `loss`, `terms` [(p2, z1), (p1, z2)], `grad_p1`,
    `grad_p2`.
  * `cosine_distill`: a sub-width's distillation in the SimCLR config,
    `DISTILL_LAMBDA (1.0) * CosineSimilarity(config)(output, teacher_target,
    epoch)`: inputs `s1`, `s2` (the sub-width's predictor outputs of view 1
    and 2, leaves), `k1`, `k2` (the momentum encoder's outputs of the
    batch's max-width pass, detached); cross-view pairs (s2, k1), (s1, k2),
    MEAN of the two batch-mean -cos terms; DISTILL_STUDENT_TEMP (0.1) and
    DISTILL_TEACHER_TEMP (0.04) are never read; outputs `loss`, `terms`,
    `grad_s1`, `grad_s2`.
  * `group_reg`: `GroupReg.Regularizer(config, model)(width_mult=w,
    epoch=e)` on a small model (plain torch layers named like the training
    model: a conv [16, 8, 3, 3], BN [16] weight and bias, a 4-channel conv
    and BN (fewer channels than the 8 bins), an fc Linear [32, 16] + bias,
    a BatchNorm1d [32], a predictor (Linear, BatchNorm1d, Linear with a
    12-entry bias, not divisible by 8), an `encoder_k` BN and a `proj_conv`
    conv): inputs `parameters` {name: array} (multiples of 1/256), `names`;
    outputs `cases` for w in (1.0, 0.5) x epoch in (0, 200) (alpha_t 0 and
    0.05 of the 400-epoch config) with `value` (float64), `alpha_t`,
    `lambda_per_bin`, `grad` {name: d value / d p} (parameters without a
    gradient in `not_regularized`), `lambda_rows` (per parameter the lambda
    of each dim-0 index; w = 0.5 only); `values` (value and alpha_t at more
    epochs). The rule is in its `settings.rule`.

`us3l_schedule.json`: an 8-epoch x 5-batch run (batch 2, 32x32 random
images) of the official loop, SimCLR config with TRAIN.EPOCHS 8:
`settings`; `rules` (text); `sampler_phases` (per range of epochs: number
of widths, max, min, the [a, b] of the uniform draws) for this run and
`sampler_phases_released_config` (400 epochs); `sampler_bugs`;
`iterations` [{epoch, batch, widths (drawn, seed 100), uniform_calls
[[a, b, value]], optimizer_steps, lr [per step], ema_updates,
ema_at_widths, events [the recorded calls in order]}]; `lr_per_step`
[{epoch, batch, width_index, width, lr}]; `lr_per_epoch`;
`lr_released_config`; `group_reg_alpha` {epoch, alpha_t, lambda_per_bin}
and `group_reg_alpha_released_config`; `totals`.

`us3l_step.npz` + `us3l_step.json` (+ `us3l_step_before.pth.tar`): ONE
official training iteration (workers/ssl.py `train` on one batch) of
SimCLR_Momentum at epoch 380 of the 400-epoch SimCLR config (phase 4 of
SAMPLE_SCHEDULER A: widths in [0.25, 1.0]; lr 0.0031; GroupReg alpha_t
0.05; a late epoch: larger steps amplify rounding through the three chained
updates of this tiny network, see `epoch_choice` in the JSON), widths forced to [1.0, 0.625, 0.25] (the sampler gives [max, min,
uniform]; only the uniform draw is replaced by 0.625). The state before the
step is the fixture `tests/fixtures/convert/us3l_simclr_cifar_resnet18_
tiny.pth.tar` (encoder_q and predictor) plus `us3l_step_before.pth.tar`,
which holds only `module.encoder_k.*` (seeded `make_convert_fixtures.
randomize`; the fixture leaves the momentum encoder out), saved as
workers/ssl.py saves ({epoch, arch, state_dict, optimizer}). The npz holds
`view1`, `view2` (batch 4, [0, 1] NHWC float32; the model saw them
CIFAR-normalized, NCHW: images[0], images[1]); `state_keys` (every
`model.module.state_dict()` key, no `module.`, in order) with the aligned
float64 vectors `delta_norm` (||after - before||) and `after_norm`;
`float64/delta_norm`, `float64/after_norm` (the same step with model and
images in float64, only to judge float32 noise: median relative difference
2.5e-6, at most 1.5e-3); `after/<key>` for a subset. The JSON holds the
settings, `per_width` [{width, role, base_loss | distill_loss, reg_loss,
total, lr, params_with_grad, ema_update}], the recorded `events`, the
float64 per-width values, checks and notes.

Facts of the official code the numbers rest on (workers/ssl.py train):

* per batch: `widths_train = generate_widths_train(config, epoch)`, sorted
  largest first; for each width: set `encoder_q`'s width_mult (DISTILL: the
  momentum encoder stays at 1.0), forward, loss, `loss += GroupReg(
  width_mult, epoch)`, `optimizer.zero_grad()`, backward,
  `scaler.step(optimizer)` (= optimizer.step()): ONE SGD STEP PER WIDTH
  (3 per batch after the first quarter, 1 before), the momentum buffer
  carrying over between widths; parameters without a gradient (encoder_k
  always, the predictor at width 1.0) are skipped by SGD;
* the max width (`width_mult == max(widths_train)`): SimCLR_Momentum's
  forward with momentum_update=True: encoder_q(x1), encoder_q(x2) (no
  predictor), then under no_grad the EMA k = m k + (1 - m) q over the
  PARAMETERS (m = 0.99 constant) from encoder_q as the previous batch's
  last step left it, then encoder_k(x1), encoder_k(x2) at width 1.0; loss
  = LOSS(output, teacher_target) (InfoNCEv2_distill, T 0.5); the detached
  encoder_k outputs are kept as the batch's teacher_target. The EMA runs
  once per batch (MOMENTUM_UPDATE False);
* smaller widths: momentum_update=False: predictor(encoder_q(x)) of both
  views, loss = DISTILL_LAMBDA * CosineSimilarity(output, teacher_target)
  (the momentum encoder's, not the online max-width network's outputs);
* GroupReg (MODEL.OFA.REGULARIZER True; SGD weight decay then set to 0.0):
  sum over parameters of sum(lambda_mask * p^2) on the FULL tensors at
  every width (the width only decides whether the predictor is included:
  not when width_mult == 1.0); encoder_k and proj_conv never; 1-D tensors
  (BN weights/biases, every bias, the heads' BatchNorm1d) and 4-D conv
  kernels binned in 8 groups along dim 0 (out channels), the last group
  taking the remainder, a tensor with fewer entries than bins entirely in
  the last bin; 2-D Linear weights uniform lambda; bin i's lambda =
  lambda * (1 - alpha_t * i), alpha_t = alpha * epoch / (EPOCHS // 2) up to
  EPOCHS // 2, then alpha (lambda 5e-5, alpha 0.05);
* lr: adjust_learning_rate once per EPOCH before train(): BASE_LR * 0.5 *
  (1 + cos(pi * epoch / EPOCHS)) (warmup 0), the same for every batch and
  width; MIN_LR and WARMUP_LR unused;
* SAMPLE_SCHEDULER A: epoch // (EPOCHS // 4) + 1 = 1: [1.0] only; else
  min_width = 0.25 + (4 - epid) * 0.75 / 3 (0.75, 0.5, 0.25) and SANDWICH
  gives [1.0, min_width, U(min_width, 1.0)];
* BN: USBatchNorm2d keeps no running statistics (track_running_stats
  False), always batch statistics; the heads' BatchNorm1d layers have
  running statistics shared by all widths, updated by every train-mode
  forward (encoder_q's 2 per width, the predictor's 2 per sub-width,
  encoder_k's 2 per batch).

Official-code defects the goldens document (`us3l_schedule.json`
`sampler_bugs`): the SANDWICH branch prepends [max, min] INSIDE its loop
over NUM_SAMPLE_TRAINING - 2, so 2 samples give [] (train() then fails at
max([])), 4 give [1, 1, r1, r2, .25, .25] and 5 nine widths with max and
min three times (each max copy is a teacher pass: another EMA update, a new
teacher_target and another base-loss step); SAMPLE_SCHEDULER A with EPOCHS
not divisible by 4 has a fifth phase whose min_width is 0.25 - 0.25 = 0.0
(EPOCHS 10: epochs 8-9 sample from [0, 1]), and EPOCHS < 4 divides by zero.
"""

import argparse
import importlib
import importlib.util
import json
import logging
import math
import os
import random
import sys
import types
import warnings

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_convert_fixtures as fixtures  # noqa: E402  (same folder)
import make_us3l_fixture as us3l_fixture  # noqa: E402  (same folder)

SEED = 20261216
N, DIM = 6, 8
SIMCLR_CONFIG = os.path.join("configs", "cifar",
                             "us_resnet18_simclr_featdistill_cifar.yaml")
BYOL_CONFIG = os.path.join("configs", "cifar",
                           "us_resnet18_byol_featdistill_cifar.yaml")
FIXTURE = os.path.join("tests", "fixtures", "convert",
                       "us3l_simclr_cifar_resnet18_tiny.pth.tar")
# The fixture's head (make_us3l_fixture._config): SSL.SETTING.DIM 16,
# HIDDEN_DIM 32 instead of the config's 256 / 2048 (a 2048 x 2048 Linear
# alone is 16 MB).
TINY_DIM, TINY_HIDDEN = 16, 32
STEP_EPOCH = 380            # of the config's 400: SAMPLE_SCHEDULER A phase 4
STEP_WIDTHS = [1.0, 0.625, 0.25]
STEP_BATCH = 4
SCHEDULE_EPOCHS, SCHEDULE_BATCHES, SCHEDULE_BATCH = 8, 5, 2


# ---------------------------------------------------------------------------
# environment


def _load_init_package(root, name):
    """Imports a package of the checkout with its own `__init__.py`."""
    directory = os.path.join(root, *name.split("."))
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(directory, "__init__.py"),
        submodule_search_locations=[directory])
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _load_top_module(root, name):
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(root, name + ".py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _logging_information(logger, cfg, info):
    """utils/train.py's logging_information on rank 0 (utils/train.py itself
    imports utils/ddp.py, which imports PIL)."""
    logger.info(info)


def setup_environment(root):
    """The shims named in the docstring, then the official modules."""
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore", category=FutureWarning,
                            module=r"torch\.cuda\.amp.*")
    warnings.filterwarnings("ignore", message=r".*torch\.cuda\.amp.*")
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    try:
        import turtle  # noqa: F401  (slimmable_ops imports it, unused)
    except ImportError:
        stub = types.ModuleType("turtle")
        stub.width = None
        sys.modules["turtle"] = stub
    six = types.ModuleType("torch._six")
    six.string_classes = (str, bytes)
    sys.modules["torch._six"] = six
    sys.modules["datasets"] = types.ModuleType("datasets")  # torchvision
    mods = {"config": _load_top_module(root, "config")}
    mods["meters"] = _load_init_package(root, "meters")
    mods["losses"] = _load_init_package(root, "losses")
    mods.update(fixtures.load_package(root, "models.OFA",
                                      ["slimmable_ops", "us_cifar_resnet"]))
    fixtures.load_package(root, "utils", [])
    sys.modules["utils"].logging_information = _logging_information
    mods.update(fixtures.load_package(root, "utils", ["forward_hook"]))
    mods["ssl_algorithms"] = _load_init_package(root, "utils.ssl_algorithms")
    mods.update(fixtures.load_package(root, "utils", ["builder"]))
    mods.update(fixtures.load_package(root, "workers", ["ssl"]))
    for name in ("InfoNCEv2_distill", "CosineSimilarity"):
        mods[name] = importlib.import_module("losses.criterions." + name)
    mods["GroupReg"] = importlib.import_module("losses.regularizers.GroupReg")
    # the fixtures' 1/8-channel ResNet-18 (make_us3l_fixture.py)
    us3l_fixture._scale_channels(mods["slimmable_ops"],
                                 [mods["us_cifar_resnet"]],
                                 us3l_fixture.CHANNEL_DIVISOR)
    return mods


def official_config(mods, root, name, **overrides):
    """config.get_config on the checkout's yaml, then update_config."""
    # get_config only stores `output` in config.OUTPUT (nothing is written)
    args = argparse.Namespace(config=os.path.join(root, name), output="")
    config = mods["config"].get_config(args)
    for key, value in overrides.items():
        mods["config"].update_config(config, key, value)
    return config


def tolist(t):
    a = t.detach().cpu().numpy() if torch.is_tensor(t) else np.asarray(t)
    if a.ndim == 0:
        return float(a)
    return [tolist(x) for x in a]


def _dumps(obj, level=0):
    """json.dumps(obj, indent=1), but a list of numbers stays on one line
    (the per-number lines of indent=1 tripled the files)."""
    pad, inner = " " * level, " " * (level + 1)
    if isinstance(obj, dict) and obj:
        items = [f"{inner}{json.dumps(str(k))}: {_dumps(v, level + 1)}"
                 for k, v in obj.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(obj, (list, tuple)) and obj:
        if all(isinstance(x, (int, float)) and not isinstance(x, bool)
               for x in obj):
            return json.dumps(list(obj))
        items = [inner + _dumps(v, level + 1) for v in obj]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(obj)


def write_json(path, obj):
    text = _dumps(obj)
    assert json.loads(text) == json.loads(json.dumps(obj))
    with open(path, "w") as f:
        f.write(text + "\n")


def assert_finite(obj, where):
    if isinstance(obj, dict):
        for k, v in obj.items():
            assert_finite(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            assert_finite(v, f"{where}[{i}]")
    elif isinstance(obj, float):
        if not math.isfinite(obj):
            raise ValueError(f"non-finite value at {where}")


def config_settings(config):
    ofa, tr = config.MODEL.OFA, config.TRAIN
    return {
        "SSL.TYPE": config.SSL.TYPE, "SSL.SETTING.T": config.SSL.SETTING.T,
        "SSL.SETTING.DIM": config.SSL.SETTING.DIM,
        "SSL.SETTING.HIDDEN_DIM": config.SSL.SETTING.HIDDEN_DIM,
        "SSL.SETTING.MOMENTUM": config.SSL.SETTING.MOMENTUM,
        "SSL.SETTING.PREDICTOR": config.SSL.SETTING.PREDICTOR,
        "TRAIN.LOSS.CRITERION.NAME": tr.LOSS.CRITERION.NAME,
        "TRAIN.LOSS.REGULARIZER.NAME": tr.LOSS.REGULARIZER.NAME,
        "TRAIN.LOSS.LAMBDA": tr.LOSS.LAMBDA,
        "MODEL.OFA.DISTILL": ofa.DISTILL,
        "MODEL.OFA.DISTILL_CRITERION": ofa.DISTILL_CRITERION,
        "MODEL.OFA.DISTILL_LAMBDA": ofa.DISTILL_LAMBDA,
        "MODEL.OFA.DISTILL_STUDENT_TEMP": ofa.DISTILL_STUDENT_TEMP,
        "MODEL.OFA.DISTILL_TEACHER_TEMP": ofa.DISTILL_TEACHER_TEMP,
        "MODEL.OFA.MOMENTUM_UPDATE": ofa.MOMENTUM_UPDATE,
        "MODEL.OFA.WIDTH_MULT_RANGE": list(ofa.WIDTH_MULT_RANGE),
        "MODEL.OFA.NUM_SAMPLE_TRAINING": ofa.NUM_SAMPLE_TRAINING,
        "MODEL.OFA.SANDWICH": ofa.SANDWICH,
        "MODEL.OFA.SAMPLE_SCHEDULER": ofa.SAMPLE_SCHEDULER,
        "MODEL.OFA.REGULARIZER": ofa.REGULARIZER,
        "MODEL.OFA.REGULARIZER_CRITERION": ofa.REGULARIZER_CRITERION,
        "MODEL.OFA.REGULARIZER_LAMBDA": ofa.REGULARIZER_LAMBDA,
        "MODEL.OFA.REGULARIZER_DECAY_ALPHA": ofa.REGULARIZER_DECAY_ALPHA,
        "MODEL.OFA.REGULARIZER_DECAY_TYPE": ofa.REGULARIZER_DECAY_TYPE,
        "MODEL.OFA.REGULARIZER_DECAY_BINS": ofa.REGULARIZER_DECAY_BINS,
        "MODEL.OFA.REGULARIZER_WARMUP_EPOCHS": ofa.REGULARIZER_WARMUP_EPOCHS,
        "TRAIN.EPOCHS": tr.EPOCHS,
        "TRAIN.LR_SCHEDULER.BASE_LR": tr.LR_SCHEDULER.BASE_LR,
        "TRAIN.LR_SCHEDULER.TYPE": tr.LR_SCHEDULER.TYPE,
        "TRAIN.LR_SCHEDULER.WARMUP_EPOCHS": tr.LR_SCHEDULER.WARMUP_EPOCHS,
        "TRAIN.OPTIMIZER.NAME": tr.OPTIMIZER.NAME,
        "TRAIN.OPTIMIZER.MOMENTUM": tr.OPTIMIZER.MOMENTUM,
        "TRAIN.OPTIMIZER.WEIGHT_DECAY": tr.OPTIMIZER.WEIGHT_DECAY,
        "TRAIN.USE_AMP": tr.USE_AMP, "SEED": config.SEED,
    }


# ---------------------------------------------------------------------------
# 1. losses


def _raw(g, names, shape=(N, DIM)):
    return {n: torch.randn(*shape, generator=g) for n in names}


def _leaf(raw, name, dtype):
    return raw[name].detach().to(dtype).clone().requires_grad_(True)


def nt_xentv2_case(mods, config, g):
    raw = _raw(g, ("q1", "q2", "k1", "k2"))
    T = config.SSL.SETTING.T
    nt_xentv2 = mods["InfoNCEv2_distill"].nt_xentv2

    def run(dtype):
        q1, q2 = _leaf(raw, "q1", dtype), _leaf(raw, "q2", dtype)
        k1, k2 = (raw[n].to(dtype) for n in ("k1", "k2"))
        # SimCLR_Momentum.forward at the largest width returns
        # [f1, f2], [f1_teacher.detach(), f2_teacher.detach()]
        output, teacher_target = [q1, q2], [k1.detach(), k2.detach()]
        criterion = mods["losses"].LOSS(config)  # workers/ssl.py: LOSS(config)
        loss = criterion(output, teacher_target)
        loss.backward()
        with torch.no_grad():
            terms = [nt_xentv2(q1, k2, T), nt_xentv2(q2, k1, T)]
        return loss, q1.grad, q2.grad, terms, criterion

    loss, g1, g2, terms, criterion = run(torch.float32)
    loss64, _, _, terms64, _ = run(torch.float64)
    return {
        "name": "nt_xentv2",
        "settings": {
            "config": SIMCLR_CONFIG,
            "criterion": "losses.LOSS(config) -> losses.criterions."
                         f"{config.TRAIN.LOSS.CRITERION.NAME}.Criterion "
                         f"(name {criterion.criterion.name!r}); "
                         "TRAIN.LOSS.REGULARIZER.NAME is empty, so LOSS "
                         "adds 0.0 * losses.regularizers.basic (which "
                         "returns 0; the config's TRAIN.LOSS.LAMBDA 1e-4 is "
                         "not used)",
            "T": float(config.SSL.SETTING.T), "N": N, "dim": DIM,
            "call": "loss = criterion([q1, q2], [k1.detach(), k2.detach()])"
                    " (workers/ssl.py, width == max_width)",
            "formula": "mean over the pairs (student s, teacher t), s != t, "
                       "in loop order [(q1, k2), (q2, k1)], of nt_xentv2("
                       "f_s, f_t, T): f_s, f_t = F.normalize(dim=1); x = "
                       "cat([f_s, f_t]) [2N, dim]; S = exp(x @ x.T / T) with "
                       "the diagonal removed [2N, 2N-1]; pos = exp(sum(f_s * "
                       "f_t, -1) / T) repeated for both halves; loss = "
                       "mean_rows(-log(pos / S.sum(-1))). The denominators "
                       "include student-student and teacher-teacher pairs.",
            "detached": "k1, k2 (the momentum encoder's outputs: computed "
                        "under no_grad and .detach()ed by the forward, "
                        "detached again by the criterion); gradients reach "
                        "q1, q2 through every row, teacher rows included",
            "inputs_are": "raw (unnormalized) projector outputs; the "
                          "official nt_xentv2 normalizes inside",
        },
        "inputs": {k: tolist(v) for k, v in raw.items()},
        "outputs": {"loss": float(loss.detach()),
                    "terms": [float(t) for t in terms],
                    "grad_q1": tolist(g1), "grad_q2": tolist(g2),
                    "float64": {"loss": float(loss64.detach()),
                                "terms": [float(t) for t in terms64]}},
    }


def _cosine_terms(mods, pred, target):
    cos = nn.CosineSimilarity(dim=1)
    with torch.no_grad():
        # the criterion's loop: for iq, q in enumerate(target): for v in
        # range(len(pred)): if v != iq: -cos(pred[v], q).mean()
        return [float(-cos(pred[1], target[0]).mean()),
                float(-cos(pred[0], target[1]).mean())]


def byol_case(mods, config, g):
    raw = _raw(g, ("p1", "p2", "z1", "z2"))

    def run(dtype):
        p1, p2 = _leaf(raw, "p1", dtype), _leaf(raw, "p2", dtype)
        z1, z2 = (raw[n].to(dtype) for n in ("z1", "z2"))
        # BYOL.forward at the largest width: [predictor(q1), predictor(q2)],
        # [encoder_k(x1).detach(), encoder_k(x2).detach()]
        criterion = mods["losses"].LOSS(config)
        loss = criterion([p1, p2], [z1.detach(), z2.detach()])
        loss.backward()
        return loss, p1.grad, p2.grad, _cosine_terms(mods, [p1, p2], [z1, z2])

    loss, g1, g2, terms = run(torch.float32)
    loss64, _, _, terms64 = run(torch.float64)
    return {
        "name": "byol",
        "settings": {
            "config": BYOL_CONFIG,
            "criterion": "losses.LOSS(config) -> losses.criterions."
                         f"{config.TRAIN.LOSS.CRITERION.NAME}.Criterion",
            "N": N, "dim": DIM,
            "call": "loss = criterion([p1, p2], [z1.detach(), z2.detach()])"
                    " with p = predictor(encoder_q(x)), z = encoder_k(x) "
                    "(workers/ssl.py, width == max_width)",
            "formula": "(-cos(p2, z1).mean() - cos(p1, z2).mean()) / 2 "
                       "(nn.CosineSimilarity(dim=1), eps 1e-8; mean over the "
                       "2 cross-view terms; range [-1, 1]; NOT 2 - 2 cos: "
                       "the file's loss_fn is unused)",
            "term_order": ["(p2, z1)", "(p1, z2)"],
            "detached": "z1, z2 (momentum targets)",
        },
        "inputs": {k: tolist(v) for k, v in raw.items()},
        "outputs": {"loss": float(loss.detach()), "terms": terms,
                    "grad_p1": tolist(g1), "grad_p2": tolist(g2),
                    "float64": {"loss": float(loss64.detach()),
                                "terms": terms64}},
    }


def cosine_distill_case(mods, config, g):
    raw = _raw(g, ("s1", "s2", "k1", "k2"))
    epoch = STEP_EPOCH

    def run(dtype):
        s1, s2 = _leaf(raw, "s1", dtype), _leaf(raw, "s2", dtype)
        k1, k2 = (raw[n].to(dtype) for n in ("k1", "k2"))
        distill_criterion = importlib.import_module(
            "losses.criterions." + config.MODEL.OFA.DISTILL_CRITERION
        ).Criterion(config)
        teacher_target = [k1.detach(), k2.detach()]
        loss = config.MODEL.OFA.DISTILL_LAMBDA * distill_criterion(
            [s1, s2], teacher_target, epoch)
        loss.backward()
        return loss, s1.grad, s2.grad, _cosine_terms(mods, [s1, s2],
                                                     [k1, k2])

    loss, g1, g2, terms = run(torch.float32)
    loss64, _, _, terms64 = run(torch.float64)
    ofa = config.MODEL.OFA
    return {
        "name": "cosine_distill",
        "settings": {
            "config": SIMCLR_CONFIG,
            "criterion": f"losses.criterions.{ofa.DISTILL_CRITERION}"
                         ".Criterion(config)",
            "DISTILL_LAMBDA": float(ofa.DISTILL_LAMBDA), "N": N, "dim": DIM,
            "call": "loss = DISTILL_LAMBDA * distill_criterion(output, "
                    "teacher_target, epoch) (workers/ssl.py, width < "
                    "max_width)",
            "student": "output = [predictor(encoder_q(x1)), predictor("
                       "encoder_q(x2))] at the sub-width (SimCLR_Momentum."
                       "forward with momentum_update=False; BYOL uses "
                       "predictor_new there)",
            "teacher": "teacher_target of this batch's max-width pass: "
                       "[encoder_k(x1), encoder_k(x2)] (the momentum "
                       "encoder at width 1.0, after this batch's EMA "
                       "update), detached",
            "pairing": "cross-view only: (student view 2, teacher view 1), "
                       "(student view 1, teacher view 2)",
            "term_order": ["(s2, k1)", "(s1, k2)"],
            "reduction": "MEAN of the 2 view terms (total / n_loss_terms), "
                         "each term the batch mean of -cos",
            "formula": "(-cos(s2, k1).mean() - cos(s1, k2).mean()) / 2",
            "temperatures": {
                "DISTILL_STUDENT_TEMP": float(ofa.DISTILL_STUDENT_TEMP),
                "DISTILL_TEACHER_TEMP": float(ofa.DISTILL_TEACHER_TEMP),
                "used": False,
                "note": "set in the config but never read by "
                        "CosineSimilarity (its epoch argument is ignored "
                        "too)"},
            "epoch_argument": epoch,
        },
        "inputs": {k: tolist(v) for k, v in raw.items()},
        "outputs": {"loss": float(loss.detach()), "terms": terms,
                    "grad_s1": tolist(g1), "grad_s2": tolist(g2),
                    "float64": {"loss": float(loss64.detach()),
                                "terms": terms64}},
    }


def _alpha_t(reg, epoch):
    """The decay alpha GroupReg's linear cal_lambda used at this epoch:
    1 - cal_lambda(1, epoch) / lambda (rounded off at 1e-12)."""
    return round(1.0 - reg.cal_lambda(1, epoch) / reg.reg_lambda, 12)


def group_reg_model(g):
    """Parameters named and shaped like every kind GroupReg treats apart.

    Plain torch layers (GroupReg only reads names and tensor ranks); wrapped
    like the training model (DDP -> `module.` prefix)."""
    block = nn.Module()
    block.conv1 = nn.Conv2d(4, 4, 1, bias=False)    # 4 out channels < 8 bins
    block.bn1 = nn.BatchNorm2d(4)
    enc = nn.Module()
    enc.conv1 = nn.Conv2d(8, 16, 3, bias=False)      # [16, 8, 3, 3]
    enc.bn1 = nn.BatchNorm2d(16)
    enc.layer1 = nn.Sequential(block)
    enc.fc = nn.Sequential(nn.Linear(16, 32), nn.BatchNorm1d(32))
    pred = nn.Sequential(nn.Linear(4, 8, bias=False), nn.BatchNorm1d(8),
                         nn.ReLU(inplace=True), nn.Linear(8, 12))
    enc_k = nn.Module()
    enc_k.bn1 = nn.BatchNorm2d(4)
    top = nn.Module()
    top.encoder_q, top.encoder_k, top.predictor = enc, enc_k, pred
    top.proj_conv = nn.ModuleDict(
        {"layer2_1_bn2": nn.Conv2d(4, 4, 1, bias=False)})
    with torch.no_grad():
        for name, p in top.named_parameters():
            if "bn" in name or name in ("encoder_q.fc.1.weight",
                                        "predictor.1.weight"):
                if name.endswith("weight"):
                    p.copy_(1.0 + 0.2 * torch.randn(p.shape, generator=g))
                    continue
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
        for p in top.parameters():  # multiples of 1/256: short in the JSON
            p.copy_(torch.round(p * 256.0) / 256.0)
    return nn.DataParallel(top)


def group_reg_case(mods, config, g):
    model = group_reg_model(g)
    names = [n for n, _ in model.named_parameters()]
    Regularizer = mods["GroupReg"].Regularizer
    ofa = config.MODEL.OFA
    ramp = config.TRAIN.EPOCHS // 2
    cases, values = [], []

    def evaluate(m, width, epoch):
        m.zero_grad(set_to_none=True)
        reg = Regularizer(config, m)
        value = reg(width_mult=width, epoch=epoch)
        value.backward()
        return reg, value

    for width in (1.0, 0.5):
        for epoch in (0, ramp):
            reg, value = evaluate(model, width, epoch)
            grads = {n: tolist(p.grad) for n, p in model.named_parameters()
                     if p.grad is not None}
            no_grad = [n for n, p in model.named_parameters()
                       if p.grad is None]
            # the same call on all-ones parameters: grad / 2 = lambda_mask
            # (in float64, so that the lambdas come out exact)
            ones = group_reg_model(torch.Generator().manual_seed(0)).double()
            with torch.no_grad():
                for p in ones.parameters():
                    p.fill_(1.0)
            evaluate(ones, width, epoch)
            rows = {}
            for n, p in ones.named_parameters():
                if width == 1.0:  # the same rows less the predictor
                    break
                mask = (p.grad / 2 if p.grad is not None
                        else torch.zeros_like(p))
                flat = mask.reshape(mask.shape[0], -1)
                assert torch.all(flat == flat[:, :1]), n
                rows[n] = [float(x) for x in flat[:, 0]]
            alpha_t = _alpha_t(reg, epoch)
            cases.append({
                "width_mult": width, "epoch": epoch,
                "alpha_t": float(alpha_t),
                "lambda_per_bin": [float(reg.cal_lambda(i, epoch))
                                   for i in range(reg.decay_bins)],
                "value": float(value.detach()),
                "value_dtype": str(value.dtype).replace("torch.", ""),
                "grad": grads, "not_regularized": no_grad,
                "lambda_rows": rows})
    for width in (1.0, 0.5):
        for epoch in (0, 50, 100, 150, 200, 399):
            reg, value = evaluate(model, width, epoch)
            values.append({"width_mult": width, "epoch": epoch,
                           "alpha_t": _alpha_t(reg, epoch),
                           "value": float(value.detach())})
    return {
        "name": "group_reg",
        "settings": {
            "config": SIMCLR_CONFIG,
            "regularizer": "losses.regularizers.GroupReg.Regularizer(config,"
                           " model); reg_loss = reg(width_mult=w, "
                           "epoch=epoch), added to each width's loss before "
                           "that width's backward/step",
            "lambda": float(ofa.REGULARIZER_LAMBDA),
            "alpha": float(ofa.REGULARIZER_DECAY_ALPHA),
            "bins": int(ofa.REGULARIZER_DECAY_BINS),
            "decay_type": ofa.REGULARIZER_DECAY_TYPE,
            "warmup_epochs": int(ofa.REGULARIZER_WARMUP_EPOCHS),
            "total_epochs": int(config.TRAIN.EPOCHS),
            "ramp_epochs": ramp,
            "rule": [
                "value = sum over the selected parameters of "
                "sum(lambda_mask * p ** 2) (no 1/2, no mean); lambda_mask is "
                "float64, so the value is a float64 tensor",
                "selection: every model.named_parameters() entry except "
                "names containing 'encoder_k' or 'proj_conv'; names "
                "containing 'predictor' are skipped only when width_mult == "
                "1.0 (exactly); the FULL tensors are penalized whatever the "
                "width (width_mult only toggles the predictor)",
                "1-D tensors (BN weights/biases, BatchNorm1d of the heads, "
                "every Linear/conv bias): dim0 cut into `bins` groups of "
                "group_dim = dim // bins channels, bin i = [i*group_dim, "
                "(i+1)*group_dim), the last bin runs to dim (takes the "
                "remainder); channels of bin i get cal_lambda(i, epoch)",
                "4-D tensors (conv kernels): the same bins along the OUTPUT "
                "channels only (dim 0; the input-channel group size is "
                "computed and unused)",
                "other ranks (2-D Linear weights): lambda everywhere",
                "dim < bins: group_dim = 0, bins 0..bins-2 are empty and the "
                "whole tensor gets the LAST bin's lambda cal_lambda(bins-1)",
                "cal_lambda(i, epoch): lambda if epoch < warmup_epochs; else "
                "alpha_t = alpha * (epoch - warmup) / (ramp - warmup) for "
                "epoch < ramp = total_epochs // 2, alpha after; linear: "
                "lambda * (1 - alpha_t * i) (channels in later bins get the "
                "SMALLER penalty); exp: lambda * alpha_t ** i",
                "workers/ssl.py sets TRAIN.OPTIMIZER.WEIGHT_DECAY to 0.0 "
                "when MODEL.OFA.REGULARIZER is on: GroupReg replaces SGD's "
                "weight decay",
            ],
            "parameters": "plain torch layers named like the training model "
                          "(nn.DataParallel -> 'module.'): encoder_q conv1 "
                          "[16, 8, 3, 3], bn1 [16], layer1.0.conv1 [4, 4, "
                          "1, 1] and layer1.0.bn1 [4] (fewer channels than "
                          "bins), fc.0 Linear [32, 16] + bias [32], fc.1 "
                          "BatchNorm1d [32]; predictor.0 Linear [8, 4] (no "
                          "bias), predictor.1 BatchNorm1d [8], predictor.3 "
                          "Linear [12, 8] + bias [12] (not divisible by the "
                          "bins); encoder_k.bn1 and proj_conv (never "
                          "regularized); the heads are shortened",
            "grad": "d value / d parameter for every parameter that gets "
                    "one (listed in not_regularized otherwise: grad None)",
            "lambda_rows": "per parameter, the lambda of each dim-0 index "
                           "(official call on all-ones parameters: grad / "
                           "2); in the width 0.5 cases only (width 1.0: "
                           "the same without the predictor)",
        },
        "inputs": {"parameters": {n: tolist(p)
                                  for n, p in model.named_parameters()},
                   "names": names},
        "outputs": {"cases": cases, "values": values},
    }


def make_losses(mods, root, out, seed):
    simclr = official_config(mods, root, SIMCLR_CONFIG)
    byol = official_config(mods, root, BYOL_CONFIG)
    g = torch.Generator().manual_seed(seed)
    cases = [nt_xentv2_case(mods, simclr, g), byol_case(mods, byol, g),
             cosine_distill_case(mods, simclr, g),
             group_reg_case(mods, simclr, g)]
    obj = {"source": "official US3L losses, run by "
                     "tools/make_golden_us3l.py",
           "settings": {"simclr_config": config_settings(simclr),
                        "byol_config": config_settings(byol)},
           "cases": cases}
    assert_finite(obj, "us3l_losses")
    write_json(os.path.join(out, "us3l_losses.json"), obj)
    return obj


# ---------------------------------------------------------------------------
# driving the official training loop


class RandomProxy:
    """Stands in for the `random` module inside workers/ssl.py: records the
    sampler's `random.uniform(a, b)` calls; forced values replace the draw
    (the real draw otherwise)."""

    def __init__(self, forced=None):
        self.forced = list(forced or [])
        self.calls = []

    def uniform(self, a, b):
        value = self.forced.pop(0) if self.forced else random.uniform(a, b)
        self.calls.append([float(a), float(b), float(value)])
        return value


class Recorder:
    """Instrumentation of the official loop; it changes no number."""

    def __init__(self, mods, model, optimizer, forced=None):
        self.ssl = mods["ssl"]
        self.mods = mods
        self.model = model
        self.optimizer = optimizer
        self.iterations = []
        self.random = RandomProxy(forced)
        self._saved = []

    def width(self):
        return float(self.model.module.encoder_q.conv1.width_mult)

    def event(self, kind, **fields):
        self.iterations[-1]["events"].append(dict(kind=kind, **fields))

    def __enter__(self):
        ssl = self.ssl
        official_generate = ssl.generate_widths_train
        rec = self

        def generate(config, epoch=-1):
            start = len(rec.random.calls)
            widths = official_generate(config, epoch)
            rec.iterations.append({
                "epoch": epoch, "widths": [float(w) for w in widths],
                "uniform_calls": rec.random.calls[start:], "events": []})
            return widths

        self._patch(ssl, "generate_widths_train", generate)
        self._patch(ssl, "random", self.random)

        inner = self.model.module
        official_ema = inner._momentum_update_key_encoder

        def ema():
            rec.event("ema_update", width=rec.width())
            return official_ema()

        inner._momentum_update_key_encoder = ema
        self._saved.append((inner, "_momentum_update_key_encoder", None))

        official_step = self.optimizer.step

        def step(*args, **kwargs):
            n_grad = sum(p.grad is not None for group in
                         rec.optimizer.param_groups for p in group["params"])
            rec.event("optimizer_step", width=rec.width(),
                      lr=[float(x["lr"]) for x in rec.optimizer.param_groups],
                      weight_decay=[float(x["weight_decay"]) for x in
                                    rec.optimizer.param_groups],
                      params_with_grad=int(n_grad))
            return official_step(*args, **kwargs)

        self.optimizer.step = step
        self._saved.append((self.optimizer, "step", None))

        for module, label in ((self.mods["CosineSimilarity"], "distill_loss"),
                              (self.mods["GroupReg"], "reg_loss")):
            cls = (module.Criterion if label == "distill_loss"
                   else module.Regularizer)
            self._patch_call(cls, label)
        return self

    def _patch(self, obj, name, value):
        self._saved.append((obj, name, getattr(obj, name)))
        setattr(obj, name, value)

    def _patch_call(self, cls, label):
        official = cls.__call__
        rec = self

        def call(self_, *args, **kwargs):
            value = official(self_, *args, **kwargs)
            fields = {"width": rec.width(), "value": float(value.detach())}
            if label == "reg_loss":
                fields["width_mult_arg"] = float(kwargs["width_mult"])
                fields["epoch_arg"] = int(kwargs["epoch"])
            rec.event(label, **fields)
            return value

        self._saved.append((cls, "__call__", official))
        cls.__call__ = call

    def __exit__(self, *exc):
        for obj, name, value in reversed(self._saved):
            if value is None:
                delattr(obj, name)  # instance attribute over the method
            else:
                setattr(obj, name, value)
        return False


class CriterionProxy:
    """Records the base criterion's value; workers/ssl.py calls it as
    `criterion(output, teacher_target)` and logs `str(criterion)`."""

    def __init__(self, criterion, recorder):
        self.criterion = criterion
        self.recorder = recorder

    def __call__(self, *args, **kwargs):
        value = self.criterion(*args, **kwargs)
        self.recorder.event("base_loss", width=self.recorder.width(),
                            value=float(value.detach()))
        return value

    def __str__(self):
        return str(self.criterion)


def build_training(mods, config, model):
    """workers/ssl.py `ssl()` lines 88-108, without DDP and the loaders."""
    # DDP stand-in: a device-less DataParallel passes through and exposes
    # .module (and the 'module.' state-dict prefix) as DDP does.
    model = nn.DataParallel(model)
    if config.MODEL.OFA.REGULARIZER:
        mods["config"].update_config(config, "TRAIN.OPTIMIZER.WEIGHT_DECAY",
                                     0.0)
    criterion = mods["losses"].LOSS(config)
    optimizer = torch.optim.SGD(
        model.parameters(), config.TRAIN.LR_SCHEDULER.BASE_LR,
        momentum=config.TRAIN.OPTIMIZER.MOMENTUM,
        weight_decay=config.TRAIN.OPTIMIZER.WEIGHT_DECAY)
    scaler = mods["ssl"].GradScaler(enabled=config.TRAIN.USE_AMP)
    return model, criterion, optimizer, scaler


def quiet_logger():
    logger = logging.getLogger("us3l_golden")
    logger.addHandler(logging.NullHandler())
    logger.propagate = False
    return logger


def run_epoch(mods, config, model, criterion, optimizer, scaler, loader,
              epoch, recorder):
    """workers/ssl.py `ssl()`'s epoch loop body: adjust_learning_rate, then
    the official train()."""
    ssl = mods["ssl"]
    ssl.adjust_learning_rate(optimizer, config.TRAIN.LR_SCHEDULER.BASE_LR,
                             epoch, config)
    ssl.train(loader, model, CriterionProxy(criterion, recorder), optimizer,
              scaler, epoch, config, quiet_logger())


def build_model(mods, config):
    """utils/builder.build_ssl_model(models.us_cifar_resnet18, config)."""
    return mods["builder"].build_ssl_model(
        mods["us_cifar_resnet"].us_cifar_resnet18, config)


def cifar_to_torch(x):
    return us3l_fixture._to_torch(x, us3l_fixture.CIFAR_MEAN,
                                  us3l_fixture.CIFAR_STD)


# ---------------------------------------------------------------------------
# 2. schedule


def _widths_with(mods, config, epoch, proxy):
    ssl = mods["ssl"]
    saved = ssl.random
    ssl.random = proxy
    try:
        return [float(w) for w in ssl.generate_widths_train(config, epoch)]
    finally:
        ssl.random = saved


def sampler_rules(mods, config):
    """The official generate_widths_train at every epoch of a config: the
    uniform ranges it draws from (recorded, draws replaced by the middle)."""
    phases = []
    for epoch in range(config.TRAIN.EPOCHS):
        proxy = RandomProxy()
        proxy.uniform = (lambda a, b, p=proxy: p.calls.append(
            [float(a), float(b)]) or (a + b) / 2)
        widths = _widths_with(mods, config, epoch, proxy)
        entry = {"num_widths": len(widths), "max": max(widths),
                 "min": min(widths),
                 "uniform_ranges": proxy.calls}
        key = json.dumps(entry, sort_keys=True)
        if phases and phases[-1]["key"] == key:
            phases[-1]["epochs"][1] = epoch
        else:
            phases.append({"key": key, "epochs": [epoch, epoch], **entry})
    for p in phases:
        del p["key"]
    return phases


def sampler_bugs(mods, simclr):
    """Demonstrations of the official sampler's edge cases."""
    rng_state = random.getstate()
    random.seed(0)
    out = {}
    last = simclr.TRAIN.EPOCHS - 1
    for n in (2, 3, 4, 5):
        cfg = simclr.clone()
        cfg.defrost()
        cfg.MODEL.OFA.NUM_SAMPLE_TRAINING = n
        proxy = RandomProxy()
        widths = _widths_with(mods, cfg, last, proxy)
        out[f"num_sample_training_{n}"] = {
            "epoch": last, "widths": widths,
            "num_widths": len(widths),
            "uniform_calls": len(proxy.calls)}
    for epochs in (10, 3):
        cfg = simclr.clone()
        cfg.defrost()
        cfg.TRAIN.EPOCHS = epochs
        rows = []
        for epoch in range(epochs):
            proxy = RandomProxy()
            proxy.uniform = (lambda a, b, p=proxy: p.calls.append(
                [float(a), float(b)]) or (a + b) / 2)
            try:
                widths = _widths_with(mods, cfg, epoch, proxy)
                rows.append({"epoch": epoch, "min": min(widths),
                             "max": max(widths),
                             "uniform_ranges": proxy.calls})
            except ZeroDivisionError as e:
                rows.append({"epoch": epoch,
                             "error": f"ZeroDivisionError: {e}"})
        out[f"epochs_{epochs}"] = rows
    cfg = simclr.clone()
    cfg.defrost()
    cfg.MODEL.OFA.SANDWICH = False
    proxy = RandomProxy()
    out["sandwich_false"] = {"epoch": last,
                             "widths": _widths_with(mods, cfg, last, proxy),
                             "uniform_calls": len(proxy.calls)}
    random.setstate(rng_state)
    return out


def run_duplicate_widths(mods, root, rng):
    """One official iteration with NUM_SAMPLE_TRAINING 4 (last epoch of the
    400-epoch config): what the duplicated widths do."""
    config = official_config(mods, root, SIMCLR_CONFIG,
                             **{"SSL.SETTING.DIM": TINY_DIM,
                                "SSL.SETTING.HIDDEN_DIM": TINY_HIDDEN,
                                "MODEL.OFA.NUM_SAMPLE_TRAINING": 4})
    state = random.getstate()
    random.seed(config.SEED)
    torch.manual_seed(config.SEED)
    model = build_model(mods, config)
    model, criterion, optimizer, scaler = build_training(mods, config, model)
    views = [cifar_to_torch(rng.uniform(
        0, 1, (SCHEDULE_BATCH, 32, 32, 3)).astype(np.float32))
        for _ in range(2)]
    recorder = Recorder(mods, model, optimizer)
    with recorder:
        run_epoch(mods, config, model, criterion, optimizer, scaler,
                  [(views, torch.zeros(SCHEDULE_BATCH))],
                  config.TRAIN.EPOCHS - 1, recorder)
    random.setstate(state)
    it = recorder.iterations[0]
    kinds = [e["kind"] for e in it["events"]]
    return {"epoch": it["epoch"], "widths": it["widths"],
            "optimizer_steps": kinds.count("optimizer_step"),
            "ema_updates": kinds.count("ema_update"),
            "base_loss_calls": kinds.count("base_loss"),
            "distill_loss_calls": kinds.count("distill_loss"),
            "events": [{k: v for k, v in e.items() if k != "weight_decay"}
                       for e in it["events"]]}


def make_schedule(mods, root, out, seed):
    config = official_config(mods, root, SIMCLR_CONFIG,
                             **{"TRAIN.EPOCHS": SCHEDULE_EPOCHS,
                                "SSL.SETTING.DIM": TINY_DIM,
                                "SSL.SETTING.HIDDEN_DIM": TINY_HIDDEN})
    released = official_config(mods, root, SIMCLR_CONFIG)
    weight_decay_in_config = float(config.TRAIN.OPTIMIZER.WEIGHT_DECAY)
    # utils/train.py set_random_seed on rank 0
    random.seed(config.SEED)
    torch.manual_seed(config.SEED)
    model = build_model(mods, config)
    model, criterion, optimizer, scaler = build_training(mods, config, model)
    rng = np.random.default_rng(seed + 1)
    recorder = Recorder(mods, model, optimizer)
    with recorder:
        for epoch in range(SCHEDULE_EPOCHS):
            loader = []
            for _ in range(SCHEDULE_BATCHES):
                views = [cifar_to_torch(rng.uniform(
                    0, 1, (SCHEDULE_BATCH, 32, 32, 3)).astype(np.float32))
                    for _ in range(2)]
                loader.append((views, torch.zeros(SCHEDULE_BATCH)))
            run_epoch(mods, config, model, criterion, optimizer, scaler,
                      loader, epoch, recorder)
    duplicate_run = run_duplicate_widths(mods, root, rng)
    iterations, lr_per_step = [], []
    for i, it in enumerate(recorder.iterations):
        steps = [e for e in it["events"] if e["kind"] == "optimizer_step"]
        emas = [e for e in it["events"] if e["kind"] == "ema_update"]
        batch = i % SCHEDULE_BATCHES
        for j, s in enumerate(steps):
            lr_per_step.append({"epoch": it["epoch"], "batch": batch,
                                "width_index": j, "width": s["width"],
                                "lr": s["lr"][0]})
        iterations.append({
            "epoch": it["epoch"], "batch": batch, "widths": it["widths"],
            "uniform_calls": it["uniform_calls"],
            "optimizer_steps": len(steps),
            "lr": [s["lr"][0] for s in steps],
            "ema_updates": len(emas),
            "ema_at_widths": [e["width"] for e in emas],
            "events": it["events"]})
    reg = mods["GroupReg"].Regularizer(config, model)
    group_reg = {
        "epoch": list(range(SCHEDULE_EPOCHS)),
        "alpha_t": [_alpha_t(reg, e) for e in range(SCHEDULE_EPOCHS)],
        "lambda_per_bin": [[float(reg.cal_lambda(i, e))
                            for i in range(reg.decay_bins)]
                           for e in range(SCHEDULE_EPOCHS)]}
    reg400 = mods["GroupReg"].Regularizer(released, model)
    group_reg_released = {
        "epoch": [0, 1, 50, 100, 199, 200, 399],
        "alpha_t": [_alpha_t(reg400, e) for e in (0, 1, 50, 100, 199, 200,
                                                   399)]}
    ssl = mods["ssl"]

    class _Opt:
        param_groups = [{"lr": None}]

    def lr_at(cfg, epoch):
        ssl.adjust_learning_rate(_Opt, cfg.TRAIN.LR_SCHEDULER.BASE_LR, epoch,
                                 cfg)
        return float(_Opt.param_groups[0]["lr"])

    obj = {
        "source": "official US3L workers/ssl.py (adjust_learning_rate, "
                  "generate_widths_train, train) run by "
                  "tools/make_golden_us3l.py",
        "settings": dict(
            config_settings(config), config=SIMCLR_CONFIG,
            overrides={"TRAIN.EPOCHS": SCHEDULE_EPOCHS,
                       "SSL.SETTING.DIM": TINY_DIM,
                       "SSL.SETTING.HIDDEN_DIM": TINY_HIDDEN},
            batches_per_epoch=SCHEDULE_BATCHES, batch_size=SCHEDULE_BATCH,
            weight_decay_in_config=weight_decay_in_config,
            weight_decay_effective=float(
                optimizer.param_groups[0]["weight_decay"]),
            model="SimCLR_Momentum(us_cifar_resnet18 at 1/8 channels, "
                  "official init)",
            seeds=f"random.seed({config.SEED}), torch.manual_seed("
                  f"{config.SEED}) (utils/train.py set_random_seed, rank 0)"
                  "; python's random is drawn only by the sampler here"),
        "rules": {
            "sampler": [
                "generate_widths_train(config, epoch) once per batch, "
                "before the width loop",
                "SAMPLE_SCHEDULER A: epinterval = EPOCHS // 4, epid = "
                "epoch // epinterval + 1; epid 1: min_width = max_width "
                "(only [max_width] is trained); else min_width = "
                "range_min + (4 - epid) * (range_max - range_min) / 3 "
                "(400 epochs: 0.75, 0.5, 0.25 in epochs 100-199, 200-299, "
                "300-399)",
                "SANDWICH with NUM_SAMPLE_TRAINING 3: [max_width, "
                "min_width, random.uniform(min_width, max_width)] sorted "
                "descending; max and min are the CURRENT phase's bounds "
                "(the fixed smallest width is 0.75 in phase 2)",
                "the random width comes from python's random.uniform over "
                "[min_width, max_width] of the phase; it can only coincide "
                "with max/min with probability 0",
                "the teacher is `width_mult == max(widths_train)`: "
                "width 1.0 with the sandwich",
            ],
            "per_width": [
                "for each width, largest first: set encoder_q.width_mult "
                "(DISTILL: encoder_k stays 1.0), forward, loss, + GroupReg, "
                "optimizer.zero_grad(), backward, optimizer.step() (through "
                "GradScaler(enabled=False)): ONE OPTIMIZER STEP PER WIDTH, "
                "the SGD momentum buffer carries over between widths",
                "max width: loss = LOSS(output, teacher_target) "
                "(InfoNCEv2_distill); the online outputs skip the "
                "predictor; teacher_target is kept for the batch",
                "other widths: loss = DISTILL_LAMBDA * CosineSimilarity("
                "predictor(encoder_q(x)), teacher_target)",
            ],
            "lr": "adjust_learning_rate(optimizer, BASE_LR, epoch, config) "
                  "once per EPOCH before train(): lr = BASE_LR * 0.5 * (1 + "
                  "cos(pi * (epoch - warmup) / (EPOCHS - warmup))) "
                  "(WARMUP_EPOCHS 0); constant over the epoch's batches and "
                  "widths; never reaches MIN_LR's 0 (last epoch: "
                  "BASE_LR * 0.5 * (1 + cos(pi * (EPOCHS-1) / EPOCHS)))",
            "ema": "MOMENTUM_UPDATE False: the momentum encoder is updated "
                   "only in the max-width forward (momentum_update=True), "
                   "ONCE per batch, after the online forward of both views "
                   "and before encoder_k's forward and before that width's "
                   "backward/step: it sees encoder_q as the previous batch's "
                   "last optimizer step left it; k = m * k + (1 - m) * q "
                   "over parameters only (zip(encoder_q.parameters(), "
                   "encoder_k.parameters())), constant m = "
                   f"{config.SSL.SETTING.MOMENTUM}",
            "group_reg": "alpha_t = alpha * epoch / (EPOCHS // 2) for "
                         "epoch < EPOCHS // 2, then alpha (warmup 0); "
                         "called with width_mult=w, epoch=epoch at every "
                         "width (one value per optimizer step)",
        },
        "sampler_phases": sampler_rules(mods, config),
        "sampler_phases_released_config": sampler_rules(mods, released),
        "sampler_bugs": dict(sampler_bugs(mods, released),
                             num_sample_training_4_iteration=duplicate_run),
        "iterations": iterations,
        "lr_per_step": lr_per_step,
        "lr_per_epoch": [lr_at(config, e) for e in range(SCHEDULE_EPOCHS)],
        "lr_released_config": {
            "epoch": [0, 1, 100, 200, 300, 399],
            "lr": [lr_at(released, e) for e in (0, 1, 100, 200, 300, 399)]},
        "group_reg_alpha": group_reg,
        "group_reg_alpha_released_config": group_reg_released,
        "notes": [
            "iterations[].events: the official loop's calls in order "
            "(ema_update inside the max-width forward, base_loss / "
            "distill_loss, reg_loss, optimizer_step with the lr and "
            "weight decay the param group held and the number of "
            "parameters with a gradient: 70 = encoder_q, 75 = encoder_q + "
            "predictor; encoder_k's never get one).",
            "the loss values come from random images, batch 2, at the "
            "config's lr 0.5 on the 1/8-channel model: the parameter norm "
            "grows fast (GroupReg 0.04 -> 123 by epoch 4), they only show "
            "that the run stays finite.",
            "sampler_phases: the official generate_widths_train at every "
            "epoch with the uniform draw replaced by the range's middle, "
            "recording the [a, b] of every random.uniform(a, b) call; "
            "sampler_bugs: the same function on modified copies of the "
            "400-epoch config (see the tool's docstring).",
        ],
        "totals": {
            "optimizer_steps": sum(x["optimizer_steps"] for x in iterations),
            "ema_updates": sum(x["ema_updates"] for x in iterations),
            "iterations": len(iterations)},
    }
    assert_finite(obj, "us3l_schedule")
    write_json(os.path.join(out, "us3l_schedule.json"), obj)
    return obj


# ---------------------------------------------------------------------------
# 3. one training iteration


STEP_SUBSET = [
    "encoder_q.conv1.weight", "encoder_q.bn1.weight", "encoder_q.bn1.bias",
    "encoder_q.layer1.0.conv1.weight", "encoder_q.layer4.1.conv2.weight",
    "encoder_q.layer4.1.bn2.weight", "encoder_q.fc.0.weight",
    "encoder_q.fc.0.bias", "encoder_q.fc.1.running_mean",
    "encoder_q.fc.1.running_var", "encoder_q.fc.6.weight",
    "encoder_k.conv1.weight", "encoder_k.fc.0.weight",
    "encoder_k.fc.1.running_mean", "encoder_k.fc.6.bias",
    "predictor.0.weight", "predictor.1.weight", "predictor.1.running_mean",
    "predictor.3.weight", "predictor.3.bias",
]


def step_config(mods, root):
    return official_config(mods, root, SIMCLR_CONFIG,
                           **{"SSL.SETTING.DIM": TINY_DIM,
                              "SSL.SETTING.HIDDEN_DIM": TINY_HIDDEN})


def strip_module(state):
    return {k[len("module."):] if k.startswith("module.") else k: v
            for k, v in state.items()}


def make_before_state(mods, root, out, seed):
    """The fixture's encoder_q and predictor; a seeded encoder_k of its own
    (the fixture leaves it out), saved to us3l_step_before.pth.tar."""
    config = step_config(mods, root)
    model = build_model(mods, config)
    fixture = torch.load(FIXTURE, map_location="cpu", weights_only=True)
    state = strip_module(fixture["state_dict"])
    missing = [k for k in model.state_dict() if k not in state]
    assert all(k.startswith("encoder_k.") for k in missing), missing
    fixtures.randomize(model.encoder_k,
                       torch.Generator().manual_seed(seed + 2))
    k_state = {k: v.detach().clone()
               for k, v in model.encoder_k.state_dict().items()}
    path = os.path.join(out, "us3l_step_before.pth.tar")
    us3l_fixture._save_us3l(path, {f"encoder_k.{k}": v
                                   for k, v in k_state.items()},
                            "us_cifar_resnet18", {}, epoch=STEP_EPOCH)
    saved = torch.load(path, map_location="cpu", weights_only=True)
    state.update(strip_module(saved["state_dict"]))
    return state, missing


def run_step(mods, root, before, view1, view2, dtype=torch.float32):
    config = step_config(mods, root)
    model = build_model(mods, config)
    model.load_state_dict(before, strict=True)
    model.to(dtype)
    model, criterion, optimizer, scaler = build_training(mods, config, model)
    inner = model.module
    start = {k: v.detach().clone() for k, v in inner.state_dict().items()}
    images = [cifar_to_torch(view1).to(dtype), cifar_to_torch(view2).to(dtype)]
    loader = [(images, torch.zeros(view1.shape[0]))]
    # the forced draw: generate_widths_train gives [max, min] + [uniform]
    forced = [w for w in STEP_WIDTHS if w not in (max(STEP_WIDTHS),
                                                  min(STEP_WIDTHS))]
    recorder = Recorder(mods, model, optimizer, forced=forced)
    torch.manual_seed(SEED)
    with recorder:
        run_epoch(mods, config, model, criterion, optimizer, scaler, loader,
                  STEP_EPOCH, recorder)
    after = {k: v.detach().clone() for k, v in inner.state_dict().items()}
    assert len(recorder.iterations) == 1
    it = recorder.iterations[0]
    assert it["widths"] == STEP_WIDTHS, it["widths"]
    per_width = []
    for w in it["widths"]:
        ev = [e for e in it["events"] if e["width"] == w]
        entry = {"width": w}
        for e in ev:
            if e["kind"] in ("base_loss", "distill_loss", "reg_loss"):
                entry[e["kind"]] = e["value"]
            elif e["kind"] == "optimizer_step":
                entry["lr"] = e["lr"][0]
                entry["params_with_grad"] = e["params_with_grad"]
            elif e["kind"] == "ema_update":
                entry["ema_update"] = True
        entry["role"] = "teacher" if "base_loss" in entry else "student"
        entry["total"] = (entry.get("base_loss", 0.0)
                          + entry.get("distill_loss", 0.0)
                          + entry["reg_loss"])
        per_width.append(entry)
    return {"config": config, "model": model, "optimizer": optimizer,
            "start": start, "after": after, "iteration": it,
            "per_width": per_width}


def norms(before, after):
    delta, after_norm = {}, {}
    for k in after:
        a = after[k].double()
        delta[k] = float(torch.linalg.vector_norm(a - before[k].double()))
        after_norm[k] = float(torch.linalg.vector_norm(a))
    return delta, after_norm


def make_step(mods, root, out, seed):
    before, missing = make_before_state(mods, root, out, seed)
    rng = np.random.default_rng(seed + 3)
    shape = (STEP_BATCH, 32, 32, 3)
    view1 = rng.uniform(0.0, 1.0, shape).astype(np.float32)
    view2 = rng.uniform(0.0, 1.0, shape).astype(np.float32)
    step = run_step(mods, root, before, view1, view2)
    step64 = run_step(mods, root, before, view1, view2, torch.float64)
    keys = list(step["after"])
    delta, after_norm = norms(step["start"], step["after"])
    delta64, after_norm64 = norms(step64["start"], step64["after"])
    assert list(step64["after"]) == keys
    arrays = {"view1": view1, "view2": view2, "state_keys": np.array(keys),
              "delta_norm": np.array([delta[k] for k in keys]),
              "after_norm": np.array([after_norm[k] for k in keys]),
              "float64/delta_norm": np.array([delta64[k] for k in keys]),
              "float64/after_norm": np.array([after_norm64[k]
                                              for k in keys])}
    for k in STEP_SUBSET:
        arrays[f"after/{k}"] = step["after"][k].numpy()
    np.savez_compressed(os.path.join(out, "us3l_step.npz"), **arrays)

    # checks on the official step
    start, after = step["start"], step["after"]
    m = step["config"].SSL.SETTING.MOMENTUM
    q_names = [n for n, _ in step["model"].module.encoder_q.named_parameters()]
    ema_err = max(float((after[f"encoder_k.{n}"]
                         - (start[f"encoder_k.{n}"] * m
                            + start[f"encoder_q.{n}"] * (1 - m))).abs().max())
                  for n in q_names)
    counters = {k: int(after[k]) - int(start[k]) for k in keys
                if k.endswith("num_batches_tracked")}
    rel = [abs(delta[k] - delta64[k]) / max(delta64[k], 1e-30)
           for k in keys if delta64[k] > 0]
    zero_delta = sorted(k for k in keys if delta[k] == 0.0)
    config = step["config"]
    sizes = {}
    for name in ("encoder_q.conv1", "encoder_q.layer1.0.conv1",
                 "encoder_q.layer2.0.conv1", "encoder_q.layer3.0.conv1",
                 "encoder_q.layer4.0.conv1"):
        module = step["model"].module.get_submodule(name)
        sizes[name] = {
            "out_channels_max": module.out_channels_max,
            "out_channels_at_width": {
                str(w): mods["slimmable_ops"].make_divisible(
                    module.out_channels_max * w) for w in STEP_WIDTHS}}
    info = {
        "source": "official US3L workers/ssl.py train() (one iteration of "
                  "SimCLR_Momentum), run by tools/make_golden_us3l.py",
        "fixture": FIXTURE,
        "before_extra": "tests/golden/us3l_step_before.pth.tar "
                        "(module.encoder_k.*: seeded, make_convert_fixtures."
                        "randomize; the fixture has no encoder_k)",
        "fixture_missing_keys": len(missing),
        "settings": dict(
            config_settings(config), config=SIMCLR_CONFIG,
            overrides={"SSL.SETTING.DIM": TINY_DIM,
                       "SSL.SETTING.HIDDEN_DIM": TINY_HIDDEN},
            epoch=STEP_EPOCH, batch=STEP_BATCH, image_size=32,
            widths=STEP_WIDTHS,
            widths_forced_by="workers/ssl.py's random.uniform draw "
                             f"replaced by {STEP_WIDTHS[1]} (max and min "
                             "come from the sampler: phase 4 of "
                             "SAMPLE_SCHEDULER A, [0.25, 1.0])",
            uniform_calls=step["iteration"]["uniform_calls"],
            lr=step["per_width"][0]["lr"],
            weight_decay_effective=float(
                step["optimizer"].param_groups[0]["weight_decay"]),
            optimizer="torch.optim.SGD(model.parameters(), 0.5, momentum="
                      "0.9, weight_decay=0.0 (REGULARIZER hack)), fresh "
                      "(workers/ssl.py never loads the optimizer state), lr "
                      f"set by adjust_learning_rate at epoch {STEP_EPOCH}",
            group_reg_alpha_t=_alpha_t(
                mods["GroupReg"].Regularizer(config, step["model"]),
                STEP_EPOCH),
            epoch_choice=f"epoch {STEP_EPOCH} (phase 4: widths in [0.25, "
                         "1.0]); this tiny network amplifies rounding "
                         "through the three sequential updates: at epoch "
                         "300 (lr 0.0732; conv1 moves by 43% of its norm) "
                         "the later widths' float32 run drifts up to 3% "
                         "from the float64 one, at 350 (lr 0.0190) 0.15% "
                         "(keras_slim, whose loss arithmetic is float32, "
                         "drifted further there in a throwaway comparison); "
                         "the later epoch keeps the comparison about the "
                         "recipe, not about rounding",
            model="SimCLR_Momentum(us_cifar_resnet18 at 1/8 channels, "
                  f"DIM {TINY_DIM}, HIDDEN_DIM {TINY_HIDDEN}) in a "
                  "device-less nn.DataParallel (the DDP stand-in)",
            channel_counts=sizes,
            images="view1 -> images[0], view2 -> images[1]; the npz holds "
                   "[0, 1] NHWC; the model saw (x - CIFAR mean) / std "
                   f"(mean {us3l_fixture.CIFAR_MEAN.tolist()}, std "
                   f"{us3l_fixture.CIFAR_STD.tolist()}), NCHW",
            precision="float32 (USE_AMP False)"),
        "per_width": step["per_width"],
        "events": step["iteration"]["events"],
        "float64_rerun": {"per_width": step64["per_width"]},
        "checks": {
            "ema_max_abs_err_vs_m_k_plus_1_minus_m_q_of_start": ema_err,
            "num_batches_tracked_increments": counters,
            "optimizer_steps": sum(e["kind"] == "optimizer_step"
                                   for e in step["iteration"]["events"]),
            "ema_updates": sum(e["kind"] == "ema_update"
                               for e in step["iteration"]["events"]),
            "float32_vs_float64_delta_norm_rel_diff_median": float(
                np.median(rel)),
            "float32_vs_float64_delta_norm_rel_diff_max": float(max(rel)),
            "state_keys_with_zero_delta": zero_delta,
        },
        "notes": [
            "order (workers/ssl.py train, one batch): widths [1.0, 0.625, "
            "0.25]; width 1.0: encoder_q(x1), encoder_q(x2) at 1.0 (no "
            "predictor), EMA update of encoder_k parameters from the "
            "pre-step encoder_q, encoder_k(x1), encoder_k(x2) at 1.0 "
            "(train-mode BN), base loss InfoNCEv2_distill, + GroupReg("
            "width 1.0: predictor excluded), zero_grad, backward, SGD step; "
            "width 0.625 and 0.25: encoder_q at the width, predictor on "
            "both views, CosineSimilarity distill to the max pass's "
            "encoder_k outputs, + GroupReg (predictor included), "
            "zero_grad, backward, SGD step (the momentum buffer of the "
            "previous width's step carries over).",
            "BN: the USBatchNorm2d layers keep no running statistics "
            "(track_running_stats False) and always use the batch's; the "
            "heads' BatchNorm1d (encoder_q.fc.1/.4, predictor.1, "
            "encoder_k.fc.1/.4) keep running statistics, shared by all "
            "widths, updated by every train-mode forward (2 per width: "
            "num_batches_tracked increments in checks).",
            "at width 1.0 the predictor gets no gradient (grad None) and "
            "SGD skips it; channels outside a sub-width get a zero "
            "distill gradient but GroupReg's gradient on the full tensors, "
            "plus the momentum of the earlier steps.",
            "delta_norm/after_norm: ||after - before||, ||after|| in "
            "float64 per model.module.state_dict() key (no 'module.'), "
            "integer counters included; before = the fixture + "
            "us3l_step_before.pth.tar.",
        ],
    }
    assert_finite({k: v for k, v in info.items()}, "us3l_step")
    for a in ("delta_norm", "after_norm", "float64/delta_norm"):
        if not np.all(np.isfinite(arrays[a])):
            raise ValueError(f"non-finite {a}")
    write_json(os.path.join(out, "us3l_step.json"), info)
    return info


# ---------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--us3l", required=True,
                        help="checkout of megvii-research/US3L-CVPR2023")
    parser.add_argument("--out", default="tests/golden")
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--skip-step", action="store_true",
                        help="leave out us3l_step.* (the slowest part)")
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    root = os.path.abspath(args.us3l)
    mods = setup_environment(root)
    make_losses(mods, root, args.out, args.seed)
    make_schedule(mods, root, args.out, args.seed)
    if not args.skip_step:
        make_step(mods, root, args.out, args.seed)
    for name in sorted(os.listdir(args.out)):
        if name.startswith("us3l_"):
            size = os.path.getsize(os.path.join(args.out, name))
            print(f"{name:40s} {size:>10,d} bytes")


if __name__ == "__main__":
    main()
