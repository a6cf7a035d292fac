"""Slimmable pretraining on a Cloud TPU: `TPUStrategy`, static shapes, XLA.

What a TPU needs, and where this script does it:

* a `tf.distribute.TPUStrategy` from a `TPUClusterResolver` (`--tpu`: the
  TPU's name, a `grpc://host:port` address, or `local` on a TPU VM), with
  the model built and compiled inside `strategy.scope()`;
* static shapes: every batch has the same shape (`view_pairs` drops the
  last partial batch and crops every view to one size), checked up front;
* a global batch the replicas split evenly, cross-replica (synchronized)
  BatchNorm, SimCLR's negatives gathered from every replica, LARS with a
  warmup-cosine rate (the large-batch SimCLR recipe), bfloat16 mixed
  precision, and `jit_compile=True` with several steps per TPU call.

A slimmable width is a static argument of the backbone (each width is one
trace with static channel counts, nothing is masked), which is what lets XLA
compile the step.

The model is the one `keras-slim pretrain --config quickstart` builds
(SlimCLR, SimCLR base), through the public steps of `keras-slim pretrain`
(`keras_slim.runs.prepare(config, strategy=...)`, then `train(run)`), with
the TPU settings above as config overrides; any `KEY=VALUE` argument overrides them in turn. On a TPU VM,
CIFAR-10 from TFDS in a GCS bucket for example:

    python examples/tpu_pretrain.py --tpu local --config slimclr_cifar10 \
        --data cifar10 data.data_dir=gs://my-bucket/tfds method.base=simclr \
        train.batch_size=1024 train.learning_rate=1.2 \
        --output-dir /tmp/slimclr_tpu

Without a TPU the script says so and stops. `--dry-run` proves on the CPU
what can be proven there: it builds the same model and runs the same
training step once, compiled by XLA (`jit_compile=True`, bfloat16), under
the default strategy:

    python examples/tpu_pretrain.py --dry-run            # the digits model
    python examples/tpu_pretrain.py --dry-run --tiny     # seconds (CI)
"""

import argparse
import os

import keras_slim  # first: switches TensorFlow's fast oneDNN CPU kernels on

import keras
import tensorflow as tf

from keras_slim import data
from keras_slim.config import load_config
from keras_slim.configs import resolve_config_path
from keras_slim.runs import builders
from keras_slim.runs import prepare
from keras_slim.runs import train

# What a TPU run changes in the config; the user's KEY=VALUE come after.
TPU_SETTINGS = ["backbone.synchronized=true", "train.optimizer=lars",
                "train.weight_decay=1.0e-6",
                "train.mixed_precision=mixed_bfloat16",
                # A TPU runs XLA programs only: the step compiles with XLA.
                "train.jit_compile=true"]
# `--tiny`: the smallest model that still goes through every step (CI).
# Weight decay off only saves tracing time (with a schedule, the decay
# re-evaluates the schedule once per variable).
TINY = ["data.image_size=8", "data.max_examples=128",
        "backbone.depth=10", "backbone.base_width=4",
        "backbone.widths=[1.0, 0.5]",
        "train.epochs=1", "train.batch_size=32", "train.weight_decay=0.0",
        "evaluation.knn_every_epochs=0"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. train.epochs=5")
    parser.add_argument("--tpu", default=None,
                        help="TPU name, grpc:// address, or 'local' on a TPU "
                        "VM (default: found from the environment)")
    parser.add_argument("--dry-run", action="store_true",
                        help="no TPU: one XLA-compiled step on this machine")
    parser.add_argument("--config", default="quickstart",
                        help="a bundled config name or a YAML file")
    parser.add_argument("--data", default=None,
                        help="shortcut for data.source=...")
    parser.add_argument("--steps-per-execution", type=int, default=32,
                        help="training steps per TPU call (host overhead)")
    parser.add_argument("--output-dir", default=None,
                        help="the run directory: checkpoints, logs, "
                        "backbone.keras (a local folder; default "
                        "runs/tpu_<config name>)")
    parser.add_argument("--tiny", action="store_true",
                        help="a tiny model and data set (CI, with --dry-run)")
    args = parser.parse_args(argv)
    if args.steps_per_execution < 1:
        parser.error("--steps-per-execution must be >= 1")
    return args


def read_config(args):
    overrides = TPU_SETTINGS + (TINY if args.tiny else [])
    if args.data:
        overrides.append(f"data.source={args.data}")
    try:
        path = resolve_config_path(args.config)
        config = load_config(path, overrides + args.overrides)
        if args.dry_run:
            # One step proves the compilation: one epoch of one batch.
            config = load_config(path, overrides + args.overrides + [
                "train.epochs=1",
                f"data.max_examples={config['train']['batch_size']}"])
    except (OSError, ValueError) as error:  # ConfigError is a ValueError
        raise SystemExit(f"error: {error}")
    return config


def tpu_strategy(tpu):
    """Connects to the TPU and returns its `TPUStrategy`, or exits clearly."""
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu)
        tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    except (ValueError, RuntimeError, tf.errors.OpError) as error:
        raise SystemExit(
            f"error: no TPU found ({type(error).__name__}: {error}).\n"
            f"On a TPU VM pass --tpu local; elsewhere --tpu NAME (or set "
            f"TPU_NAME). Without a TPU, --dry-run checks on this machine "
            f"that the model's training step compiles with XLA.")
    return tf.distribute.TPUStrategy(resolver)


