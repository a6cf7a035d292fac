"""Pretraining under `MultiWorkerMirroredStrategy`: one process per worker.

Each worker is one process (usually one machine) that learns the cluster and
its own place in it from the `TF_CONFIG` environment variable:

    TF_CONFIG='{"cluster": {"worker": ["host1:2222", "host2:2222"]},
                "task": {"type": "worker", "index": 0}}'

Every worker runs this same script. `tf.distribute.MultiWorkerMirroredStrategy`
keeps a copy of every variable in each worker and all-reduces the gradients
across workers after each step, so the workers stay identical; worker 0 (the
chief) evaluates and saves the model.

Keras 3.15's `fit` fails under this strategy out of the box (keras issue
20585: it reduces scalar logs and builds the model from a reduced data
batch). keras_slim's recipes work around it themselves, so a plain
`model.fit` works: nothing to do here.

The model is the one `keras-slim pretrain --config quickstart` trains
(SlimCLR, SimCLR base), through the public steps of `keras-slim pretrain`:
`keras_slim.runs.prepare(config, strategy=...)` builds it inside
`strategy.scope()`, `train(run)` fits it and writes the worker's run
directory (the chief's: `--output-dir`; the other workers' below it), and
the chief alone runs `evaluate(run)`.

Try it on one machine: `--launch-local 2` starts two workers on free
127.0.0.1 ports (each with its own `TF_CONFIG`), waits for both, prints the
chief's output and checks that both workers ended with identical weights:

    python examples/multi_worker_pretrain.py --launch-local 2

On real data (CIFAR-10 with the `slimclr_cifar10` config, `KEY=VALUE`
overrides as in `keras-slim pretrain`):

    python examples/multi_worker_pretrain.py --launch-local 2 \
        --config slimclr_cifar10 \
        --data ../shared/data/cifar10/cifar10-jpeg.zip train.epochs=20

On a real cluster, set `TF_CONFIG` on each machine and run the script
without `--launch-local`, with the same arguments everywhere.

`--tiny` is a seconds-long smoke run (CI): 128 images at 8x8, base width 4,
widths 1.0 and 0.5, one epoch of global batches of 32, per-replica
BatchNorm (so the workers' trained weights end identical but each keeps its
own BatchNorm statistics, which the launcher reports).
"""

import argparse
import contextlib
import json
import os
import socket
import subprocess
import sys
import tempfile
import time

import numpy as np

