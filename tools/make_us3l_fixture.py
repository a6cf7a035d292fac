"""Writes the US3L conversion fixtures by running the official US3L code.

Called by `tools/make_convert_fixtures.py --us3l /path/to/US3L-CVPR2023`
(which passes its `load_package`, `randomize`, `save` and `one_sgd_step`);
run it in the PyTorch environment described there. It writes, into `--out`:

* `us3l_simclr_cifar_resnet18_tiny.pth.tar`: the README's CIFAR recipe, the
  official `SimCLR_Momentum` (`utils/ssl_algorithms/simclr.py`) around the
  official `us_cifar_resnet18` (`models/OFA/us_cifar_resnet.py`: 3x3 stem,
  no max-pool, `F.avg_pool2d(out, 4)`), with random weights in the query
  encoder, a different random momentum encoder and predictor, saved as
  `workers/ssl.py` saves (`{epoch, arch, state_dict, optimizer}`, keys
  `module.encoder_q.*`, `module.encoder_k.*`, `module.predictor.*`). Its
  BatchNorms keep no running statistics (`track_running_stats=False`, the
  US3L default): the reference `.npz` holds the train-mode (batch-statistics)
  pooled features of the query encoder at several widths on 32x32 images in
  [0, 1], fed to the official model normalized as US3L's CIFAR loaders do.
* `us3l_lincls_imagenet_resnet50_tiny.pth.tar`: a linear-evaluation file as
  `workers/linear.py` writes it: the official `us_resnet50`
  (`models/OFA/us_resnet.py`: 7x7 stride-2 stem, max-pool, bottleneck
  blocks) built with `bn_track_stats=True`, its statistics BN-calibrated at
  one width (train-mode passes with momentum 0.1, as `workers/linear.py`
  `bn_calibrate` does), keys `module.conv1.weight`
  ... and the classifier `module.fc.*`. The reference holds the train-mode
  features at several widths and the eval-mode features at the calibrated
  width, on 64x64 images normalized with ImageNet's statistics.
* `us3l_mobilenetv2_tiny.pth.tar`: the official `us_cifar_mobilenetv2`
  (`models/OFA/us_mobilenet_v2.py`) in `SimCLR_Momentum`: a US3L checkpoint
  of another architecture, for the converter's refusal.
* `us3l_cifar_resnet18_incomplete.pth.tar`: the query encoder of the first
  file without `layer4` (a partially written file), for the refusal.

Size: the official constructors fix 64 stem channels (a full ResNet-18
encoder is 45 MB). To keep the fixtures small (2.9 MB together), the
module-level names `USConv2d`, `USBatchNorm2d` and `USLinear` of the official
model modules are replaced by subclasses of the official classes that divide
the channel counts the constructors pass them by `CHANNEL_DIVISOR` (8): 8
stem channels, stages of 8/16/32/64 (x4 after a bottleneck). The image's 3
input channels, the head sizes and every forward method stay official and
unchanged. The depth layouts are the real ones (ResNet-18: [2, 2, 2, 2];
ResNet-50: [3, 4, 6, 3]).

The official `utils/forward_hook.py` imports `torch._six` (gone from current
torch); `simclr.py` only uses it for feature distillation, off here, so it
is replaced by a stub module. `slimmable_ops.py` starts with
`from turtle import width` (unused); where `turtle` is not importable a stub
stands in. Nothing of the official code is copied into keras_slim.
"""

import os
import sys
import types

import numpy as np
import torch

CHANNEL_DIVISOR = 8
WIDTHS = (1.0, 0.75, 0.6, 0.5, 0.25)
CALIBRATED_WIDTH = 0.5
BATCH = 8
# The official loaders' transforms.Normalize: datasets/__init__.py
# (build_ssl_transform), workers/linear.py.
CIFAR_MEAN = np.array([0.4914, 0.4822, 0.4465], np.float32)
CIFAR_STD = np.array([0.2023, 0.1994, 0.2010], np.float32)
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def _namespace(**fields):
    return types.SimpleNamespace(**fields)


def _config(dim=16, hidden_dim=32):
    """The fields of US3L's yacs config that SimCLR_Momentum reads."""
    return _namespace(
        SSL=_namespace(SETTING=_namespace(
            DIM=dim, HIDDEN_DIM=hidden_dim, MLP=True, PREDICTOR=True,
            MOMENTUM=0.99)),
        MODEL=_namespace(OFA=_namespace(DISTILL_FEATURE=False)),
        DEVICE="cpu",
    )