def prefer_fast_xla_compiles():
    """The dry run executes its XLA program once: skip the backend's costly
    optimizations and use the CPU's classic fusion emitters, quicker to
    compile (the tiny dry run: 24.0 -> 7.1 s of CPU with the second flag,
    2026-12-05). An XLA_FLAGS set by the user wins; TensorFlow reads it at
    the first compilation."""
    os.environ.setdefault("XLA_FLAGS", "--xla_backend_optimization_level=0 "
                          "--xla_cpu_use_fusion_emitters=false")


def check_static(dataset):
    """A TPU compiles one program for one shape: refuse unknown dimensions."""
    for spec in tf.nest.flatten(dataset.element_spec):
        if not spec.shape.is_fully_defined():
            raise SystemExit(
                f"error: the training data has a dynamic shape {spec.shape}; "
                f"a TPU needs static shapes (full batches, one image size).")


def main(argv=None):
    args = parse_args(argv)
    config = read_config(args)
    if args.tiny:
        # A smoke run executes a few steps: TensorFlow's graph optimizations
        # would cost more time than they save.
        tf.config.optimizer.set_experimental_options(
            {"disable_meta_optimizer": True})
    if args.dry_run:
        prefer_fast_xla_compiles()
        strategy = tf.distribute.get_strategy()  # this machine, one replica
    else:
        strategy = tpu_strategy(args.tpu)
    try:
        builders.global_batch_check(config, strategy)
    except ValueError as error:
        raise SystemExit(f"error: {error}")
    batch = config["train"]["batch_size"]
    replicas = strategy.num_replicas_in_sync
    print(f"{type(strategy).__name__}: {replicas} replica(s), global batch "
          f"{batch} ({batch // replicas} per replica)")
    # Mixed precision is global Keras state: set before building the model,
    # and put back afterwards for whoever imported main().
    previous_policy = keras.config.dtype_policy()
    keras.config.set_dtype_policy(
        config["train"]["mixed_precision"] or "float32")
    try:
        return train_and_report(args, config, strategy)
    finally:
        keras.config.set_dtype_policy(previous_policy)


def train_and_report(args, config, strategy):
    """Prepares the run in the strategy, trains it, prints each width."""
    run_dir = args.output_dir or os.path.join("runs", f"tpu_{config['name']}")
    try:
        # Data, augmentation, and the model built and compiled (XLA,
        # several steps per TPU call) inside `strategy.scope()`.
        run = prepare(config, strategy=strategy, run_dir=run_dir,
                      steps_per_execution=args.steps_per_execution)
    except (OSError, ValueError, RuntimeError, MemoryError) as error:
        raise SystemExit(f"error: cannot load {config['data']['source']!r}: "
                         f"{error}")
    if run.model.jit_compile is not True:
        raise SystemExit("error: Keras turned jit_compile off for this "
                         "model: its step would not compile with XLA.")
    check_static(data.view_pairs(run.train_data, run.augmentation,
                                 config["train"]["batch_size"],
                                 seed=config["seed"]))
    history = train(run)
    logs = history[-1]
    steps = config["train"]["epochs"] * run.steps_per_epoch
    print(f"the training step compiled with XLA (jit_compile=True, "
          f"{keras.config.dtype_policy().name}) and ran {steps} step(s)")
    # One row per width slot of the step (`w0.5`; `wmin`, `wrand1` for US3L).
    print(f"{'slot':>6} {'loss':>9} {'contrastive acc':>16}")
    for name in run.model.slot_names():
        print(f"{name:>6} {logs[name + '/loss']:>9.4f} "
              f"{logs[name + '/accuracy']:>16.4f}")
    return logs


if __name__ == "__main__":
    main()