# `--tiny`: the smallest run that still goes through every step (CI). It
# spends its time tracing the step, so it turns off two things that only
# cost tracing there: cross-replica BatchNorm (a collective per layer, width
# and view; without it each worker keeps its own BatchNorm statistics) and
# weight decay (with a schedule, Keras re-evaluates it per variable).
TINY = ["data.image_size=8", "data.max_examples=128",
        "data.max_test_examples=128", "backbone.depth=10",
        "backbone.base_width=4",
        "backbone.widths=[1.0, 0.5]", "backbone.synchronized=false",
        "train.epochs=1", "train.batch_size=32", "train.weight_decay=0.0",
        "evaluation.knn_k=10", "evaluation.knn_every_epochs=0",
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
    parser.add_argument("--launch-local", type=int, default=0, metavar="N",
                        help="start N workers on 127.0.0.1 and check that "
                        "they end with identical weights")
    parser.add_argument("--output-dir", default=None,
                        help="where workers write weights, logs and the "
                        "chief's backbone.keras (default: a temporary "
                        "folder with --launch-local)")
    parser.add_argument("--timeout", type=float, default=3600,
                        help="--launch-local: seconds before the workers "
                        "are stopped")
    parser.add_argument("--tiny", action="store_true",
                        help="a seconds-long smoke run (CI)")
    args = parser.parse_args(argv)
    if args.launch_local < 0 or args.launch_local == 1:
        parser.error("--launch-local needs at least 2 workers")
    return args


# ----------------------------------------------------------------- a worker
def read_tf_config():
    """(worker index, worker count) from TF_CONFIG, or a clear exit."""
    text = os.environ.get("TF_CONFIG")
    if not text:
        raise SystemExit(
            "error: TF_CONFIG is not set. Each worker needs it (see this "
            "script's docstring); to try it on one machine, run with "
            "--launch-local 2.")
    try:
        tf_config = json.loads(text)
        workers = tf_config["cluster"]["worker"]
        index = int(tf_config["task"]["index"])
    except (ValueError, KeyError, TypeError) as error:
        raise SystemExit(f"error: TF_CONFIG is not a cluster spec with "
                         f"cluster.worker and task.index: {error!r}")
    return index, len(workers)


def run_worker(args):
    """One worker: train in lockstep with the others, save, evaluate."""
    index, count = read_tf_config()
    # Imported only here: the launcher (--launch-local) needs no TensorFlow.
    import keras_slim  # noqa: F401  first: TensorFlow's fast oneDNN kernels
    import tensorflow as tf

    from keras_slim.config import load_config
    from keras_slim.configs import resolve_config_path
    from keras_slim.io import atomic_path
    from keras_slim.runs import builders
    from keras_slim.runs import evaluate
    from keras_slim.runs import prepare
    from keras_slim.runs import train

    # Cross-replica BatchNorm: statistics over the global batch.
    overrides = ["backbone.synchronized=true", "train.strategy=multi_worker"]
    overrides += TINY if args.tiny else []
    if args.data:
        overrides.append(f"data.source={args.data}")
    try:
        config = load_config(resolve_config_path(args.config),
                             overrides + args.overrides)
    except (OSError, ValueError) as error:  # ConfigError is a ValueError
        raise SystemExit(f"error: {error}")
    if args.tiny:
        # A smoke run executes a few steps: TensorFlow's graph optimizations
        # would cost more time than they save.
        tf.config.optimizer.set_experimental_options(
            {"disable_meta_optimizer": True})
    # The strategy first: it sets up the collective ops, which TensorFlow
    # allows only before it runs anything else.
    strategy = builders.build_strategy(config)
    try:
        builders.global_batch_check(config, strategy)
    except ValueError as error:
        raise SystemExit(f"error: {error}")
    batch = config["train"]["batch_size"]
    print(f"worker {index} of {count}: {strategy.num_replicas_in_sync} "
          f"replicas in sync, global batch {batch}", flush=True)

    try:
        # The model is built in `strategy.scope()`. `train` gives `fit` view
        # pairs that are computed, not read from files: every worker builds
        # the same global batches (batch n depends only on the seed and n)
        # and keeps its share of each (auto-shard policy DATA).
        run = prepare(config, strategy=strategy,
                      run_dir=worker_run_dir(args, config, index))
    except (OSError, ValueError, RuntimeError, MemoryError) as error:
        raise SystemExit(f"error: {error}")
    train(run)

    if args.output_dir:  # what --launch-local compares
        path = os.path.join(args.output_dir, f"worker{index}.weights.npz")
        arrays = {f"{'trained' if v.trainable else 'state'}/{i}/{v.path}":
                  v.numpy() for i, v in enumerate(run.model.weights)}
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, **arrays)
    if index != 0:
        return None
    # The chief alone evaluates; this needs no other worker.
    return evaluate(run, protocols=("knn",))


def worker_run_dir(args, config, index):
    """The chief's run directory (`--output-dir`, else runs/<name>), and a
    folder of its own for every other worker: each writes its checkpoints,
    logs and backbone, and two writers must not share one file."""
    chief = args.output_dir or os.path.join("runs",
                                            f"multi_worker_{config['name']}")
    if index == 0:
        return chief
    return os.path.join(chief, f"worker{index}")


# ------------------------------------------------------------- the launcher
def free_ports(count):
    """`count` TCP ports free on 127.0.0.1 right now (not reserved)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(count)]
        for s in sockets:  # all bound at once: `count` different ports
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]


def worker_arguments(argv, output_dir):
    """This script's arguments without --launch-local, plus the output dir."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == "--launch-local":
            skip = True
        elif not arg.startswith("--launch-local="):
            kept.append(arg)
    return kept + ["--output-dir", output_dir]