def _load_official(root, load_package):
    try:
        import turtle  # noqa: F401  (slimmable_ops imports it, unused)
    except ImportError:
        stub = types.ModuleType("turtle")
        stub.width = None
        sys.modules["turtle"] = stub
    mods = load_package(root, "models.OFA", [
        "slimmable_ops", "us_cifar_resnet", "us_resnet", "us_mobilenet_v2"])
    load_package(root, "utils", [])
    hooks = types.ModuleType("utils.forward_hook")

    class ForwardHookManager:  # only used for feature distillation (off)
        def __init__(self, *args, **kwargs):
            raise RuntimeError("feature distillation is off in the fixtures")

    hooks.ForwardHookManager = ForwardHookManager
    sys.modules["utils.forward_hook"] = hooks
    mods.update(load_package(root, "utils.ssl_algorithms", ["simclr"]))
    return mods


def _scale_channels(ops, modules, divisor):
    """Official layer classes whose constructors get channels / divisor."""

    def scale(channels):
        if channels == 3:  # the image
            return channels
        if channels % divisor:
            raise ValueError(f"{channels} channels do not divide by {divisor}")
        return channels // divisor

    class USConv2d(ops.USConv2d):
        def __init__(self, in_channels, out_channels, *args, **kwargs):
            if kwargs.get("groups", 1) != 1:
                kwargs["groups"] = scale(kwargs["groups"])
            super().__init__(scale(in_channels), scale(out_channels), *args,
                             **kwargs)

    class USBatchNorm2d(ops.USBatchNorm2d):
        def __init__(self, num_features, *args, **kwargs):
            super().__init__(scale(num_features), *args, **kwargs)

    class USLinear(ops.USLinear):
        # The backbone's features come in; the head size stays as asked.
        def __init__(self, in_features, out_features, *args, **kwargs):
            super().__init__(scale(in_features), out_features, *args,
                             **kwargs)

    for module in modules:
        for name, cls in (("USConv2d", USConv2d),
                          ("USBatchNorm2d", USBatchNorm2d),
                          ("USLinear", USLinear)):
            if hasattr(module, name):
                setattr(module, name, cls)


def _images(rng, size):
    """8-bit images (small in the .npz) and the same as floats in [0, 1]."""
    pixels = rng.integers(0, 256, (BATCH, size, size, 3), dtype=np.uint8)
    return pixels, pixels.astype(np.float32) / 255.0


def _to_torch(x, mean, std):
    x = (x - mean) / std
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _set_width(module, width):
    # What workers/ssl.py and workers/linear.py do to pick a sub-network.
    module.apply(lambda m: setattr(m, "width_mult", width))


def _pooled(encoder, x, width, train):
    """The encoder's pooled features: the input of its `fc` (a pre-hook)."""
    captured = {}
    hook = encoder.fc.register_forward_pre_hook(
        lambda m, args: captured.__setitem__("f", args[0].detach().clone()))
    _set_width(encoder, width)
    encoder.train(train)
    try:
        with torch.no_grad():
            encoder(x)
    finally:
        hook.remove()
    return captured["f"].numpy()


def _snapshot(module):
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def _save_us3l(path, state_dict, arch, optimizer, epoch=400, module=True):
    """`workers/ssl.py` / `workers/linear.py`: {epoch, arch, state_dict,
    optimizer}, keys with DistributedDataParallel's `module.` prefix."""
    prefix = "module." if module else ""
    torch.save({"epoch": epoch, "arch": arch,
                "state_dict": {prefix + k: v for k, v in state_dict.items()},
                "optimizer": optimizer}, path)


def make_cifar(mods, out, rng, generator, randomize, one_sgd_step):
    model = mods["simclr"].SimCLR_Momentum(
        mods["us_cifar_resnet"].us_cifar_resnet18, _config())
    # encoder_k is a deepcopy of encoder_q: give it weights of its own so
    # that a converter reading the wrong encoder fails the parity test.
    randomize(model.encoder_q, generator)
    randomize(model.encoder_k, generator)
    randomize(model.predictor, generator)
    optimizer = one_sgd_step(model)
    state = _snapshot(model)  # before any forward (the heads' BN1d update)
    # The momentum encoder (as large as the query encoder) is left out of
    # the file to keep it small; a converter must never read it anyway.
    state = {k: v for k, v in state.items() if not k.startswith("encoder_k.")}
    pixels, x = _images(rng, 32)
    ref = {"pixels": pixels, "widths": np.array(WIDTHS),
           "mean": CIFAR_MEAN, "std": CIFAR_STD}
    for w in WIDTHS:
        ref[f"features_{w:g}"] = _pooled(
            model.encoder_q, _to_torch(x, CIFAR_MEAN, CIFAR_STD), w, True)
    name = "us3l_simclr_cifar_resnet18_tiny"
    _save_us3l(os.path.join(out, f"{name}.pth.tar"), state,
               "us_cifar_resnet18", optimizer)
    np.savez_compressed(os.path.join(out, f"{name}_reference.npz"), **ref)
    incomplete = {k: v for k, v in state.items()
                  if k.startswith("encoder_q.") and not k.startswith(
                      ("encoder_q.layer3.", "encoder_q.layer4.",
                       "encoder_q.fc."))}
    _save_us3l(os.path.join(out, "us3l_cifar_resnet18_incomplete.pth.tar"),
               incomplete, "us_cifar_resnet18", {})


