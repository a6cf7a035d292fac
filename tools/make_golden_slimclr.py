"""Writes golden numbers of the official SlimCLR code into `tests/golden/`.

Run it in a separate environment that has PyTorch (torch is no dependency of
keras_slim), beside a checkout of the official repository
(mzhaoshuai/SlimCLR):

    python -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install --no-deps "torch==2.13.0+cpu"
    /tmp/torchenv/bin/pip install filelock sympy networkx jinja2 fsspec \
        typing-extensions numpy
    /tmp/torchenv/bin/python tools/make_golden_slimclr.py \
        --slimclr /path/to/SlimCLR --out tests/golden

The official modules (`models/s_moco.py`, `models/s_mocov3.py`,
`models/s_simclr.py`, `models/distiller/*`, `models/utils.py`,
`models/backbones/*`, `utils/lr_scheduler.py`, `utils/optim.py`) are imported
from the checkout with `tools/make_convert_fixtures.py`'s `load_package` and
run unchanged; nothing of them is copied here or into keras_slim. The
environment shims, all outside the official code:

* a 1-process gloo group (`torch.distributed.init_process_group("gloo",
  init_method="file://...", rank=0, world_size=1)`) for the official
  `concat_all_gather`, `torch.distributed.broadcast`/`get_rank` calls (the
  MoCo v2 shuffle-BN, the MoCo v3 key gather, SimCLR's `all_gather`);
* `torch.Tensor.cuda` made a no-op (returns the tensor), for the official
  `torch.randperm(...).cuda()` and `torch.zeros(...).cuda()` in `s_moco.py`;
* training runs in float32 on the CPU, without the scripts' `amp`;
* for the loss goldens the official classes are built with a stand-in
  `base_encoder` (a 1x1 `nn.Linear`): `ssl_loss` never touches the encoders,
  and the official constructors still derive every setting (`loss_weights`
  via `loss_weights_generate`, `aux_loss_w`, `tea_T`, ...) from the script's
  arguments. The cases call the official `ssl_loss` directly and do the few
  lines of the forwards before it here (F.normalize(dim=1), the detached
  full-width copies in slow start, SimCLR's labels): with N=6 and K=16 the
  MoCo v2 forward's enqueue would assert K % N == 0;
* in the MoCo v2 training step the model is the 1/16-channel fixture
  (`tests/fixtures/convert/slimclr_mocov2_tiny.pth.tar`), whose official
  width list is [1/16, 3/64, 1/32, 1/64]; `loss_weights_generate(5, list)`
  gives its full width 1 + sum(list) - max(list) = 1.09375 there, whereas the
  list the fixture stands for ([1, .75, .5, .25], the one keras_slim sees)
  gives 2.5. The golden step therefore sets `model.loss_weights` to the
  official `loss_weights_generate(5, [1.0, 0.75, 0.5, 0.25])` = [2.5, 1, 1, 1]
  (the per-width losses with the as-built [1.09375, 1, 1, 1] are recorded
  too, under `as_built_loss_weights`).

Everything is seeded (`--seed`); arrays in the JSON files are nested lists of
float32 values written as Python floats (full precision). Widths are keyed
"1.0", "0.75", "0.5", "0.25" (`str(w)`), largest first as the official code
sorts them.

Files and formats:

`slimclr_ssl_loss.json`: the official per-width self-supervised losses, the
settings of the released scripts (scripts/mocov2.sh, mocov3.sh, simclr.sh).
    {"cases": [{"name", "base": "mocov2"|"mocov3"|"simclr", "enable_slim",
                "widths": [1.0, 0.75, 0.5, 0.25],
                "settings": {"T", "teacher_T", "student_T", "aux_loss_w",
                             "loss_weights", "slim_loss_weighted", ...},
                "inputs": {...}, "outputs": {...}}]}
  * mocov2 (`s_MoCo.ssl_loss` + `InfoNCE`): inputs `q` {width: raw [6, 8]}
    (unnormalized leaves; the case normalizes them with
    `F.normalize(dim=1)` as `s_MoCo.forward` does, and in slow start uses
    the detached full-width query for the other widths, as the forward
    does), `k` [6, 8] (normalized), `queue` [8, 16] (dim x K, columns
    normalized, as the official buffer), `labels` (zeros); outputs
    `per_width` {width: d_losses entry}, `total`, `grad_q` {width: d total /
    d raw q} (zeros where no gradient flows).
  * mocov3 (`s_MoCoV3.ssl_loss` + `contrastive_loss`, called as its forward:
    `ssl_loss(q1, k2) + ssl_loss(q2, k1)`): inputs `q1`, `q2` {width: raw
    [6, 8]}, `k1`, `k2` [6, 8] normalized; outputs `per_width` (sum of the
    two calls' entries), `per_width_call1` (the one the forward returns as
    `all_losses`), `per_width_call2`, `total`, `grad_q1`, `grad_q2`.
  * simclr (`s_SimCLR.ssl_loss` + `contrastive_loss`): inputs `q1`, `q2`
    {width: raw [6, 8]} (its `q1_dict`/`q2_dict` before normalization),
    `labels` [12] (built as its forward does); outputs `per_width`, `total`,
    `grad_q1`, `grad_q2`.

`slimclr_lr_schedule.json`: the official `utils/lr_scheduler.py`
`lr_scheduler`, driven as `main_ssl.py` drives it.
    {"cases": [{"name", "settings": {...}, "lr": [per step],
                "init_lr": [per step], "weight_decay": {"group0": [...],
                "group1": [...]}, "weight_decay_constructed": [g0, g1]}],
     "mocov3_momentum": {"settings", "epoch": [...], "m": [...]}}
  `lr[t]`/`weight_decay[g][t]` are the values the param groups hold after
  the scheduler call of global step t (the one before optimizer step t);
  `mocov3_momentum` is the official `adjust_moco_momentum` at the fractional
  epoch `step / steps_per_epoch + epoch` the training loop passes.

`slimclr_optimizers.json`: optimizers built as `main_ssl.py` builds them, on
a tiny module (`conv1` [4, 3, 3, 3] no bias, `bn1` BatchNorm2d(4), `fc`
Linear(4, 2)), 3 steps with seeded gradients.
    {"cases": [{"name", "settings", "initial": {param: array},
                "grads": [{param: array} per step], "lr": [per step],
                "weight_decay": [[g0, g1] per step],
                "weight_decay_constructed": [g0, g1],
                "groups": {param: group index},
                "after": [{param: array} per step]}]}

`slimclr_mocov2_step.npz` + `slimclr_mocov2_step.json`: one official
SlimCLR-MoCo v2 training step (`s_MoCo.forward`, `loss.backward()`,
`optimizer.step()`) of the converted-checkpoint fixture. The npz holds
`view1`, `view2` (the [0, 1] NHWC images, batch 4, 64x64; the model saw them
ImageNet-normalized, NCHW); `state_keys` (every `model.state_dict()` key,
without `module.`, in state-dict order) with the aligned float64 vectors
`delta_norm` (||after - before||) and `after_norm` (||after||), and
`slow_start/delta_norm`, `slow_start/after_norm` for the slow-start
(epoch 50) step (vectors, not one npz entry per key: 6,700 scalar entries
made a 2.9 MB file); `after/<key>` of a representative subset (encoder_q and
encoder_k, the queue, queue_ptr; the values before the step are the
fixture's); `float64/delta_norm`: the same step rerun with model and images
in float64, only to judge float32 noise (median relative difference ~3e-6;
the 1-channel BNs of the smallest width in features.2 get gradients of ~1e-4
that are ~20% noise in float32, so compare tiny deltas with an absolute
tolerance). The JSON holds the settings, the per-width losses, totals,
contrastive accuracies, param-group facts, checks and notes on the official
step order.
"""

