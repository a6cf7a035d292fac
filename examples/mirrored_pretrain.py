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
(SlimCLR, SimCLR base, widths 1.0/0.5/0.25), built with the library's own
builders (`keras_slim.runs.builders`) inside `strategy.scope()` and trained
by a plain `model.fit`. Afterwards it prints every width's kNN top-1.

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

import keras_slim  # first: switches TensorFlow's fast oneDNN CPU kernels on

import keras
import tensorflow as tf

from keras_slim import data
from keras_slim.config import load_config
from keras_slim.configs import resolve_config_path
from keras_slim.runs import builders
from keras_slim.runs import format_table
from keras_slim.runs.pretrain import crop_size
from keras_slim.runs.pretrain import eval_arrays
from keras_slim.runs.pretrain import load_split
from keras_slim.runs.pretrain import training_split
from keras_slim.runs.report import evaluate_backbone
from keras_slim.runs.width_progress import WidthProgress

# `--tiny`: the smallest run that still goes through every step (CI). Two
# settings only save tracing time, which is all a tiny run spends: weight
# decay off (with a schedule, Keras' decay step re-evaluates the schedule per
# variable) and per-replica BatchNorm (cross-replica BatchNorm adds a
# synchronization per layer, width and view); a full run keeps both.
TINY = ["backbone.synchronized=false",
        "data.image_size=8", "data.max_examples=128",
        "data.max_test_examples=128", "backbone.base_width=4",
        "backbone.widths=[1.0, 0.5]", "train.epochs=1", "train.batch_size=32",
        "train.weight_decay=0.0", "evaluation.knn_k=10",
        "evaluation.random_baseline=false"]


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


def labelled_arrays(config, size):
    """(train, test) images in [0, 1] and labels, as the CLI evaluates."""
    cap = config["evaluation"]["max_train_examples"]
    return (eval_arrays(load_split(config, "train_split", cap), size),
            eval_arrays(load_split(config, "test_split"), size))


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

    try:
        # In memory, or streamed from image files when data.stream is set.
        train_data = training_split(config)
    except (OSError, ValueError, RuntimeError, MemoryError) as error:
        raise SystemExit(f"error: cannot load {config['data']['source']!r}: "
                         f"{error}")
    size = crop_size(config)
    augmentation = data.TwoViewAugmentation.from_preset(
        config["augmentation"]["preset"], image_size=size,
        **config["augmentation"]["options"])
    per_epoch = data.steps_per_epoch(train_data, batch)
    keras.config.set_dtype_policy(config["train"]["mixed_precision"]
                                  or "float32")

    # Variables created in the scope are mirrored on every replica; so are
    # the optimizer's slots, built when `fit` starts.
    with strategy.scope():
        backbone = builders.build_backbone(config, train_data.image_shape[-1],
                                           seed=config["seed"])
        model = builders.build_method(config, backbone, per_epoch)
        model.compile(optimizer=builders.build_optimizer(config, per_epoch),
                      jit_compile=config["train"]["jit_compile"])
    # `fit` splits each global batch of view pairs between the replicas.
    pairs = data.view_pairs(train_data, augmentation, batch,
                            seed=config["seed"])
    history = model.fit(pairs, epochs=config["train"]["epochs"],
                        steps_per_epoch=per_epoch, shuffle=False, verbose=0,
                        callbacks=[WidthProgress()])

    # Evaluation runs outside the scope, on one device.
    results = evaluate_backbone(config, model.backbone,
                                *labelled_arrays(config, size),
                                protocols=("knn",))
    results["replicas"] = replicas
    results["final_loss"] = float(history.history["loss"][-1])
    print(format_table(results))
    return results


if __name__ == "__main__":
    main()
