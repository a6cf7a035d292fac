"""Writes the checkpoint-conversion fixtures with the official PyTorch code.

Run it in a separate environment that has PyTorch (torch is no dependency of
keras_slim), beside checkouts of the official repositories:

    python -m venv /tmp/torchenv
    /tmp/torchenv/bin/pip install --no-deps "torch==2.13.0+cpu"
    /tmp/torchenv/bin/pip install filelock sympy networkx jinja2 fsspec \
        typing-extensions numpy
    /tmp/torchenv/bin/python tools/make_convert_fixtures.py \
        --slimclr /path/to/SlimCLR --us3l /path/to/US3L-CVPR2023 \
        --out tests/fixtures/convert

It builds the official models (SlimCLR `models/backbones/s_resnet.py`,
`models/s_moco.py`, `models/s_mocov3.py`; US3L
`models/OFA/us_cifar_resnet.py`, `utils/ssl_algorithms/simclr.py`), gives
them random weights and BatchNorm statistics (not init values), saves them
with `torch.save` in the layout the official training scripts write
(`{epoch, global_step, arch, state_dict, best_acc1, optimizer}`), and records
the official models' outputs at every width on fixed images in
`<name>_reference.npz`. The official code is imported from the checkouts
unchanged; nothing of it is copied into keras_slim.

Size: the official SlimCLR ResNet-50 sizes its weights from the largest
width of its list, so the fixtures use the list [1/16, 3/64, 1/32, 1/64]
(stem 4/3/2/1 channels): the ResNet-50 layout, 16 blocks, at 1/16 of the
channels (the keras side sees base width 4 and widths [1, .75, .5, .25]).
US3L's ResNet fixes 64 stem channels in its constructor; the US3L fixtures
(tools/make_us3l_fixture.py) scale the channel counts the constructor passes
to the official layer classes by 1/8, in the real ResNet-18/50 layouts (a
full-size file would be 45 MB).
"""

import argparse
import collections
import importlib.util
import os
import sys
import types

import numpy as np
import torch

SLIMCLR_WIDTHS = [1 / 16, 3 / 64, 1 / 32, 1 / 64]
IMAGE_SIZE = 64
BATCH = 2
SEED = 20261201


def load_package(root, package, modules):
    """Imports `modules` of a checkout as `package.*` without its __init__s.

    The official `__init__` files pull in torchvision (not installable beside
    the CPU torch wheel); the modules needed here do not use it.
    """
    for i in range(1, len(package.split(".")) + 1):
        name = ".".join(package.split(".")[:i])
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [os.path.join(root, *name.split("."))]
            sys.modules[name] = module
    loaded = {}
    for module_name in modules:
        full = f"{package}.{module_name}"
        path = os.path.join(root, *full.split(".")) + ".py"
        if not os.path.exists(path):
            path = os.path.join(root, *full.split("."), "__init__.py")
        spec = importlib.util.spec_from_file_location(full, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[full] = module
        spec.loader.exec_module(module)
        loaded[module_name] = module
    return loaded


def images(rng):
    x = rng.uniform(0.0, 1.0, (BATCH, IMAGE_SIZE, IMAGE_SIZE, 3))
    return x.astype(np.float32)


# The official data loaders' transforms.Normalize (dataset/dataloader.py):
# the official models see normalized images, keras_slim's converted ones take
# images in [0, 1] and normalize inside.
IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], np.float32)
IMAGENET_STD = np.array([0.229, 0.224, 0.225], np.float32)


def to_torch(x, normalize=True):
    if normalize:
        x = (x - IMAGENET_MEAN) / IMAGENET_STD
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def randomize(module, generator):
    """Random weights and BN statistics, scaled to keep activations finite."""
    with torch.no_grad():
        for name, p in module.named_parameters():
            if p.ndim >= 2:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=generator)
                        * (2.0 / fan_in) ** 0.5)
            elif name.endswith("weight"):
                p.copy_(torch.rand(p.shape, generator=generator) + 0.5)
            else:
                p.copy_(0.2 * torch.randn(p.shape, generator=generator))
        for name, b in module.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(0.2 * torch.randn(b.shape, generator=generator))
            elif name.endswith("running_var"):
                b.copy_(torch.rand(b.shape, generator=generator) + 0.5)
            elif name.endswith("num_batches_tracked"):
                b.fill_(1234)


def slimclr_args(slim_fc):
    return argparse.Namespace(
        depth=50, width_mult_list=list(SLIMCLR_WIDTHS), slim_fc=slim_fc,
        overlap_weight=True, moco_mlp_dim=4096, simclr_mlp_dim=2048,
        inplace_distill=False, inplace_distill_mixed=False, seed_loss=True,
        image_size=IMAGE_SIZE, slim_loss_weighted=5, slim_start_epoch=100,
        teacher_T=5.0, student_T=5.0, aux_loss_w=0.5, num_epochs=200,
    )