import argparse
import copy
import json
import os
import sys
import tempfile

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_convert_fixtures as fixtures  # noqa: E402  (same folder)

SEED = 20261215
WIDTHS = [1.0, 0.75, 0.5, 0.25]
N, DIM, K = 6, 8, 16
FIXTURE = os.path.join("tests", "fixtures", "convert",
                       "slimclr_mocov2_tiny.pth.tar")


# ---------------------------------------------------------------------------
# environment


def setup_environment(root):
    """The shims named in the docstring, then the official modules."""
    torch.set_num_threads(1)
    torch.Tensor.cuda = lambda self, *args, **kwargs: self
    if not torch.distributed.is_initialized():
        store = tempfile.NamedTemporaryFile(prefix="slimclr_gloo_",
                                            delete=False)
        store.close()
        os.remove(store.name)
        torch.distributed.init_process_group(
            "gloo", init_method=f"file://{store.name}", rank=0, world_size=1)
    mods = fixtures.load_package(root, "models", ["utils", "moco"])
    mods.update(fixtures.load_package(root, "models.backbones",
                                      ["slimmable_ops", "s_resnet"]))
    mods.update(fixtures.load_package(root, "models.distiller",
                                      ["KD", "DKD", "ATKD", "factory"]))
    sys.modules["models.distiller"].choose_kd_loss = (
        mods["factory"].choose_kd_loss)
    mods.update(fixtures.load_package(root, "models",
                                      ["s_moco", "s_mocov3", "s_simclr"]))
    mods.update(fixtures.load_package(root, "utils",
                                      ["lr_scheduler", "optim"]))
    return mods


def tolist(t):
    a = t.detach().cpu().numpy() if torch.is_tensor(t) else np.asarray(t)
    if a.ndim == 0:
        return float(a)
    return [tolist(x) for x in a]


def wkey(w):
    return str(float(w))


def write_json(path, obj):
    with open(path, "w") as f:
        json.dump(obj, f, indent=1)
        f.write("\n")


# ---------------------------------------------------------------------------
# 1. per-width self-supervised losses


# The released scripts' settings (scripts/*.sh; params.py defaults where a
# script passes nothing). params.py then sorts width_mult_list descending and
# sets seed_loss = seed_loss and len(width_mult_list) > 1.
SCRIPT_SETTINGS = {
    "mocov2": dict(moco_t=0.2, moco_dim=128, moco_k=65536, moco_m=0.999,
                   teacher_T=5.0, student_T=5.0, slim_start_epoch=100,
                   num_epochs=200),
    "mocov3": dict(moco_t=1.0, moco_dim=256, moco_mlp_dim=4096,
                   moco_m=0.99, moco_m_cos=1, teacher_T=1.0, student_T=1.0,
                   slim_start_epoch=150, num_epochs=300),
    "simclr": dict(teacher_T=5.0, student_T=5.0, slim_start_epoch=50,
                   num_epochs=100, simclr_mlp_dim=2048),
}


def script_args(base):
    args = argparse.Namespace(
        width_mult_list=sorted(WIDTHS, reverse=True), slimmable_training=1,
        inplace_distill=0, inplace_distill_mixed=0, seed_loss=1, mse_loss=0,
        atkd_loss=0, dkd_loss=0, aux_loss_w=0.5, slim_loss_weighted=5,
        full_distill=0, overlap_weight=1, image_size=224, depth=50,
        **SCRIPT_SETTINGS[base])
    args.seed_loss = args.seed_loss and len(args.width_mult_list) > 1
    return args


