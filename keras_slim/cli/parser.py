"""The `keras-slim` argument parser: commands, options and their help.

The few keras_slim imports inside the functions (choices such as
`PROTOCOLS`) load when the parser is built, after TensorFlow: see
`keras_slim.cli.commands`.
"""

import argparse

__all__ = ["build_parser", "parse_widths"]


def parse_widths(text):
    try:
        return [float(w) for w in text.split(",") if w.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"widths must be comma-separated numbers such as 1.0,0.5,0.25; "
            f"got {text!r}"
        ) from None


def build_parser():
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
        "--widths", type=parse_widths, default=None,
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
    _add_finetune(commands)
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


def _add_described(commands, name, description, summary):
    """A command whose description keeps its own line breaks."""
    return commands.add_parser(
        name, description=description, help=summary,
        formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_switches(parser, switches):
    """On/off options: `(flag, help)` pairs."""
    for flag, text in switches:
        parser.add_argument(flag, action="store_true", help=text)


def _add_pretrain(commands):
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
    _add_switches(pre, [
        ("--no-eval", "skip the evaluation after pretraining"),
        ("--print-config", "print the resolved config and exit")])


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
            "(each width's sub-network fine-tuned alone with "
            "evaluation.semi_supervised label fractions), semi_slim (the "
            "same, every width at once in one SlimClassifier), "
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


_FINETUNE_DESCRIPTION = (
    "Fine-tunes every width of a pretrained run's backbone on labels in "
    "one run (keras_slim.tasks.SlimClassifier:\none `fit`, every width in "
    "each step, one update; the sandwich rule for a width range), then\n"
    "the same from a random initialization, and prints per width params, "
    "FLOPs and the test top-1\nof both. Defaults follow SlimCLR's "
    "supervised main_slim.py (SGD 0.1, cosine, 5% warm-up,\ndecay 1e-4, "
    "100 epochs); set them with finetune.* overrides. Writes a run "
    "directory\n(default RUN_DIR/finetune; a rerun resumes it):\n\n"
    "  config.yaml            the pretraining config + finetune:\n"
    "  checkpoint/            the training state\n"
    "  classifier.keras       the fine-tuned classifier, every width\n"
    "  random_init/           the random-init baseline's\n"
    "  results.json           per width: params, FLOPs, top-1\n\n"
    "`keras-slim export` on it writes per-width TFLite classifiers.\n\n"
    "Examples:\n"
    "  keras-slim finetune runs/quickstart finetune.epochs=10\n"
    "  keras-slim finetune runs/cifar10 --data /data/cifar10.zip "
    "finetune.label_fraction=0.1"
)


def _add_finetune(commands):
    ft = _add_described(
        commands, "finetune", _FINETUNE_DESCRIPTION,
        "Fine-tune every width of a pretrained run on labels at once.")
    ft.add_argument("run_dir", help="the pretraining run directory (or a "
                    "`keras-slim convert` output)")
    ft.add_argument("--data", default=None,
                    help="the labelled data (data.source; default: the "
                    "pretraining data)")
    ft.add_argument("--output", default=None,
                    help="the fine-tuning run directory (default "
                    "RUN_DIR/finetune)")
    _add_switches(ft, [
        ("--print-config", "print the resolved config and exit")])
    ft.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="finetune.*, data.* or evaluation.* settings, e.g. "
                    "finetune.epochs=30 finetune.label_fraction=0.01")


def _add_export(commands):
    from keras_slim.export import PRECISIONS

    ex = commands.add_parser(
        "export",
        help="Export each width of a pretrained or fine-tuned run to "
        "TFLite/LiteRT.",
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
            "A fine-tuning run (`keras-slim finetune`) exports its "
            "classifiers: the files output logits\ntoo, and each file's "
            "top-1 is checked against Keras' on the test images.\n\n"
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
    ex.add_argument("--widths", type=parse_widths, default=None,
                    help="comma-separated widths (default: the run's "
                    "evaluated widths)")
    ex.add_argument("--precisions", default="float32,int8",
                    help=f"comma-separated, from {','.join(PRECISIONS)} "
                    f"(default float32,int8)")
    _add_switches(ex, [
        ("--head", "train a linear probe per width on the run's labels and "
         "export it with the backbone (outputs logits; the manifest gets "
         "each file's accuracy)"),
        ("--int8-io", "int8 input and output tensors for int8 files")])
    counts = (
        ("--representative", 300,
         "training images that calibrate int8 (default 300)"),
        ("--images", 500,
         "test images each file is verified on (default 500)"),
        ("--latency-runs", 30, "timed batch-1 runs per file and thread count"),
    )
    _add_switches(ex, [
        ("--no-saved-model", "skip the SavedModel per width"),
        ("--no-bundle", "skip the multi-signature file"),
        ("--overwrite", "replace an earlier export in the output folder")])
    for flag, default, text in counts:
        ex.add_argument(flag, type=int, default=default, help=text)


_CONVERT_DESCRIPTION = (
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
)


def _add_convert(commands):
    cv = _add_described(
        commands, "convert", _CONVERT_DESCRIPTION,
        "Convert an official SlimCLR checkpoint into a run directory.")
    cv.add_argument("checkpoint", help="a .pth.tar file or a preset name")
    cv.add_argument("out_dir", help="the run directory to write")
    cv.add_argument("--lincls", default=None,
                    help="linear-evaluation checkpoint (file or preset name)")
    cv.add_argument("--config", default=None,
                    help="config for the run's data and evaluation settings "
                    "(default: the paper's ImageNet config of the base)")
    cv.add_argument("--image-size", type=int, default=224,
                    help="image side for the printed FLOPs (default 224)")
    _add_switches(cv, [
        ("--overwrite", "replace a backbone already converted into OUT_DIR")])
    cv.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                    help="settings of the run's config, e.g. "
                    "data.source=/data/imagenet")
