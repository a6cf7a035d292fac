"""The SlimCLR-MoCo v2 training step on JAX-CPU vs TensorFlow-CPU, side by side.

The same model (SlimResNet-18, CIFAR stem, base width 64, widths
[1.0, 0.75, 0.5, 0.25], MoCo v2 head, queue 4096), batch and views, trained
by `model.fit` on each backend: TensorFlow as keras_slim runs it by default
(a traced step, oneDNN on, XLA off; `--tf-jit` adds an XLA-compiled run),
JAX with its jitted step. Each backend runs in its own process (a Keras
process has one backend); the processes alternate (TF, JAX, TF, JAX, ...)
so that a drift of a noisy machine hits both alike. Each process times
`--steps` steps after `--warmup` and reports its median step.

    python -m benchmarks.bench_backends [--rounds 3] [--batch 128]

Writes benchmarks/results/bench_backends.json and prints the table.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from benchmarks import _common

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as keras_slim sets it

WIDTHS = [1.0, 0.75, 0.5, 0.25]
QUEUE = 4096


def child(batch, steps, warmup, jit):
    """Runs in the backend's own process: prints one JSON line."""
    import keras
    import numpy as np

    from keras_slim.backbones import SlimResNet
    from keras_slim.methods import SlimCLR

    keras.utils.set_random_seed(0)
    model = SlimCLR(SlimResNet(depth=18, stem="cifar", widths=WIDTHS),
                    base="mocov2", queue_size=QUEUE)
    options = {} if keras.backend.backend() == "jax" else {"jit_compile": jit}
    model.compile(optimizer=keras.optimizers.SGD(0.03, momentum=0.9),
                  **options)
    rng = np.random.default_rng(0)
    count = batch * (steps + warmup)
    first = rng.random((count, 32, 32, 3), dtype="float32")
    second = rng.random((count, 32, 32, 3), dtype="float32")
    times = []

    class StepTimer(keras.callbacks.Callback):
        # The logs of a step are read (made Python floats) before its end is
        # reported, so each interval covers one whole step.
        def on_train_batch_begin(self, batch, logs=None):
            self.start = time.perf_counter()

        def on_train_batch_end(self, batch, logs=None):
            float(logs["loss"])
            times.append(time.perf_counter() - self.start)

    start = time.perf_counter()
    model.fit((first, second), batch_size=batch, epochs=1, shuffle=False,
              verbose=0, callbacks=[StepTimer()])
    total = time.perf_counter() - start
    print(json.dumps({
        "backend": keras.backend.backend(), "jit": bool(jit),
        "median_step_s": statistics.median(times[warmup:]),
        "first_step_s": times[0], "fit_s": total,
    }))


def run_child(backend, args, jit=False):
    env = dict(os.environ, KERAS_BACKEND=backend, TF_CPP_MIN_LOG_LEVEL="3")
    command = [sys.executable, "-m", "benchmarks.bench_backends", "--child",
               "--batch", str(args.batch), "--steps", str(args.steps),
               "--warmup", str(args.warmup)] + (["--jit"] if jit else [])
    done = subprocess.run(command, env=env, capture_output=True, text=True,
                          cwd=os.path.dirname(os.path.dirname(
                              os.path.abspath(__file__))))
    if done.returncode:
        raise RuntimeError(f"{backend} child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def table(rows):
    """The BENCHMARKS.md table of a run's rows."""
    lines = ["| backend | XLA | step (s) | images/s | first step (s) | "
             "speed vs TensorFlow |", "|---|---|---|---|---|---|"]
    lines += [f"| {row['backend']} | {'on' if row['xla'] else 'off'} | "
              f"{row['step_s']:.3f} | {row['images_per_s']:.1f} | "
              f"{row['first_step_s']:.1f} | "
              f"**{row['speed_vs_tensorflow']:.2f}** |" for row in rows]
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--tf-jit", action="store_true",
                        help="also time TensorFlow with jit_compile=True")
    parser.add_argument("--child", action="store_true")
    parser.add_argument("--jit", action="store_true")
    args = parser.parse_args()
    if args.child:
        child(args.batch, args.steps, args.warmup, args.jit)
        return
    variants = [("tensorflow", False), ("jax", True)]
    if args.tf_jit:
        variants.append(("tensorflow", True))
    runs = {variant: [] for variant in variants}
    for _ in range(args.rounds):
        for backend, jit in variants:
            runs[(backend, jit)].append(run_child(backend, args, jit))
    rows = []
    tf_default = statistics.median(
        r["median_step_s"] for r in runs[("tensorflow", False)])
    for (backend, jit), results in runs.items():
        step = statistics.median(r["median_step_s"] for r in results)
        rows.append({
            "backend": backend, "xla": jit or backend == "jax",
            "step_s": step, "images_per_s": args.batch / step,
            "first_step_s": statistics.median(
                r["first_step_s"] for r in results),
            "speed_vs_tensorflow": tf_default / step,
        })
    print(table(rows))
    path = _common.write_result("bench_backends", {
        "machine": _common.machine(), "batch": args.batch,
        "widths": WIDTHS, "rounds": args.rounds, "steps": args.steps,
        "rows": rows, "runs": {f"{b}-jit{j}": r for (b, j), r in runs.items()},
    })
    print(path)


if __name__ == "__main__":
    main()