def stand_in_encoder(num_classes=None, input_size=None, args=None):
    return nn.Linear(1, 1, bias=False)


def build_loss_model(mods, base):
    args = script_args(base)
    if base == "mocov2":
        model = mods["s_moco"].s_MoCo(stand_in_encoder, dim=DIM, K=K,
                                      m=args.moco_m, T=args.moco_t,
                                      mlp=True, args=args)
    elif base == "mocov3":
        model = mods["s_mocov3"].s_MoCoV3_ResNet(
            stand_in_encoder, args.moco_dim, args.moco_mlp_dim, args.moco_t,
            init_m=args.moco_m, num_epochs=args.num_epochs,
            m_cos=args.moco_m_cos, args=args)
    else:
        model = mods["s_simclr"].s_SimCLR(stand_in_encoder, args=args)
    return model, args


def common_settings(model, args, enable_slim):
    effective = ([float(x) for x in model.loss_weights] if enable_slim
                 else [1.0] + [0.0] * (len(model.loss_weights) - 1))
    return {
        "effective_loss_weights": effective,
        "T": float(model.T), "teacher_T": float(model.tea_T),
        "student_T": float(model.stu_T),
        "aux_loss_w": float(model.aux_loss_w),
        "loss_weights": [float(x) for x in model.loss_weights],
        "slim_loss_weighted": args.slim_loss_weighted,
        "seed_loss": bool(model.seed_loss),
        "slim_start_epoch": args.slim_start_epoch,
        "criterion": "torch.nn.CrossEntropyLoss() (mean over rows)",
        "kd": "kd_distill_loss_v2: -mean_rows(sum(softmax(t / teacher_T) * "
              "log_softmax(s / student_T))) * student_T ** 2; teacher = the "
              "full width's logits, detached",
    }


def normalized_dict(leaves, enable_slim, widths):
    """q_dict as the official forwards build it from the encoder outputs."""
    out = {}
    if enable_slim:
        for w in widths:
            out[w] = F.normalize(leaves[w], dim=1)
    else:
        out[widths[0]] = F.normalize(leaves[widths[0]], dim=1)
        for w in widths[1:]:
            out[w] = out[widths[0]].clone().detach()
    return out


def leaves_of(raw):
    return {w: r.clone().requires_grad_(True) for w, r in raw.items()}


def grads_of(leaves):
    return {wkey(w): tolist(x.grad if x.grad is not None
                            else torch.zeros_like(x))
            for w, x in leaves.items()}


def mocov2_loss_case(mods, g, enable_slim):
    model, args = build_loss_model(mods, "mocov2")
    widths = model.width_mult_list
    raw = {w: torch.randn(N, DIM, generator=g) for w in widths}
    k = F.normalize(torch.randn(N, DIM, generator=g), dim=1)
    queue = F.normalize(torch.randn(DIM, K, generator=g), dim=0)
    labels = torch.zeros(N, dtype=torch.long)
    leaves = leaves_of(raw)
    q_dict = normalized_dict(leaves, enable_slim, widths)
    loss, d_losses = model.ssl_loss(q_dict, k, queue.clone().detach(),
                                    labels, enable_slim=enable_slim,
                                    criterion=nn.CrossEntropyLoss())
    loss.backward()
    settings = common_settings(model, args, enable_slim)
    settings.update({"K": K, "dim": DIM, "N": N,
                     "kd_input": "raw cosine logits [l_pos, l_neg] (InfoNCE "
                                 "returns them before / T)"})
    return {
        "name": f"mocov2_{'slim' if enable_slim else 'slow_start'}",
        "base": "mocov2", "enable_slim": enable_slim,
        "widths": [float(w) for w in widths], "settings": settings,
        "inputs": {"q": {wkey(w): tolist(r) for w, r in raw.items()},
                   "k": tolist(k), "queue": tolist(queue),
                   "labels": labels.tolist()},
        "outputs": {"per_width": {wkey(w): float(d)
                                  for w, d in zip(widths, d_losses)},
                    "total": float(loss.detach()),
                    "grad_q": grads_of(leaves)},
    }


def mocov3_loss_case(mods, g, enable_slim):
    model, args = build_loss_model(mods, "mocov3")
    widths = model.width_mult_list
    raw1 = {w: torch.randn(N, DIM, generator=g) for w in widths}
    raw2 = {w: torch.randn(N, DIM, generator=g) for w in widths}
    k1 = F.normalize(torch.randn(N, DIM, generator=g), dim=1)
    k2 = F.normalize(torch.randn(N, DIM, generator=g), dim=1)
    leaves1, leaves2 = leaves_of(raw1), leaves_of(raw2)
    q1 = normalized_dict(leaves1, enable_slim, widths)
    q2 = normalized_dict(leaves2, enable_slim, widths)
    criterion = nn.CrossEntropyLoss()
    loss1, d1 = model.ssl_loss(q1, k2, enable_slim=enable_slim,
                               criterion=criterion)
    loss2, d2 = model.ssl_loss(q2, k1, enable_slim=enable_slim,
                               criterion=criterion)
    loss = loss1 + loss2
    loss.backward()
    settings = common_settings(model, args, enable_slim)
    settings.update({"N": N, "dim": DIM, "contrastive_loss_scale": "2 * T",
                     "kd_input": "logits / T (contrastive_loss returns the "
                                 "temperature-scaled logits; T = 1 here)"})
    return {
        "name": f"mocov3_{'slim' if enable_slim else 'slow_start'}",
        "base": "mocov3", "enable_slim": enable_slim,
        "widths": [float(w) for w in widths], "settings": settings,
        "inputs": {"q1": {wkey(w): tolist(r) for w, r in raw1.items()},
                   "q2": {wkey(w): tolist(r) for w, r in raw2.items()},
                   "k1": tolist(k1), "k2": tolist(k2)},
        "outputs": {
            "per_width": {wkey(w): float(a + b)
                          for w, a, b in zip(widths, d1, d2)},
            "per_width_call1": {wkey(w): float(a) for w, a in zip(widths, d1)},
            "per_width_call2": {wkey(w): float(b) for w, b in zip(widths, d2)},
            "total": float(loss.detach()), "grad_q1": grads_of(leaves1),
            "grad_q2": grads_of(leaves2)},
    }


