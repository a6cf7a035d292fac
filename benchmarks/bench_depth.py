"""ResNet-10 vs ResNet-18: cost per width, and the time of a tiny `pretrain`.

Two parts, side by side in one run:

* cost: `keras_slim.profile` of SlimResNet-10 and -18 (CIFAR stem, base
  width 64, 32x32) at widths [1.0, 0.75, 0.5, 0.25]: parameters and MFLOPs;
* time: `keras_slim.runs.pretrain` of the tiny run the test suite shares
  (`tests/runs/_tiny_run.TINY`: SlimCLR-MoCo v2, digits 8x8, base width 4,
  widths [1.0, 0.5], 8 steps, a checkpoint every step), once per depth in a
  fresh process, the depths alternated for `--rounds` rounds; the median
  seconds of each depth and their ratio. A tiny run's time is tracing the
  step and saving checkpoints, which is what the suite's run tests pay.

    python -m benchmarks.bench_depth [--rounds 2]

Writes benchmarks/results/bench_depth.json and prints the tables.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

from benchmarks import _common

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as keras_slim sets it

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEPTHS = (10, 18)
WIDTHS = [1.0, 0.75, 0.5, 0.25]

# One tiny pretraining run in a fresh process: prints its seconds.
CHILD = """
import json, sys, tempfile, time
from keras_slim.config import load_config
from keras_slim.runs import pretrain
from tests.runs._tiny_run import TINY
depth = int(sys.argv[1])
config = load_config(None, TINY + [f"backbone.depth={depth}",
                                   f"output_dir={tempfile.mkdtemp()}/run"])
start = time.perf_counter()
pretrain(config, evaluate=False, log=lambda *_: None)
print(json.dumps({"seconds": time.perf_counter() - start}))
"""


def costs():
    import keras_slim
    from keras_slim.backbones import SlimResNet

    rows = []
    for depth in DEPTHS:
        net = SlimResNet(depth=depth, stem="cifar", base_width=64,
                         widths=WIDTHS)
        for width in WIDTHS:
            cost = keras_slim.profile(net, width, (32, 32, 3))
            rows.append({"depth": depth, "width": width,
                         "params": cost.params, "mflops": cost.flops / 1e6})
    return rows


def tiny_run_seconds(depth):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
    done = subprocess.run([sys.executable, "-c", CHILD, str(depth)],
                          cwd=tempfile.gettempdir(), env=env,
                          capture_output=True, text=True, timeout=900)
    if done.returncode:
        raise SystemExit(f"depth {depth} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    rows = costs()
    print("| depth | width | params | MFLOPs |\n|---|---|---|---|")
    for r in rows:
        print(f"| {r['depth']} | {r['width']:g} | {r['params']:,} | "
              f"{r['mflops']:.1f} |")
    seconds = _common.alternated_rounds(DEPTHS, args.rounds,
                                        tiny_run_seconds)
    print()
    median = _common.print_rounds_table("depth", "tiny pretrain", seconds,
                                        baseline=18,
                                        name=lambda d: f"ResNet-{d}")
    path = _common.write_result("bench_depth", {
        "machine": _common.machine(), "costs": rows,
        "tiny_pretrain_seconds": {str(d): s for d, s in seconds.items()},
        "ratio_10_to_18": median[10] / median[18]})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
