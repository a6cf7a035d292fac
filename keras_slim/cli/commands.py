"""The `keras-slim` commands and `main`.

The imports inside the commands are deliberate, not a cycle dodge:
`keras_slim/__init__` imports this package before TensorFlow (to import
TensorFlow quietly for the command), so the top level here loads the
standard library only, and each command loads what it runs when it runs
(`--help` none of it).
"""

import json
import sys

from keras_slim.cli.parser import build_parser
from keras_slim.cli.startup import import_tensorflow_quietly

__all__ = ["main"]


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

    from keras_slim.profile import profile

    backbone = _make_backbone(args)
    shape = (args.image_size, args.image_size, backbone.image_shape[-1])
    images = np.random.default_rng(0).random((2,) + shape, dtype="float32")
    rows = []
    for width in backbone.widths.stat_widths:
        cost = profile(backbone, width, shape)
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


def _pretrain(args):
    from keras_slim.config import dump_config
    from keras_slim.config import load_config
    from keras_slim.configs import resolve_config_path

    config = load_config(resolve_config_path(args.config), args.overrides)
    if args.print_config:
        print(dump_config(config), end="")
        return 0
    from keras_slim.runs import BaselineNotBeaten
    from keras_slim.runs import pretrain

    try:
        pretrain(config, evaluate=not args.no_eval)
    except BaselineNotBeaten as error:
        print(f"keras-slim pretrain: {error}", file=sys.stderr)
        return 3
    return 0


def _evaluate(args):
    from keras_slim.runs import evaluate_run

    protocols = [p.strip() for p in args.protocols.split(",") if p.strip()]
    evaluate_run(args.run_dir, protocols=protocols, overrides=args.overrides)
    return 0


def _finetune(args):
    from keras_slim.config import dump_config
    from keras_slim.runs.finetune import finetune_from_config
    from keras_slim.runs.finetune_config import finetune_config

    config = finetune_config(args.run_dir, args.overrides, data=args.data,
                             output_dir=args.output)
    if args.print_config:
        print(dump_config(config), end="")
        return 0
    finetune_from_config(config)
    return 0


def _export(args):
    from keras_slim.export import ExportError
    from keras_slim.runs.export_run import describe
    from keras_slim.runs.export_run import export_run

    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    for name in ("representative", "images", "latency_runs"):
        if getattr(args, name) < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be >= 1.")
    try:
        manifest = export_run(
            args.run_dir, output_dir=args.output, widths=args.widths,
            precisions=precisions, head=args.head, int8_io=args.int8_io,
            representative_count=args.representative,
            image_count=args.images, saved_model=not args.no_saved_model,
            bundle=not args.no_bundle, latency_runs=args.latency_runs,
            overwrite=args.overwrite)
    except ExportError as error:
        print(f"keras-slim export: {error}", file=sys.stderr)
        return 2
    print(describe(manifest))
    return 0


def _convert(args):
    from keras_slim.runs.convert_run import convert_run

    convert_run(args.checkpoint, args.out_dir, lincls=args.lincls,
                config=args.config, overrides=args.overrides,
                image_size=args.image_size, overwrite=args.overwrite)
    return 0


def main(argv=None):
    import_tensorflow_quietly()
    parser = build_parser()
    # KEY=VALUE overrides may also follow options (`convert A B --lincls C
    # data.source=D`), which argparse alone leaves unrecognized.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any(
                "=" not in e or e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = list(args.overrides) + extra
    commands = {"profile": _profile, "pretrain": _pretrain,
                "evaluate": _evaluate, "finetune": _finetune,
                "export": _export,
                "convert": _convert}
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError,
            FloatingPointError) as error:
        print(f"keras-slim {args.command}: error: {error}", file=sys.stderr)
        return 2