def simclr_loss_case(mods, g, enable_slim):
    model, args = build_loss_model(mods, "simclr")
    widths = model.width_mult_list
    raw1 = {w: torch.randn(N, DIM, generator=g) for w in widths}
    raw2 = {w: torch.randn(N, DIM, generator=g) for w in widths}
    leaves1, leaves2 = leaves_of(raw1), leaves_of(raw2)
    q1 = normalized_dict(leaves1, enable_slim, widths)
    q2 = normalized_dict(leaves2, enable_slim, widths)
    # s_SimCLR.forward: gather (one process: the tensors themselves), labels.
    gather = mods["s_simclr"].all_gather
    for w in widths:
        q1[w] = gather(q1[w])
        q2[w] = gather(q2[w])
    n = q1[model.max_width].shape[0]
    labels = torch.cat([torch.arange(n, dtype=torch.long) + n - 1,
                        torch.arange(n, dtype=torch.long)], dim=0)
    loss, d_losses, _ = model.ssl_loss(q1, q2, labels,
                                       enable_slim=enable_slim,
                                       criterion=nn.CrossEntropyLoss())
    loss.backward()
    settings = common_settings(model, args, enable_slim)
    settings.update({"N": N, "dim": DIM,
                     "kd_input": "raw cosine similarities [2N, 2N - 1] "
                                 "(diagonal removed; contrastive_loss "
                                 "returns them before / T)"})
    return {
        "name": f"simclr_{'slim' if enable_slim else 'slow_start'}",
        "base": "simclr", "enable_slim": enable_slim,
        "widths": [float(w) for w in widths], "settings": settings,
        "inputs": {"q1": {wkey(w): tolist(r) for w, r in raw1.items()},
                   "q2": {wkey(w): tolist(r) for w, r in raw2.items()},
                   "labels": labels.tolist()},
        "outputs": {"per_width": {wkey(w): float(d)
                                  for w, d in zip(widths, d_losses)},
                    "total": float(loss.detach()),
                    "grad_q1": grads_of(leaves1),
                    "grad_q2": grads_of(leaves2)},
    }


def make_ssl_loss(mods, out, seed):
    g = torch.Generator().manual_seed(seed)
    cases = []
    for make in (mocov2_loss_case, mocov3_loss_case, simclr_loss_case):
        for enable_slim in (True, False):
            cases.append(make(mods, g, enable_slim))
    write_json(os.path.join(out, "slimclr_ssl_loss.json"), {
        "source": "official SlimCLR ssl_loss, run by "
                  "tools/make_golden_slimclr.py",
        "cases": cases})
    return cases


# ---------------------------------------------------------------------------
# 2. learning-rate schedule