def pooled_and_head(encoder, x, width):
    """The encoder's pooled features (a hook on its avgpool) and fc output."""
    captured = {}
    hook = encoder.avgpool.register_forward_hook(
        lambda m, i, o: captured.__setitem__("f", torch.flatten(o, 1))
    )
    try:
        head = encoder(x, specify_width=width)[width]
    finally:
        hook.remove()
    return captured["f"].numpy(), head.numpy()


def one_sgd_step(model):
    """An optimizer state dict as training leaves it (momentum buffers).

    Over the first few trained parameters only: the reader must skip it, and
    its size would double the fixture's.
    """
    params = [p for p in model.parameters() if p.requires_grad][:4]
    optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9,
                                weight_decay=1e-4)
    saved = [p.detach().clone() for p in params]
    for p in params:
        p.grad = torch.full_like(p, 1e-3)
    optimizer.step()
    state = optimizer.state_dict()
    with torch.no_grad():  # the saved weights are the ones the references saw
        for p, value in zip(params, saved):
            p.copy_(value)
            p.grad = None
    return state


def save(path, state_dict, arch, optimizer, module_prefix):
    prefix = "module." if module_prefix else ""
    ordered = collections.OrderedDict(
        (prefix + k, v) for k, v in state_dict.items()
    )
    torch.save({"epoch": 200, "global_step": 250200, "arch": arch,
                "state_dict": ordered, "best_acc1": 0.0,
                "optimizer": optimizer}, path)


def make_mocov2(mods, out, rng, generator):
    args = slimclr_args("mocov2_slim")
    model = mods["s_moco"].s_MoCo(
        mods["s_resnet"].Model, dim=128, K=24, m=0.999, T=0.2, mlp=True,
        args=args,
    )
    randomize(model.encoder_q, generator)
    randomize(model.encoder_k, generator)
    with torch.no_grad():
        model.queue.copy_(torch.nn.functional.normalize(
            torch.randn(model.queue.shape, generator=generator), dim=0))
        model.queue_ptr.fill_(6)
    model.eval()
    x = images(rng)
    ref = {"images": x, "widths": np.array(model.width_mult_list),
           "queue": model.queue.numpy().T.copy(),
           "queue_ptr": np.array(int(model.queue_ptr))}
    with torch.no_grad():
        for w in model.width_mult_list:
            f, z = pooled_and_head(model.encoder_q, to_torch(x), w)
            ref[f"features_{w:g}"] = f
            ref[f"projection_{w:g}"] = z
        w = model.width_mult_list[0]
        f, z = pooled_and_head(model.encoder_k, to_torch(x), w)
        ref["key_features"] = f
        ref["key_projection"] = z
    save(os.path.join(out, "slimclr_mocov2_tiny.pth.tar"),
         model.state_dict(), "resnet50", one_sgd_step(model),
         module_prefix=True)
    np.savez_compressed(os.path.join(out, "slimclr_mocov2_tiny_reference.npz"),
                        **ref)


def make_mocov3(mods, out, rng, generator):
    args = slimclr_args("mocov3_slim")
    # s_MoCoV3 asserts mlp_dim >= 4096; the hidden size at width w is
    # int(4096 w): 256 at the fixture's largest width.
    model = mods["s_mocov3"].s_MoCoV3_ResNet(
        mods["s_resnet"].Model, dim=256, mlp_dim=4096, T=1.0, init_m=0.99,
        num_epochs=300, m_cos=True, args=args,
    )
    randomize(model.base_encoder, generator)
    randomize(model.momentum_encoder, generator)
    randomize(model.predictor, generator)
    model.eval()
    x = images(rng)
    ref = {"images": x, "widths": np.array(model.width_mult_list)}
    with torch.no_grad():
        for w in model.width_mult_list:
            f, z = pooled_and_head(model.base_encoder, to_torch(x), w)
            ref[f"features_{w:g}"] = f
            ref[f"projection_{w:g}"] = z
            ref[f"prediction_{w:g}"] = model.predictor(
                (torch.from_numpy(z), w))[0].numpy()
        w = model.width_mult_list[0]
        f, z = pooled_and_head(model.momentum_encoder, to_torch(x), w)
        ref["key_features"] = f
        ref["key_projection"] = z
    # Saved without the DistributedDataParallel `module.` prefix.
    save(os.path.join(out, "slimclr_mocov3_tiny.pth.tar"),
         model.state_dict(), "resnet50", one_sgd_step(model),
         module_prefix=False)
    np.savez_compressed(os.path.join(out, "slimclr_mocov3_tiny_reference.npz"),
                        **ref)