def start_workers(count, argv, output_dir):
    ports = free_ports(count)
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    workers = []
    for index in range(count):
        env = dict(os.environ, TF_CONFIG=json.dumps(
            {"cluster": cluster, "task": {"type": "worker", "index": index}}))
        log_path = os.path.join(output_dir, f"worker{index}.log")
        with open(log_path, "w") as log:
            process = subprocess.Popen(
                [sys.executable, os.path.abspath(__file__),
                 *worker_arguments(argv, output_dir)],
                env=env, stdout=log, stderr=subprocess.STDOUT)
        workers.append((process, log_path))
    print(f"started {count} workers on {', '.join(cluster['worker'])}",
          flush=True)
    return workers


def wait_for(workers, timeout):
    """Waits for every worker; stops them all when one fails or time is up.

    A worker that dies leaves the others blocked in a collective forever,
    hence the polling.
    """
    deadline = time.monotonic() + timeout
    while any(process.poll() is None for process, _ in workers):
        failed = [i for i, (process, _) in enumerate(workers)
                  if process.poll() not in (None, 0)]
        if failed or time.monotonic() > deadline:
            for process, _ in workers:
                if process.poll() is None:
                    process.kill()
                    process.wait()
            reason = (f"worker {failed[0]} failed" if failed else
                      f"timed out after {timeout:g} s")
            log_path = workers[failed[0] if failed else 0][1]
            with open(log_path) as log:
                tail = log.read()[-3000:]
            raise SystemExit(f"error: {reason}; end of {log_path}:\n{tail}")
        time.sleep(0.2)


def compare_weights(output_dir, count):
    """{"trained"|"state": (arrays, largest difference, where)} vs worker 0.

    "trained": the variables that gradients (or EMAs of them) update, which
    the all-reduce keeps identical; "state": the others, such as BatchNorm
    statistics, identical only with cross-replica BatchNorm.
    """
    workers = []
    for index in range(count):
        name = os.path.join(output_dir, f"worker{index}.weights.npz")
        with np.load(name) as f:
            workers.append({key: f[key] for key in f.files})
    found = {"trained": [0, 0.0, None], "state": [0, 0.0, None]}
    for key, first in workers[0].items():
        kind, _, path = key.split("/", 2)
        found[kind][0] += 1
        for other in workers[1:]:
            difference = float(np.max(np.abs(
                first.astype("float64") - other[key].astype("float64")),
                initial=0.0))
            if difference > found[kind][1]:
                found[kind][1:] = [difference, path]
    return found


def launch_local(args, argv):
    """Runs `args.launch_local` workers on this machine and checks them."""
    with tempfile.TemporaryDirectory(prefix="multi_worker_") as scratch:
        output_dir = os.path.abspath(args.output_dir or scratch)
        os.makedirs(output_dir, exist_ok=True)
        workers = start_workers(args.launch_local, argv, output_dir)
        wait_for(workers, args.timeout)
        with open(workers[0][1]) as log:
            print(f"--- worker 0 (chief) ---\n{log.read().rstrip()}\n---")
        found = compare_weights(output_dir, args.launch_local)
    if not args.output_dir:
        print("(the workers wrote into a temporary folder, now deleted; "
              "--output-dir DIR keeps their logs, weights and the chief's "
              "backbone.keras)")
    count, largest, where = found["trained"]
    if largest != 0.0:
        raise SystemExit(f"error: the workers' trained weights differ "
                         f"(largest difference {largest:.3g}, in {where})")
    print(f"{args.launch_local} workers finished with identical trained "
          f"weights ({count} arrays, largest difference 0)")
    count, largest, where = found["state"]
    if largest == 0.0:
        print(f"and identical state ({count} arrays: BatchNorm statistics, "
              f"counters)")
    else:
        # Per-replica BatchNorm normalizes each worker's share of a batch
        # with that share's statistics, and each worker averages its own.
        print(f"their state differs by up to {largest:.3g}, in {where}: "
              f"without cross-replica BatchNorm (backbone.synchronized="
              f"false) each worker keeps its own BatchNorm statistics")
    return found


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parse_args(argv)
    if args.launch_local:
        return launch_local(args, argv)
    return run_worker(args)


if __name__ == "__main__":
    main()