class TinyNet(nn.Module):
    """Parameter names like the official model's (`conv1`, `bn1`, `fc`)."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 4, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)


def build_optimizer(mods, model, kind, lr, weight_decay, momentum=0.9,
                    nesterov=0):
    """As main_ssl.py: get_parameter_groups, then SGD or LARS."""
    optim = mods["optim"]
    groups = optim.get_parameter_groups(model, lr, weight_decay,
                                        norm_weight_decay=0,
                                        norm_bias_no_decay=True)
    if kind == "SGD":
        return torch.optim.SGD(groups, lr, momentum=momentum,
                               weight_decay=weight_decay,
                               nesterov=True if nesterov else False)
    return optim.LARS(groups, lr, momentum=momentum,
                      weight_decay=weight_decay)


SCHEDULE_CASES = [
    # scripts/mocov2.sh case 01 (200 epochs, slim_start_epoch 100, warmup
    # 0.05), scaled to 20 epochs x 10 steps; mocov2.sh passes no
    # --slim_start_lr, so params.py's default 0.0001 is used.
    dict(name="mocov2_script", optimizer="SGD", lr=0.2, weight_decay=1e-4,
         warmup_proportion=0.05, slim_start_epoch=10, slim_start_lr=0.0001,
         slim_start_lr_source="params.py default (mocov2.sh passes none)",
         num_epochs=20, steps_per_epoch=10),
    # scripts/mocov3.sh case 01 (300 epochs, slim_start_epoch 150, warmup
    # 0.033, lr 1.2, slim_start_lr 3.2, LARS, weight decay 1e-6).
    dict(name="mocov3_script", optimizer="LARS", lr=1.2, weight_decay=1e-6,
         warmup_proportion=0.033, slim_start_epoch=10, slim_start_lr=3.2,
         slim_start_lr_source="mocov3.sh --slim_start_lr 3.2",
         num_epochs=20, steps_per_epoch=10),
    dict(name="no_slow_start", optimizer="SGD", lr=0.2, weight_decay=1e-4,
         warmup_proportion=0.05, slim_start_epoch=-1, slim_start_lr=0.0001,
         slim_start_lr_source="params.py default (unused: slim_start_epoch "
                              "-1)",
         num_epochs=20, steps_per_epoch=10),
    # scripts/simclr.sh case 02 (100 epochs, slim_start_epoch 50, warmup 0.1,
    # lr 2.4, LARS, weight decay 1e-6; no --slim_start_lr).
    dict(name="simclr_script", optimizer="LARS", lr=2.4, weight_decay=1e-6,
         warmup_proportion=0.1, slim_start_epoch=10, slim_start_lr=0.0001,
         slim_start_lr_source="params.py default (simclr.sh passes none)",
         num_epochs=20, steps_per_epoch=10),
]


def drive_schedule(mods, case, gradient_accumulation_steps=1):
    model = TinyNet()
    optimizer = build_optimizer(mods, model, case["optimizer"], case["lr"],
                                case["weight_decay"])
    constructed = [float(g["weight_decay"]) for g in optimizer.param_groups]
    steps = case["steps_per_epoch"]
    # main_ssl.py: (int(len(loader) + gas - 1) / gas) * num_epochs (a float)
    total = ((int(steps + gradient_accumulation_steps - 1)
              / gradient_accumulation_steps) * case["num_epochs"])
    scheduler = mods["lr_scheduler"].lr_scheduler(
        mode="cos", init_lr=case["lr"], all_iters=total,
        slow_start_iters=case["warmup_proportion"] * total,
        weight_decay=case["weight_decay"], lr_milestones=[60, 80])
    lr, init_lr, wd = [], [], {"group0": [], "group1": []}
    global_step = 0
    for epoch in range(case["num_epochs"]):
        if case["slim_start_epoch"] > 0 and epoch >= case["slim_start_epoch"]:
            scheduler.init_lr = case["slim_start_lr"]
        for _ in range(steps):
            scheduler(optimizer, epoch=epoch, global_step=global_step)
            groups = optimizer.param_groups
            assert groups[0]["lr"] == groups[1]["lr"]
            lr.append(float(groups[0]["lr"]))
            init_lr.append(float(scheduler.init_lr))
            wd["group0"].append(float(groups[0]["weight_decay"]))
            wd["group1"].append(float(groups[1]["weight_decay"]))
            global_step += 1  # after the optimizer step
    settings = dict(case, lr_mode="cos", all_iters=total,
                    slow_start_iters=case["warmup_proportion"] * total,
                    slow_start_lr=scheduler.slow_start_lr,
                    end_lr=scheduler.end_lr,
                    gradient_accumulation_steps=gradient_accumulation_steps)
    name = settings.pop("name")
    return {"name": name, "settings": settings, "lr": lr, "init_lr": init_lr,
            "weight_decay": wd, "weight_decay_constructed": constructed}


def make_lr_schedule(mods, out):
    cases = [drive_schedule(mods, c) for c in SCHEDULE_CASES]
    num_epochs, steps, init_m = 20, 10, 0.99
    epochs = [step / steps + epoch for epoch in range(num_epochs)
              for step in range(steps)]
    adjust = mods["s_mocov3"].adjust_moco_momentum
    momentum = {
        "settings": {"num_epochs": num_epochs, "steps_per_epoch": steps,
                     "init_m": init_m, "moco_m_cos": 1,
                     "epoch_argument": "step / steps_per_epoch + epoch"},
        "epoch": epochs,
        "m": [float(adjust(e, num_epochs, init_m)) for e in epochs]}
    write_json(os.path.join(out, "slimclr_lr_schedule.json"), {
        "source": "official SlimCLR utils/lr_scheduler.py driven as "
                  "main_ssl.py, run by tools/make_golden_slimclr.py",
        "cases": cases, "mocov3_momentum": momentum})
    return cases


# ---------------------------------------------------------------------------
# 3. optimizers


def init_tiny(g):
    model = TinyNet()
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name == "bn1.weight":
                p.copy_(1.0 + 0.1 * torch.randn(p.shape, generator=g))
            else:
                p.copy_(0.5 * torch.randn(p.shape, generator=g))
    return model


def param_dict(model):
    return {n: tolist(p) for n, p in model.named_parameters()}


def group_index(model, optimizer):
    ids = {id(p): i for i, group in enumerate(optimizer.param_groups)
           for p in group["params"]}
    return {n: ids[id(p)] for n, p in model.named_parameters()}


def optimizer_case(mods, g, name, kind, lr, weight_decay, scheduler_kwargs,
                   use_scheduler=True):
    model = init_tiny(g)
    optimizer = build_optimizer(mods, model, kind, lr, weight_decay)
    constructed = [float(x["weight_decay"]) for x in optimizer.param_groups]
    scheduler = mods["lr_scheduler"].lr_scheduler(
        init_lr=lr, weight_decay=weight_decay, **scheduler_kwargs)
    grads = [{n: torch.randn(p.shape, generator=g)
              for n, p in model.named_parameters()} for _ in range(3)]
    record = {"initial": param_dict(model), "grads": [], "lr": [],
              "weight_decay": [], "after": []}
    for t in range(3):
        if use_scheduler:
            scheduler(optimizer, epoch=t, global_step=t)
        for n, p in model.named_parameters():
            p.grad = grads[t][n].clone()
        record["grads"].append({n: tolist(v) for n, v in grads[t].items()})
        record["lr"].append(float(optimizer.param_groups[0]["lr"]))
        record["weight_decay"].append(
            [float(x["weight_decay"]) for x in optimizer.param_groups])
        optimizer.step()
        optimizer.zero_grad()
        record["after"].append(param_dict(model))
    settings = {"optimizer": kind, "init_lr": lr, "momentum": 0.9,
                "weight_decay": weight_decay, "nesterov": False,
                "get_parameter_groups": "norm_weight_decay=0, "
                                        "norm_bias_no_decay=True",
                "scheduler": (dict(scheduler_kwargs) if use_scheduler
                              else None)}
    if kind == "LARS":
        settings["trust_coefficient"] = 0.001
    return dict({"name": name, "settings": settings,
                 "weight_decay_constructed": constructed,
                 "groups": group_index(model, optimizer)}, **record)


def make_optimizers(mods, out, seed):
    g = torch.Generator().manual_seed(seed + 3)
    cases = [
        # cos from 0.2 over 3 steps, no warmup: 0.2, 0.15, 0.05
        optimizer_case(mods, g, "sgd_main_ssl", "SGD", 0.2, 1e-4,
                       dict(mode="cos", all_iters=3.0, slow_start_iters=0.0)),
        # the same optimizer without the scheduler: the groups keep the
        # weight decay get_parameter_groups gave them (lr stays 0.2)
        optimizer_case(mods, g, "sgd_groups_as_constructed", "SGD", 0.2,
                       1e-4, dict(mode="cos", all_iters=3.0,
                                  slow_start_iters=0.0),
                       use_scheduler=False),
        # step mode, multiplier 0.5 per "epoch": 1.2, 0.6, 0.3
        optimizer_case(mods, g, "lars_mocov3", "LARS", 1.2, 1e-6,
                       dict(mode="step", all_iters=3.0, slow_start_iters=0.0,
                            lr_step=1, lr_step_multiplier=0.5,
                            lr_milestones=None)),
    ]
    write_json(os.path.join(out, "slimclr_optimizers.json"), {
        "source": "official SlimCLR utils/optim.py + torch.optim.SGD, run "
                  "by tools/make_golden_slimclr.py",
        "cases": cases})
    return cases


# ---------------------------------------------------------------------------
# 4. one MoCo v2 training step


STEP_SUBSET = (
    ["conv1.weight", "features.0.conv1.weight", "features.15.conv3.weight",
     "features.7.bn2.bn.2.running_mean", "fc.0.weight", "fc.0.bias",
     "fc.2.weight"]
    + [f"bn1.bn.{i}.{f}" for i in range(4)
       for f in ("weight", "bias", "running_mean", "running_var")])
RELEASED_WIDTHS = [1.0, 0.75, 0.5, 0.25]


def step_model(mods, loss_weights="released"):
    args = fixtures.slimclr_args("mocov2_slim")
    # the script's KD settings (slimclr_args already has them; explicit)
    args.seed_loss, args.teacher_T, args.student_T = True, 5.0, 5.0
    args.aux_loss_w, args.slim_loss_weighted = 0.5, 5
    args.slim_start_epoch = 100
    model = mods["s_moco"].s_MoCo(
        mods["s_resnet"].Model, dim=128, K=24, m=0.999, T=0.2, mlp=True,
        args=args)
    checkpoint = torch.load(FIXTURE, map_location="cpu", weights_only=True)
    state = {k[len("module."):] if k.startswith("module.") else k: v
             for k, v in checkpoint["state_dict"].items()}
    model.load_state_dict(state)
    as_built = list(model.loss_weights)
    if loss_weights == "released":
        model.loss_weights = mods["utils"].loss_weights_generate(
            args.slim_loss_weighted, RELEASED_WIDTHS)
    model.train()
    return model, args, as_built


def capture_logits(model):
    """Records InfoNCE's logits (for the accuracy), calling the official."""
    captured = []
    official = model.InfoNCE

    def wrapper(*args, **kwargs):
        loss, logits = official(*args, **kwargs)
        captured.append(logits.detach().clone())
        return loss, logits

    model.InfoNCE = wrapper
    return captured