def make_simclr(mods, out, rng, generator):
    args = slimclr_args("simclr_slim")
    # The hidden size at width w is int(2048 w): 128 at the largest width.
    model = mods["s_simclr"].s_SimCLR(mods["s_resnet"].Model, dim=128, T=0.1,
                                      mlp=True, args=args)
    randomize(model.encoder_q, generator)
    model.eval()
    x = images(rng)
    ref = {"images": x, "widths": np.array(model.width_mult_list)}
    with torch.no_grad():
        for w in model.width_mult_list:
            f, z = pooled_and_head(model.encoder_q, to_torch(x), w)
            ref[f"features_{w:g}"] = f
            ref[f"projection_{w:g}"] = z
    save(os.path.join(out, "slimclr_simclr_tiny.pth.tar"), model.state_dict(),
         "resnet50", one_sgd_step(model), module_prefix=True)
    np.savez_compressed(os.path.join(out, "slimclr_simclr_tiny_reference.npz"),
                        **ref)


def make_lincls(mods, out, rng, generator, classes=10):
    args = slimclr_args("supervised_switch")
    model = mods["s_resnet"].Model(num_classes=classes, input_size=224,
                                   args=args)
    randomize(model, generator)
    model.eval()
    x = images(rng)
    ref = {"images": x, "widths": np.array(model.width_mult_list)}
    with torch.no_grad():
        for w in model.width_mult_list:
            f, logits = pooled_and_head(model, to_torch(x), w)
            ref[f"features_{w:g}"] = f
            ref[f"logits_{w:g}"] = logits
    save(os.path.join(out, "slimclr_lincls_tiny.pth.tar"),
         model.state_dict(), "resnet50", one_sgd_step(model),
         module_prefix=True)
    np.savez_compressed(os.path.join(out, "slimclr_lincls_tiny_reference.npz"),
                        **ref)


def make_bad_files(mods, out, generator):
    """Small files of the wrong kind, for the converters' error tests."""
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3),
                                torch.nn.BatchNorm2d(8),
                                torch.nn.Linear(8, 4))
    save(os.path.join(out, "other_architecture.pth.tar"), other.state_dict(),
         "custom", {}, module_prefix=True)
    # The stem BatchNorms of a SlimCLR lincls file, second and third swapped:
    # sizes [4, 2, 3, 1] form no width list.
    model = mods["s_resnet"].Model(num_classes=10, input_size=224,
                                   args=slimclr_args("supervised_switch"))
    state = model.state_dict()
    kept = {k: v for k, v in state.items()
            if k.startswith(("conv1.", "bn1.", "features.0.conv1"))}
    for field in ("weight", "bias", "running_mean", "running_var"):
        kept[f"bn1.bn.1.{field}"], kept[f"bn1.bn.2.{field}"] = (
            state[f"bn1.bn.2.{field}"], state[f"bn1.bn.1.{field}"])
    save(os.path.join(out, "slimclr_unordered_widths.pth.tar"), kept,
         "resnet50", {}, module_prefix=True)


def make_slimclr(root, out, seed):
    mods = load_package(root, "models", ["utils", "moco"])
    mods.update(load_package(root, "models.backbones",
                             ["slimmable_ops", "s_resnet"]))
    mods.update(load_package(root, "models.distiller",
                             ["KD", "DKD", "ATKD", "factory"]))
    sys.modules["models.distiller"].choose_kd_loss = (
        mods["factory"].choose_kd_loss)
    mods.update(load_package(root, "models", ["s_moco", "s_mocov3",
                                              "s_simclr"]))
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    make_mocov2(mods, out, rng, generator)
    make_mocov3(mods, out, rng, generator)
    make_lincls(mods, out, rng, generator)
    make_bad_files(mods, out, generator)
    # Last, so that the other fixtures' random draws stay as they were.
    make_simclr(mods, out, rng, generator)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--slimclr", help="checkout of mzhaoshuai/SlimCLR")
    parser.add_argument("--us3l",
                        help="checkout of megvii-research/US3L-CVPR2023")
    parser.add_argument("--out", default="tests/fixtures/convert")
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(args.seed)
    if args.slimclr:
        make_slimclr(os.path.abspath(args.slimclr), args.out, args.seed)
    if args.us3l:
        from make_us3l_fixture import make_us3l  # noqa: E402  (same folder)

        make_us3l(os.path.abspath(args.us3l), args.out, args.seed,
                  load_package, randomize, save, one_sgd_step)
    for name in sorted(os.listdir(args.out)):
        size = os.path.getsize(os.path.join(args.out, name))
        print(f"{name:45s} {size:>10,d} bytes")


if __name__ == "__main__":
    main()
