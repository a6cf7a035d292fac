"""Linear evaluation of every width of a pretrained slimmable backbone.

The standard self-supervised protocol, once per width: freeze the backbone,
extract its features of the labelled training images at that width and fit
a linear classifier on them (a *linear probe*), then report its top-1 on the
test images; beside it, a kNN classifier on the same features, which needs
no training. `keras_slim.evaluation` does both for every width
(`evaluate_knn`, `linear_probe`); a width range (US3L) first gets its
BatchNorm statistics calibrated (`calibrate_batch_norm`).

The backbone is a `.keras` file holding every width, such as the
`backbone.keras` of a run directory written by `keras-slim pretrain` (pass
the file or the run directory: a run directory also tells the data set and
image size it was trained on) or by `slimclr_cifar10.py --output-dir`:

    python examples/linear_evaluation.py --backbone runs/quickstart
    python examples/linear_evaluation.py --backbone runs/slimclr_cifar10 \
        --data ../shared/data/cifar10/cifar10-jpeg.zip

Without `--backbone` it first pretrains one with `keras_slim.runs.pretrain`
and the bundled `quickstart` config (the digits; its run directory goes to
`--output-dir`, default a temporary folder):

    python examples/linear_evaluation.py

It prints one row per width: parameters, MFLOPs, kNN and linear top-1.
`--tiny` is a seconds-long smoke run (CI): 128 images at 8x8, 5 probe
epochs, and, without `--backbone`, a one-epoch pretraining of a tiny model.
"""

import argparse
import os
import tempfile

import keras_slim  # first: switches TensorFlow's fast oneDNN CPU kernels on

import keras
import tensorflow as tf

from keras_slim import data
from keras_slim import evaluation
from keras_slim.config import load_config
from keras_slim.configs import resolve_config_path
from keras_slim.io import write_json_atomic
from keras_slim.runs import RunDirectory
from keras_slim.runs import format_table
from keras_slim.runs import pretrain
from keras_slim.runs import eval_arrays

# `--tiny`: the smallest run that still goes through every step (CI).
TINY = dict(max_examples=128, image_size=8, probe_epochs=5, knn_k=10,
            calibration_batches=2)
# ... and the tiny pretraining, as `keras-slim pretrain` overrides.
TINY_PRETRAINING = [
    "data.image_size=8", "data.max_examples=128", "backbone.base_width=4",
    "backbone.widths=[1.0, 0.5]", "train.epochs=1", "train.batch_size=32",
    "train.weight_decay=0.0", "evaluation.knn_every_epochs=0"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default=None,
                        help="a backbone .keras file or a keras-slim run "
                        "directory (default: pretrain one first)")
    parser.add_argument("--data", default=None,
                        help="the labelled data: 'digits', a TFDS name, a "
                        "folder or .zip of class folders, IDX files "
                        "(default: the run's data, else digits)")
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data folder (TFDS sources only)")
    parser.add_argument("--image-size", type=int, default=None,
                        help="image side (default: the run's, else 16 for "
                        "digits and 32 otherwise)")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="use at most this many images per split")
    parser.add_argument("--widths", type=float, nargs="+", default=None,
                        help="widths to evaluate (default: every width, or a "
                        "range's stat_widths)")
    parser.add_argument("--knn-k", type=int, default=20)
    parser.add_argument("--probe-epochs", type=int, default=100)
    parser.add_argument("--joint", action="store_true",
                        help="also SlimCLR's joint (switchable) probe")
    parser.add_argument("--calibration-batches", type=int, default=20,
                        help="BN calibration batches per width (ranges)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=None,
                        help="write results.json here (and the pretraining "
                        "run when there is no --backbone)")
    parser.add_argument("--tiny", action="store_true",
                        help="a seconds-long smoke run (CI)")
    args = parser.parse_args(argv)
    if args.tiny:  # tiny values become the defaults; explicit flags win
        parser.set_defaults(**TINY)
        args = parser.parse_args(argv)
    return args


def pretrain_quickstart(args, run_dir):
    """The bundled quickstart pretraining, run by the library; its path."""
    overrides = TINY_PRETRAINING if args.tiny else []
    config = load_config(resolve_config_path("quickstart"),
                         overrides + [f"seed={args.seed}"])
    print(f"no --backbone: pretraining the quickstart config in {run_dir}")
    pretrain(config, run_dir=run_dir, evaluate=False)
    return run_dir