def run_step(mods, view1, view2, epoch, seed, loss_weights="released",
             dtype=torch.float32):
    model, args, as_built = step_model(mods, loss_weights)
    model.to(dtype)
    optimizer = build_optimizer(mods, model, "SGD", 0.03, 1e-4)
    constructed = [float(g["weight_decay"]) for g in optimizer.param_groups]
    scheduler = mods["lr_scheduler"].lr_scheduler(
        mode="cos", init_lr=0.03, all_iters=1000.0, slow_start_iters=0.0,
        weight_decay=1e-4)
    scheduler(optimizer, epoch=int(epoch), global_step=0)  # lr 0.03 exactly
    before = {k: v.detach().clone() for k, v in model.state_dict().items()}
    captured = capture_logits(model)
    torch.manual_seed(seed)  # the shuffle-BN's torch.randperm
    output = model(im_q=fixtures.to_torch(view1).to(dtype),
                   im_k=fixtures.to_torch(view2).to(dtype),
                   criterion=nn.CrossEntropyLoss(), epoch=epoch)
    output["loss"].backward()
    n_grad = sum(p.grad is not None for g in optimizer.param_groups
                 for p in g["params"])
    optimizer.step()
    after = {k: v.detach().clone() for k, v in model.state_dict().items()}
    widths = model.width_mult_list
    return {
        "model": model, "args": args, "before": before, "after": after,
        "widths": widths, "as_built_loss_weights": as_built,
        "loss_weights": [float(x) for x in model.loss_weights],
        "per_width": {wkey(w / widths[0]): float(d)
                      for w, d in zip(widths, output["all_losses"])},
        "total": float(output["loss"].detach()),
        "accuracy_top1": [float((l.argmax(1) == 0).double().mean() * 100)
                          for l in captured],
        "group_weight_decay_constructed": constructed,
        "group_weight_decay_after_scheduler": [
            float(g["weight_decay"]) for g in optimizer.param_groups],
        "group_lr": [float(g["lr"]) for g in optimizer.param_groups],
        "params_with_grad": int(n_grad),
        "params_in_optimizer": sum(len(g["params"])
                                   for g in optimizer.param_groups),
        "optimizer": optimizer,
    }


