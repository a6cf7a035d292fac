"""Slimmable pretraining under `MirroredStrategy`: replicas in one process.

`tf.distribute.MirroredStrategy` keeps one copy of every variable per device
and splits each global batch between them; the gradients are summed across
replicas before the one update. keras_slim's recipes divide their losses by
the *global* batch, use cross-replica (synchronized) BatchNorm when the
backbone is built with `synchronized=True`, and gather SimCLR's negatives
from every replica, so a mirrored run trains like one device on the global
batch.

On a machine without GPUs this example splits the CPU into `--replicas`
logical devices (`tf.config.set_logical_device_configuration`, which must
happen before TensorFlow starts its runtime), so two replicas really run
and really exchange gradients. On GPUs each GPU is a replica.

The model is the one `keras-slim pretrain --config quickstart` trains
(SlimCLR, SimCLR base, widths 1.0/0.5/0.25), through the same three public
steps as `keras-slim pretrain`: `keras_slim.runs.prepare(config,
strategy=...)` builds it inside `strategy.scope()`, `train(run)` fits it
(checkpoints in the run directory: a rerun resumes) and `evaluate(run)`
prints every width's kNN top-1.

Run it on the bundled digits:

    python examples/mirrored_pretrain.py

On CIFAR-10 (any bundled config or YAML file, plus `KEY=VALUE` overrides
as in `keras-slim pretrain`):

    python examples/mirrored_pretrain.py --config slimclr_cifar10 \
        --data ../shared/data/cifar10/cifar10-jpeg.zip train.epochs=20

`--tiny` is a seconds-long smoke run (CI): 128 images at 8x8, base width 4,
widths 1.0 and 0.5, one epoch of global batches of 32 (16 per replica),
per-replica BatchNorm.
"""

import argparse
import os

import keras_slim  # first: switches TensorFlow's fast oneDNN CPU kernels on

import tensorflow as tf

from keras_slim.config import load_config
from keras_slim.configs import resolve_config_path
from keras_slim.runs import builders
from keras_slim.runs import evaluate
from keras_slim.runs import prepare
from keras_slim.runs import train

# `--tiny`: the smallest run that still goes through every step (CI). Two
# settings only save tracing time, which is all a tiny run spends: weight
# decay off (with a schedule, Keras' decay step re-evaluates the schedule per
# variable) and per-replica BatchNorm (cross-replica BatchNorm adds a
# synchronization per layer, width and view); a full run keeps both.
TINY = ["backbone.synchronized=false",
        "data.image_size=8", "data.max_examples=128",
        "data.max_test_examples=128", "backbone.depth=10",
        "backbone.base_width=4",
        "backbone.widths=[1.0, 0.5]", "train.epochs=1", "train.batch_size=32",
        "train.weight_decay=0.0", "evaluation.knn_k=10",
        "evaluation.knn_every_epochs=0", "evaluation.random_baseline=false"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. train.epochs=5")
    parser.add_argument("--config", default="quickstart",
                        help="a bundled config name or a YAML file")
    parser.add_argument("--data", default=None,
                        help="shortcut for data.source=...: 'digits', a TFDS "
                        "name, a folder or .zip of class folders, IDX files")
    parser.add_argument("--replicas", type=int, default=2,
                        help="logical CPU devices (replicas) when there is "
                        "no GPU")
    parser.add_argument("--output-dir", default=None,
                        help="the run directory (default: "
                        "runs/mirrored_<config name>); a rerun resumes it")
    parser.add_argument("--tiny", action="store_true",
                        help="a seconds-long smoke run (CI)")
    args = parser.parse_args(argv)
    if args.replicas < 1:
        parser.error(f"--replicas must be >= 1, got {args.replicas}")
    return args


def read_config(args):
    """The run's config: file, then tiny settings, then the user's keys."""
    # Cross-replica BatchNorm: statistics over the global batch.
    overrides = ["backbone.synchronized=true", "train.strategy=mirrored"]
    overrides += TINY if args.tiny else []
    if args.data:
        overrides.append(f"data.source={args.data}")
    try:
        return load_config(resolve_config_path(args.config),
                           overrides + args.overrides)
    except (OSError, ValueError) as error:  # ConfigError is a ValueError
        raise SystemExit(f"error: {error}")


def split_cpu(replicas):
    """Turns the CPU into `replicas` logical devices (no GPU present)."""
    if tf.config.list_physical_devices("GPU"):
        return  # MirroredStrategy takes one replica per GPU
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
    except RuntimeError as error:
        if len(tf.config.list_logical_devices("CPU")) == replicas:
            return  # split so before TensorFlow started: nothing to do
        raise SystemExit(
            f"error: cannot split the CPU into {replicas} devices once "
            f"TensorFlow's runtime has started ({error}); run this example "
            f"as a script, not after other TensorFlow code.")


def main(argv=None):
    args = parse_args(argv)
    config = read_config(args)
    split_cpu(args.replicas)
    if args.tiny:
        # A smoke run executes a few steps: TensorFlow's graph optimizations
        # would cost more time than they save.
        tf.config.optimizer.set_experimental_options(
            {"disable_meta_optimizer": True})
    # The strategy `keras-slim pretrain` builds for train.strategy=mirrored.
    strategy = builders.build_strategy(config)
    try:
        # Each replica takes an equal share of every global batch.
        builders.global_batch_check(config, strategy)
    except ValueError as error:
        raise SystemExit(f"error: {error}")
    batch = config["train"]["batch_size"]
    replicas = strategy.num_replicas_in_sync
    devices = ", ".join(strategy.extended.worker_devices)
    print(f"{replicas} replica(s) on {devices}; global batch {batch}, "
          f"{batch // replicas} per replica")

    run_dir = args.output_dir or os.path.join("runs",
                                              f"mirrored_{config['name']}")
    try:
        # Data, augmentation, and the model built in `strategy.scope()`:
        # its variables (and the optimizer's slots) are mirrored on every
        # replica. A run directory with a checkpoint is resumed.
        run = prepare(config, strategy=strategy, run_dir=run_dir)
    except (OSError, ValueError, RuntimeError, MemoryError) as error:
        raise SystemExit(f"error: {error}")
    # `fit` splits each global batch of view pairs between the replicas.
    history = train(run)
    # Evaluation runs outside the scope, on one device.
    results = evaluate(run, protocols=("knn",))
    results["replicas"] = replicas
    results["final_loss"] = float(history[-1]["loss"])
    return results


if __name__ == "__main__":
    main()
