"""Soak: pretraining killed with SIGKILL again and again ends where an unkilled run does.

Runs `keras-slim pretrain` (the quick start's recipe, evaluation off) twice
from the same seed:

* `reference`: uninterrupted;
* `killed`: SIGKILLed from outside `--kills` times (default 10), each time
  at a random moment after it has written a new checkpoint (so kills land
  mid-step, mid-save and mid-epoch alike), then started again on the same
  run directory, which resumes; the last start runs to the end.

Then compares the two final checkpoints: every variable (backbone, heads,
optimizer slots and iteration count, the recipe's step counter) and the
per-epoch history. Both processes run TensorFlow with one thread, as the
resume test does, so equal means bit-equal.

    python -m benchmarks.bench_soak                  # quick start, 10 kills
    python -m benchmarks.bench_soak --epochs 10 --kills 3   # shorter
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time

import numpy as np

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as the runs below

from benchmarks import _common  # noqa: E402

CHILD = textwrap.dedent(
    """
    import sys
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from keras_slim import cli
    sys.exit(cli.main(["pretrain", "--no-eval", *sys.argv[1:]]))
    """
)


def start(run, overrides):
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3",
               TF_ENABLE_ONEDNN_OPTS="1")
    args = [sys.executable, "-c", CHILD, *overrides, f"output_dir={run}",
            "train.verbose=0"]
    return subprocess.Popen(args, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def checkpoint_step(run):
    try:
        with open(os.path.join(run, "checkpoint", "state.json")) as f:
            return json.load(f)["step"]
    except (OSError, ValueError, KeyError):
        return -1


def killed_chain(run, overrides, kills, rng, log):
    """Start, kill after a new checkpoint plus a random delay; repeat."""
    steps_at_kill = []
    for kill in range(kills):
        process = start(run, overrides)
        first = checkpoint_step(run)
        while checkpoint_step(run) <= first:
            if process.poll() is not None:
                raise SystemExit(f"the run ended before kill {kill + 1}: "
                                 f"use more epochs or fewer kills.\n"
                                 f"{process.stderr.read()[-2000:]}")
            time.sleep(0.05)
        time.sleep(rng.uniform(0.0, 1.5))
        process.send_signal(signal.SIGKILL)
        process.wait()
        steps_at_kill.append(checkpoint_step(run))
        log(f"kill {kill + 1}/{kills}: last checkpoint at step "
            f"{steps_at_kill[-1]}")
    finish(start(run, overrides))
    return steps_at_kill


def finish(process):
    _, err = process.communicate()
    if process.returncode:
        raise SystemExit(f"pretrain failed ({process.returncode}):\n"
                         f"{err[-3000:]}")


def final_weights(run):
    import h5py

    with open(os.path.join(run, "checkpoint", "state.json")) as f:
        state = json.load(f)
    found = {}
    with h5py.File(os.path.join(run, "checkpoint", state["weights"])) as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return state, found


def compare(reference, killed):
    (state_a, a), (state_b, b) = final_weights(reference), final_weights(
        killed)
    different = [k for k in a if k not in b or not np.array_equal(a[k],
                                                                  b[k])]
    worst = max((float(np.max(np.abs(np.asarray(a[k], "float64")
                                      - np.asarray(b[k], "float64"))))
                 for k in different if k in b and np.shape(a[k]) ==
                 np.shape(b[k])), default=0.0)
    return dict(step=state_a["step"], killed_step=state_b["step"],
                variables=len(a), different_variables=len(different),
                max_abs_diff=worst,
                same_history=state_a["history"] == state_b["history"])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="quickstart")
    parser.add_argument("--epochs", type=int, default=None,
                        help="train.epochs (default: the config's)")
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--every", type=int, default=10,
                        help="train.checkpoint_every_steps")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--keep", default=None,
                        help="keep both run folders here")
    args = parser.parse_args()
    overrides = ["--config", args.config,
                 f"train.checkpoint_every_steps={args.every}"]
    if args.epochs:
        overrides.append(f"train.epochs={args.epochs}")
    rng = random.Random(args.seed)
    folder = args.keep or tempfile.mkdtemp(prefix="keras_slim_soak_")
    reference, killed = (os.path.join(folder, n) for n in ("reference",
                                                            "killed"))
    for run in (reference, killed):
        shutil.rmtree(run, ignore_errors=True)
    started = time.time()
    finish(start(reference, overrides))
    reference_s = time.time() - started
    started = time.time()
    steps = killed_chain(killed, overrides, args.kills, rng, print)
    killed_s = time.time() - started
    result = compare(reference, killed)
    result.update(kills=args.kills, steps_at_kill=steps,
                  reference_s=round(reference_s, 1),
                  killed_s=round(killed_s, 1), config=args.config,
                  epochs=args.epochs, every=args.every,
                  machine=_common.machine())
    path = _common.write_result("soak", result)
    print(json.dumps(result, indent=2))
    print(f"written {path}")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)
    ok = result["different_variables"] == 0 and result["same_history"]
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