def norms(before, after):
    delta, after_norm = {}, {}
    for k in after:
        a = after[k].double()
        delta[k] = float(torch.linalg.vector_norm(a - before[k].double()))
        after_norm[k] = float(torch.linalg.vector_norm(a))
    return delta, after_norm


def check_key_order(mods, step, view2):
    """Whether the enqueued keys come from the EMA-updated key encoder."""
    model, _, _ = step_model(mods)
    model.load_state_dict(step["before"])
    enc_q = {n: p.detach().clone()
             for n, p in model.encoder_q.named_parameters()}
    results = {}
    for label, ema in (("keys_from_ema_updated_encoder", True),
                       ("keys_from_pre_update_encoder", False)):
        encoder = copy.deepcopy(model.encoder_k).train()
        if ema:
            with torch.no_grad():
                for n, p in encoder.named_parameters():
                    p.copy_(p * model.m + enc_q[n] * (1.0 - model.m))
        with torch.no_grad():
            k = encoder(fixtures.to_torch(view2), model.max_width)
            k = F.normalize(k[model.max_width], dim=1)
        ptr = int(step["before"]["queue_ptr"])
        new = step["after"]["queue"][:, ptr:ptr + k.shape[0]].T
        results[label] = float((new - k).abs().max())
    return results


def make_mocov2_step(mods, out, seed):
    rng = np.random.default_rng(seed + 4)
    shape = (4, fixtures.IMAGE_SIZE, fixtures.IMAGE_SIZE, 3)
    view1 = rng.uniform(0.0, 1.0, shape).astype(np.float32)
    view2 = rng.uniform(0.0, 1.0, shape).astype(np.float32)

    slim = run_step(mods, view1, view2, 150.0, seed + 5)
    slow = run_step(mods, view1, view2, 50.0, seed + 5)
    as_built = run_step(mods, view1, view2, 150.0, seed + 5,
                        loss_weights="as_built")
    # float64 rerun of the same step, only to judge float32 noise
    slim64 = run_step(mods, view1, view2, 150.0, seed + 5,
                      dtype=torch.float64)
    order = check_key_order(mods, slim, view2)

    keys = list(slim["after"])
    delta, after_norm = norms(slim["before"], slim["after"])
    slow_delta, slow_after_norm = norms(slow["before"], slow["after"])
    delta64, _ = norms(slim64["before"], slim64["after"])
    assert list(slow["after"]) == keys == list(slim64["after"])
    arrays = {
        "view1": view1, "view2": view2, "state_keys": np.array(keys),
        "delta_norm": np.array([delta[k] for k in keys]),
        "after_norm": np.array([after_norm[k] for k in keys]),
        "slow_start/delta_norm": np.array([slow_delta[k] for k in keys]),
        "slow_start/after_norm": np.array([slow_after_norm[k]
                                           for k in keys]),
        "float64/delta_norm": np.array([delta64[k] for k in keys]),
    }
    subset = ([f"encoder_q.{k}" for k in STEP_SUBSET]
              + [f"encoder_k.{k}" for k in STEP_SUBSET]
              + ["queue", "queue_ptr"])
    for k in subset:
        arrays[f"after/{k}"] = slim["after"][k].numpy()
    np.savez_compressed(os.path.join(out, "slimclr_mocov2_step.npz"),
                        **arrays)

    model, args = slim["model"], slim["args"]
    named = dict(model.named_parameters())
    optimizer = slim["optimizer"]
    group_of = {id(p): i for i, g in enumerate(optimizer.param_groups)
                for p in g["params"]}
    group1 = sorted(n for n, p in named.items()
                    if group_of.get(id(p)) == 1)
    bn_weights_in_group0 = sorted(
        n for n, p in named.items() if group_of.get(id(p)) == 0
        and ".bn." in n and n.endswith("weight"))

    def no_grad_params(step):
        return sorted(n for n, p in step["model"].named_parameters()
                      if p.requires_grad and p.grad is None)

    def summary(step):
        return {"per_width": step["per_width"], "total": step["total"],
                "loss_weights": step["loss_weights"],
                "contrastive_accuracy_top1": {
                    wkey(w / step["widths"][0]): a for w, a in
                    zip(step["widths"], step["accuracy_top1"])},
                "params_with_grad": step["params_with_grad"],
                "params_in_optimizer": step["params_in_optimizer"],
                "queue_ptr_after": int(step["after"]["queue_ptr"])}

    slow_summary = summary(slow)
    slow_summary["trained_params_without_grad"] = no_grad_params(slow)
    info = {
        "source": "official SlimCLR s_MoCo.forward + loss.backward() + "
                  "torch.optim.SGD.step(), run by "
                  "tools/make_golden_slimclr.py",
        "fixture": FIXTURE,
        "settings": {
            "model": "s_MoCo(s_resnet.Model, dim=128, K=24, m=0.999, T=0.2, "
                     "mlp=True, args=slimclr_args('mocov2_slim'))",
            "official_widths": [float(w) for w in model.width_mult_list],
            "keras_widths": RELEASED_WIDTHS,
            "depth": 50, "image_size": fixtures.IMAGE_SIZE, "batch": 4,
            "K": model.K, "m": model.m, "T": model.T,
            "seed_loss": bool(model.seed_loss),
            "teacher_T": model.tea_T, "student_T": model.stu_T,
            "aux_loss_w": model.aux_loss_w,
            "slim_loss_weighted": args.slim_loss_weighted,
            "slim_start_epoch": model.slim_start_epoch,
            "loss_weights": slim["loss_weights"],
            "loss_weights_note": "set to the official loss_weights_generate("
                                 "5, [1.0, 0.75, 0.5, 0.25]); the fixture's "
                                 "own list gives "
                                 f"{slim['as_built_loss_weights']}",
            "criterion": "torch.nn.CrossEntropyLoss()",
            "optimizer": "torch.optim.SGD(get_parameter_groups(model, 0.03, "
                         "1e-4, norm_weight_decay=0, norm_bias_no_decay=True),"
                         " 0.03, momentum=0.9, weight_decay=1e-4, "
                         "nesterov=False); lr/weight decay then set by the "
                         "official lr_scheduler (cos, init_lr 0.03, global "
                         "step 0, weight_decay=1e-4)",
            "group_lr": slim["group_lr"],
            "group_weight_decay_constructed":
                slim["group_weight_decay_constructed"],
            "group_weight_decay_after_scheduler":
                slim["group_weight_decay_after_scheduler"],
            "images": "view1 -> im_q, view2 -> im_k; the npz holds [0, 1] "
                      "NHWC; the model saw (x - ImageNet mean) / std, NCHW",
            "torch_seed_before_forward": seed + 5,
            "precision": "float32 (the script's amp not used)",
        },
        "param_groups": {
            "rule": "get_parameter_groups: 'norm' or 'Norm' or 'bias' in "
                    "the parameter name -> group 1 (built with "
                    "weight_decay=norm_weight_decay=0), else group 0; only "
                    "requires_grad parameters (encoder_q; encoder_k is "
                    "frozen)",
            "group1": group1,
            "bn_weights_in_group0": len(bn_weights_in_group0),
            "bn_weights_in_group0_examples": bn_weights_in_group0[:4],
        },
        "slim": summary(slim),
        "slow_start": slow_summary,
        "as_built_loss_weights": summary(as_built),
        "float64_rerun": {"per_width": slim64["per_width"],
                          "total": slim64["total"]},
        "checks": {"max_abs_diff_enqueued_keys_vs_" + k: v
                   for k, v in order.items()},
        "notes": [
            "enable_slim = epoch >= slim_start_epoch (100): epoch 150 trains "
            "all widths, epoch 50 only the full width (the other entries of "
            "all_losses are 0; loss weight 1 for the full width, not "
            "loss_weights[0]).",
            "order inside s_MoCo.forward: (1) queries from encoder_q at every"
            " width (train-mode BN, each width's own BN statistics updated),"
            " normalized; (2) under no_grad: momentum update of encoder_k "
            "PARAMETERS from encoder_q's current (pre-step) parameters, "
            "k = m * k + (1 - m) * q (buffers not copied: encoder_k keeps "
            "its own BN running statistics); (3) shuffle-BN: "
            "torch.randperm over the gathered batch (one process: a "
            "permutation of the 4 images), encoder_k at the full width in "
            "train mode (its BN running statistics updated by the batch), "
            "normalize, unshuffle; (4) ssl_loss against "
            "queue.clone().detach() (the queue before this step's keys); "
            "(5) _dequeue_and_enqueue: queue[:, ptr:ptr+4] = k.T, "
            "queue_ptr = (ptr + 4) % K. Then (outside) loss.backward() and "
            "optimizer.step() update encoder_q only.",
            "the keys come from the EMA-updated encoder: see checks "
            "(the enqueued columns match a train-mode forward of the "
            "updated encoder_k, not of the pre-update one).",
            "KD (seed_loss): choose_kd_loss(logits_w, logits_full.detach(), "
            "kl_div=1) -> kd_distill_loss_v2 on InfoNCE's raw cosine logits "
            "[l_pos, l_neg] (not divided by T=0.2), each divided by "
            "student_T / teacher_T = 5, times student_T ** 2 = 25; a "
            "cross-entropy -sum(p_t log p_s), not a KL (teacher entropy "
            "included). Width loss = loss_weights[i] * ((1 - aux_loss_w) * "
            "InfoNCE + aux_loss_w * KD).",
            "contrastive_accuracy_top1 is the share of rows whose InfoNCE "
            "logits peak at the positive (index 0), in percent, from the "
            "official InfoNCE's logits; main_ssl.py's logged Acc@1 is "
            "accuracy(q_dict[w], zeros) on the normalized 128-d queries "
            "(not the contrastive logits).",
            "torch.optim.SGD (momentum 0.9, dampening 0, first step: buffer "
            "= grad + wd * p): p -= 0.03 * (grad + 1e-4 * p) for every "
            "encoder_q parameter that has a gradient; after the scheduler "
            "call both groups have weight_decay 1e-4 (biases included). In "
            "the slow-start step the sub-width BN parameters get no grad "
            "and are left untouched (no weight decay either).",
        ],
    }
    write_json(os.path.join(out, "slimclr_mocov2_step.json"), info)
    return info, order


# ---------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slimclr", required=True,
                        help="checkout of mzhaoshuai/SlimCLR")
    parser.add_argument("--out", default="tests/golden")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    mods = setup_environment(os.path.abspath(args.slimclr))
    make_ssl_loss(mods, args.out, args.seed)
    make_lr_schedule(mods, args.out)
    make_optimizers(mods, args.out, args.seed)
    make_mocov2_step(mods, args.out, args.seed)
    for name in sorted(os.listdir(args.out)):
        if name.startswith("slimclr_"):
            size = os.path.getsize(os.path.join(args.out, name))
            print(f"{name:40s} {size:>10,d} bytes")


if __name__ == "__main__":
    main()