def load_backbone(path):
    """(backbone, the run's config or None) from a .keras file or run dir."""
    config = None
    if os.path.isdir(path):
        run = RunDirectory(path)
        config = run.read_config() if run.exists() else None
        path = run.backbone_path
    if not os.path.isfile(path):
        raise SystemExit(f"error: no backbone at {path}: pass a .keras file "
                         f"or a finished keras-slim run directory.")
    try:
        backbone = keras.saving.load_model(path, compile=False)
    except (OSError, ValueError) as error:  # not a (complete) .keras file
        raise SystemExit(f"error: cannot load {path}: {error}")
    if not isinstance(backbone, keras_slim.backbones.SlimBackbone):
        raise SystemExit(f"error: {path} holds a {type(backbone).__name__}, "
                         f"not a keras_slim slimmable backbone.")
    print(f"loaded {path}: {type(backbone).__name__}, widths "
          f"{backbone.widths}")
    return backbone, config


def load_labelled(args, backbone, config):
    """(train, test) arrays in [0, 1], with the backbone's channel count."""
    source = args.data or (config["data"]["source"] if config else "digits")
    size = args.image_size
    if size is None and config:
        size = config["augmentation"]["crop_size"] or \
            config["data"]["image_size"]
    if size is None:
        size = 16 if source == "digits" else 32
    options = dict(data_dir=args.data_dir, image_size=size,
                   max_examples=args.max_examples,
                   channels=backbone.image_shape[-1])
    try:
        splits = [data.load(source, split=split, **options)
                  for split in ("train", "test")]
    except (OSError, ValueError, RuntimeError, MemoryError) as error:
        raise SystemExit(f"error: cannot load {source!r}: {error}")
    print(f"labelled data: {splits[0]}")
    return [eval_arrays(split, size) for split in splits]


def evaluate_widths(args, backbone, train, test):
    """One row per width: cost, kNN and linear-probe top-1."""
    try:
        widths = [backbone.widths.validate(w) for w in args.widths or
                  backbone.widths.stat_widths]
    except ValueError as error:
        raise SystemExit(f"error: --widths: {error}")
    if backbone.widths.is_range:
        # A range stores BatchNorm statistics per width only once calibrated,
        # and only for its `stat_widths`.
        try:
            evaluation.calibrate_batch_norm(
                backbone, train[0], widths=widths,
                num_batches=args.calibration_batches, seed=args.seed)
        except ValueError as error:
            raise SystemExit(f"error: --widths: {error}")
    knn = evaluation.evaluate_knn(backbone, *train, *test, widths=widths,
                                  k=args.knn_k)
    columns = {"knn_top1": knn, "linear_top1": evaluation.linear_probe(
        backbone, *train, *test, widths=widths, epochs=args.probe_epochs,
        seed=args.seed)}
    if args.joint and len(widths) > 1:
        columns["joint_top1"] = evaluation.linear_probe(
            backbone, *train, *test, widths=widths, epochs=args.probe_epochs,
            joint=True, seed=args.seed)
    rows = []
    for width in widths:
        cost = keras_slim.profile(backbone, width,
                                  input_shape=train[0].shape[1:])
        row = {"width": width, "params": cost.params, "flops": cost.flops}
        row.update({key: float(values[width])
                    for key, values in columns.items()})
        rows.append(row)
    return rows


def main(argv=None):
    args = parse_args(argv)
    if args.tiny:
        # A smoke run executes a few steps: TensorFlow's graph optimizations
        # would cost more time than they save.
        tf.config.optimizer.set_experimental_options(
            {"disable_meta_optimizer": True})
    keras.utils.set_random_seed(args.seed)
    with tempfile.TemporaryDirectory(prefix="linear_evaluation_") as scratch:
        path = args.backbone
        if path is None:
            path = pretrain_quickstart(
                args, os.path.join(args.output_dir or scratch, "pretraining"))
        backbone, config = load_backbone(path)
        train, test = load_labelled(args, backbone, config)
        results = {"backbone": os.path.abspath(path),
                   "widths": evaluate_widths(args, backbone, train, test)}
    print(format_table(results))
    if args.output_dir:
        write_json_atomic(os.path.join(args.output_dir, "results.json"),
                          results)
    return results


if __name__ == "__main__":
    main()