def make_imagenet_lincls(mods, out, rng, generator, randomize, one_sgd_step):
    model = mods["us_resnet"].us_resnet50(num_classes=10, bn_track_stats=True)
    randomize(model, generator)
    # BN calibration at one width as workers/linear.py `bn_calibrate` does
    # it: train-mode forward passes, the default momentum 0.1, from the
    # statistics already there. (The cumulative average of
    # `bn_calibration_init`, momentum None, fails in USBatchNorm2d: it hands
    # momentum to F.batch_norm, which needs a float.)
    _set_width(model, CALIBRATED_WIDTH)
    model.train()
    with torch.no_grad():
        for _ in range(10):
            batch = rng.uniform(0.0, 1.0, (BATCH, 64, 64, 3)).astype(
                np.float32)
            model(_to_torch(batch, IMAGENET_MEAN, IMAGENET_STD))
    optimizer = one_sgd_step(model)
    state = _snapshot(model)
    pixels, x = _images(rng, 64)
    tx = _to_torch(x, IMAGENET_MEAN, IMAGENET_STD)
    ref = {"pixels": pixels, "widths": np.array(WIDTHS),
           "mean": IMAGENET_MEAN, "std": IMAGENET_STD,
           "calibrated_width": np.array(CALIBRATED_WIDTH)}
    # Eval mode first: train-mode passes update the running statistics.
    ref["eval_features"] = _pooled(model, tx, CALIBRATED_WIDTH, False)
    for w in WIDTHS:
        ref[f"features_{w:g}"] = _pooled(model, tx, w, True)
    name = "us3l_lincls_imagenet_resnet50_tiny"
    _save_us3l(os.path.join(out, f"{name}.pth.tar"), state, "us_resnet50",
               optimizer, epoch=100)
    np.savez_compressed(os.path.join(out, f"{name}_reference.npz"), **ref)


def make_mobilenet(mods, out, generator, randomize):
    official = mods["us_mobilenet_v2"]
    divisor = CHANNEL_DIVISOR

    def base_encoder(num_classes):
        model = official.us_cifar_mobilenetv2(num_classes=num_classes)
        # Its last BN and fc are plain torch layers sized 1280: follow the
        # scaled last convolution.
        last = model.features[-1][0].out_channels_max
        model.features[-1][1] = torch.nn.BatchNorm2d(last)
        model.fc = torch.nn.Linear(last, num_classes)
        assert last == 1280 // divisor
        return model

    model = mods["simclr"].SimCLR_Momentum(base_encoder, _config())
    # Only its tensors matter: the scaled network is not run (its channel
    # counts, e.g. 4, are below the 8-channel grid of its rounding).
    randomize(model, generator)
    state = {k: v for k, v in model.state_dict().items()
             if not k.startswith("encoder_k.")}
    _save_us3l(os.path.join(out, "us3l_mobilenetv2_tiny.pth.tar"), state,
               "us_cifar_mobilenetv2", {})


def make_us3l(root, out, seed, load_package, randomize, save, one_sgd_step):
    """Writes the US3L fixtures (see the module docstring).

    `save` (the SlimCLR layout, with `global_step` and `best_acc1`) is not
    used: US3L's scripts save `{epoch, arch, state_dict, optimizer}`.
    """
    del save
    mods = _load_official(root, load_package)
    _scale_channels(mods["slimmable_ops"],
                    [mods["us_cifar_resnet"], mods["us_resnet"],
                     mods["us_mobilenet_v2"]], CHANNEL_DIVISOR)
    rng = np.random.default_rng(seed + 3)
    generator = torch.Generator().manual_seed(seed + 3)
    make_cifar(mods, out, rng, generator, randomize, one_sgd_step)
    make_imagenet_lincls(mods, out, rng, generator, randomize, one_sgd_step)
    make_mobilenet(mods, out, generator, randomize)
