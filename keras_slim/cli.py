"""`keras-slim`: the command line of keras_slim.

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it is imported; oneDNN
kernels made training steps about 1.5x faster on our CPUs and are off by
default there, so the CLI switches them on before anything imports TensorFlow
(an explicit value in the environment wins).
"""

import argparse
import json
import os
import sys


def _enable_fast_cpu_kernels():
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def _parse_widths(text):
    try:
        return [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"widths must be comma-separated numbers such as 1.0,0.5,0.25; "
            f"got {text!r}"
        ) from None


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-slim",
        description=(
            "Slimmable self-supervised pretraining for Keras: one set of "
            "weights, several widths."
        ),
    )
    commands = parser.add_subparsers(dest="command", required=True)
    prof = commands.add_parser(
        "profile",
        help="Build a slimmable backbone and report each width's cost.",
        description=(
            "Builds a slimmable backbone, prints parameters and FLOPs at each "
            "width, and checks that each width's plain Keras sub-network "
            "computes the same features as the slimmable network."
        ),
    )
    prof.add_argument(
        "--backbone", default="resnet18",
        choices=["resnet18", "resnet34", "resnet50", "mobilenet_v2"],
    )
    prof.add_argument(
        "--widths", type=_parse_widths, default=None,
        help="comma-separated widths, largest first (default: the "
        "backbone's default list)",
    )
    prof.add_argument("--stem", default="cifar", choices=["cifar", "imagenet"])
    prof.add_argument("--base-width", type=int, default=64)
    prof.add_argument(
        "--image-size", type=int, default=32, help="square image side"
    )
    prof.add_argument("--json", action="store_true", help="print JSON only")
    return parser


def _make_backbone(args):
    from keras_slim import backbones

    kwargs = {}
    if args.widths is not None:
        kwargs["widths"] = args.widths
    if args.backbone == "mobilenet_v2":
        return backbones.SlimMobileNetV2(**kwargs)
    return backbones.SlimResNet(
        depth=int(args.backbone[len("resnet"):]),
        stem=args.stem,
        base_width=args.base_width,
        **kwargs,
    )


def _profile(args):
    import numpy as np

    import keras_slim

    backbone = _make_backbone(args)
    shape = (args.image_size, args.image_size, backbone.image_shape[-1])
    images = np.random.default_rng(0).random((2,) + shape, dtype="float32")
    rows = []
    for width in backbone.widths.stat_widths:
        cost = keras_slim.profile(backbone, width, shape)
        slim = np.asarray(backbone(images, width=width, training=False))
        plain = np.asarray(backbone.subnetwork(width)(images, training=False))
        row = cost.as_dict()
        row["feature_dim"] = backbone.feature_dim(width)
        row["subnetwork_max_abs_diff"] = float(np.abs(slim - plain).max())
        rows.append(row)
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    print(f"{backbone.name}: {backbone.count_params():,} shared parameters")
    print(f"{'width':>6} {'params':>12} {'MFLOPs':>10} {'features':>9} "
          f"{'plain-vs-slim':>14}")
    for row in rows:
        print(
            f"{row['width']:>6g} {row['params']:>12,} "
            f"{row['flops'] / 1e6:>10.1f} {row['feature_dim']:>9} "
            f"{row['subnetwork_max_abs_diff']:>14.2e}"
        )
    return 0


def main(argv=None):
    _enable_fast_cpu_kernels()
    args = _build_parser().parse_args(argv)
    try:
        return {"profile": _profile}[args.command](args)
    except ValueError as error:
        print(f"keras-slim {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
