"""`keras-slim`: the command line of keras_slim.

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it is imported; oneDNN
kernels made training steps about 1.5x faster on our CPUs, so the CLI
switches them on before anything imports TensorFlow (an explicit value in the
environment wins). The package's `__init__` does it, because importing this
module imports the package, and the package imports TensorFlow; for the
`keras-slim` command it imports TensorFlow through
`import_tensorflow_quietly` so that the command's output starts with its own.

This module imports nothing of keras_slim at its top (the package's
`__init__` imports it before TensorFlow); each command imports what it runs
when it runs, so `--help` loads no run, data or export module.
"""

import argparse
import json
import os
import re
import sys
import tempfile

# What TensorFlow prints while it loads: absl's notice that it logs to
# stderr until `absl::InitializeLog()`, and INFO lines such as oneDNN's
# "custom operations are on".
_STARTUP_LINE = re.compile(
    r"WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|I\d{4} [\d:.]+ +\d+ [\w.]+:\d+\] ")


def import_tensorflow_quietly():
    """Import TensorFlow without its start-up log lines on stderr.

    They come twice: two of TensorFlow's extension modules
    (`_pywrap_cpu_feature_guard` and `_pywrap_profiler_plugin`) each carry
    their own copy of its platform code and of absl's logging, and each logs
    the oneDNN line while it loads. `TF_CPP_MIN_LOG_LEVEL` cannot hide them:
    TensorFlow applies it after those loaders have run. So stderr is held in
    a file while TensorFlow loads, and all of it but those lines is written
    back. Defaults `TF_CPP_MIN_LOG_LEVEL` to 2 (warnings and info off) and
    `TF_ENABLE_ONEDNN_OPTS` to 1; a value the user set wins, and with
    `TF_CPP_MIN_LOG_LEVEL=0` nothing is held back.
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if "tensorflow" in sys.modules:
        return
    if os.environ["TF_CPP_MIN_LOG_LEVEL"].strip() in ("", "0"):
        import tensorflow  # noqa: F401
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as held:
        os.dup2(held.fileno(), 2)
        try:
            import tensorflow  # noqa: F401
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            held.seek(0)
            text = held.read().decode("utf-8", errors="replace")
            sys.stderr.write("".join(
                line for line in text.splitlines(keepends=True)
                if not _STARTUP_LINE.match(line)))
            sys.stderr.flush()


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
    _add_pretrain(commands)
    _add_evaluate(commands)
    _add_export(commands)
    _add_convert(commands)
    return parser


_CONFIG_HELP = (
    "a YAML config: a path, or the name of a bundled config ({names}). "
    "Default: quickstart"
)
_OVERRIDE_HELP = (
    "KEY=VALUE settings that override the config, e.g. train.epochs=5 "
    "data.source=cifar10 backbone.widths=[1.0,0.5]. Values are read as YAML."
)


def _add_pretrain(commands):
    # Local imports in this module: see the module docstring.
    from keras_slim.configs import bundled_config_names

    names = ", ".join(bundled_config_names())
    pre = commands.add_parser(
        "pretrain",
        help="Pretrain every width of a slimmable backbone in one run.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Pretrains a slimmable backbone with a self-supervised recipe "
            "(SlimCLR, US3L, DSPNet) so that\none set of weights runs at "
            "every width, then evaluates each width (kNN and linear probe,\n"
            "beside a random-init baseline) and writes a run directory:\n\n"
            "  config.yaml            the resolved configuration\n"
            "  checkpoint/            the training state (a rerun resumes)\n"
            "  logs/                  TensorBoard logs\n"
            "  backbone.keras         the trained slimmable backbone\n"
            "  results.json           per width: params, FLOPs, accuracy\n"
            "  accuracy_vs_flops.png  the same as a plot\n\n"
            "Examples:\n"
            "  keras-slim pretrain                        # the quick start "
            "(digits, ~5 min on 2 cores)\n"
            "  keras-slim pretrain --config slimclr_cifar10 "
            "data.source=/data/cifar10.zip\n"
            "  keras-slim pretrain --config my.yaml train.epochs=5 "
            "output_dir=runs/try"
        ),
    )
    pre.add_argument("--config", default="quickstart",
                     help=_CONFIG_HELP.format(names=names))
    pre.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                     help=_OVERRIDE_HELP)
    pre.add_argument("--no-eval", action="store_true",
                     help="skip the evaluation after pretraining")
    pre.add_argument("--print-config", action="store_true",
                     help="print the resolved config and exit")


def _add_evaluate(commands):
    from keras_slim.runs import PROTOCOLS

    ev = commands.add_parser(
        "evaluate",
        help="Evaluate every width of a pretrained run directory.",
        description=(
            "Runs evaluation protocols on the backbone of a run directory "
            "written by `keras-slim pretrain` and merges the figures into "
            "its results.json and plot. Protocols: knn (cosine kNN, k=200, "
            "T=0.1), linear (one linear probe per width on frozen "
            "features), joint (SlimCLR's switchable joint probe), paper "
            "(SlimCLR's own protocol: augmented crops, SGD with a step "
            "schedule, the switchable probe; slow: the backbone runs every "
            "epoch), semi "
            "(fine-tuning with evaluation.semi_supervised label fractions), "
            "align (alignment and uniformity)."
        ),
    )
    ev.add_argument("run_dir", help="the run directory, e.g. runs/quickstart")
    ev.add_argument("--protocols", default="knn,linear",
                    help=f"comma-separated, from {','.join(PROTOCOLS)} "
                    f"(default knn,linear)")
    ev.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="evaluation.* or data.* settings, e.g. "
                    "evaluation.linear_epochs=50")


def _add_export(commands):
    from keras_slim.export import PRECISIONS

    ex = commands.add_parser(
        "export",
        help="Export each width of a pretrained run to TFLite/LiteRT.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Writes each width of a run directory's backbone as its own "
            ".tflite (TFLite builtin ops\nonly, so edge runtimes can run "
            "it), in each precision, plus a SavedModel per width and\none "
            ".tflite per precision holding every width as a signature. "
            "Every file is run with\nthe LiteRT interpreter on the run's "
            "test images and compared with Keras; a file that\nmisses its "
            "threshold fails the export (exit code 2). manifest.json lists "
            "each file with\nits size, params, FLOPs, check results, "
            "latency and accuracy.\n\n"
            "Precisions: float32 (exact), float16 (half the size), "
            "dynamic_int8 (int8 weights),\nint8 (int8 weights and "
            "activations, calibrated on the run's training images).\n\n"
            "Examples:\n"
            "  keras-slim export runs/quickstart\n"
            "  keras-slim export runs/quickstart --precisions "
            "float32,float16,dynamic_int8,int8 --head\n"
            "  keras-slim export runs/us3l --widths 1.0,0.625,0.25 "
            "--output exported/"
        ),
    )
    ex.add_argument("run_dir", help="the run directory, e.g. runs/quickstart")
    ex.add_argument("--output", default=None,
                    help="output folder (default RUN_DIR/export)")
    ex.add_argument("--widths", type=_parse_widths, default=None,
                    help="comma-separated widths (default: the run's "
                    "evaluated widths)")
    ex.add_argument("--precisions", default="float32,int8",
                    help=f"comma-separated, from {','.join(PRECISIONS)} "
                    f"(default float32,int8)")
    ex.add_argument("--head", action="store_true",
                    help="train a linear probe per width on the run's "
                    "labels and export it with the backbone (outputs "
                    "logits; the manifest gets each file's accuracy)")
    ex.add_argument("--int8-io", action="store_true",
                    help="int8 input and output tensors for int8 files")
    ex.add_argument("--representative", type=int, default=300,
                    help="training images that calibrate int8 (default 300)")
    ex.add_argument("--images", type=int, default=500,
                    help="test images each file is verified on (default 500)")
    ex.add_argument("--latency-runs", type=int, default=30,
                    help="timed batch-1 runs per file and thread count")
    ex.add_argument("--no-saved-model", action="store_true",
                    help="skip the SavedModel per width")
    ex.add_argument("--no-bundle", action="store_true",
                    help="skip the multi-signature file")
    ex.add_argument("--overwrite", action="store_true",
                    help="replace an earlier export in the output folder")


def _add_convert(commands):
    cv = commands.add_parser(
        "convert",
        help="Convert an official SlimCLR checkpoint into a run directory.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(
            "Reads an official SlimCLR checkpoint (PyTorch .pth.tar, read "
            "safely: no torch needed,\nnothing in the file is run) and writes "
            "a run directory: backbone.keras (every width),\nconfig.yaml, "
            "results.json and, with a linear-evaluation checkpoint, "
            "classifiers/ (one\nImageNet probe per width). `keras-slim "
            "export OUT_DIR --head` then writes verified\nper-width TFLite "
            "classifiers. CHECKPOINT may be a preset name, downloaded from "
            "the\nofficial release and hash-checked.\n\n"
            "Examples:\n"
            "  keras-slim convert slimclr_mocov2_r50_ep800 runs/mocov2_ep800 "
            "--lincls slimclr_mocov2_r50_ep800 data.source=/data/imagenet\n"
            "  keras-slim convert slimclr-mocov3-ep300-57e298e9cd.pth.tar "
            "runs/mocov3"
        ),
    )
    cv.add_argument("checkpoint", help="a .pth.tar file or a preset name")
    cv.add_argument("out_dir", help="the run directory to write")
    cv.add_argument("--lincls", default=None,
                    help="linear-evaluation checkpoint (file or preset name)")
    cv.add_argument("--config", default=None,
                    help="config for the run's data and evaluation settings "
                    "(default: the paper's ImageNet config of the base)")
    cv.add_argument("--image-size", type=int, default=224,
                    help="image side for the printed FLOPs (default 224)")
    cv.add_argument("--overwrite", action="store_true",
                    help="replace a backbone already converted into OUT_DIR")
    cv.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="settings of the run's config, e.g. "
                    "data.source=/data/imagenet")


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
    parser = _build_parser()
    # KEY=VALUE overrides may also follow options (`convert A B --lincls C
    # data.source=D`), which argparse alone leaves unrecognized.
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "overrides") or any(
                "=" not in e or e.startswith("-") for e in extra):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.overrides = list(args.overrides) + extra
    commands = {"profile": _profile, "pretrain": _pretrain,
                "evaluate": _evaluate, "export": _export,
                "convert": _convert}
    try:
        return commands[args.command](args)
    except (ValueError, FileNotFoundError, FileExistsError,
            FloatingPointError) as error:
        print(f"keras-slim {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
