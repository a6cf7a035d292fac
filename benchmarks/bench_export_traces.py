"""Export time of this checkout against another one (e.g. an earlier commit).

`export_backbone` of the SlimResNet-50 the ImageNet example exports (ImageNet
stem, base width 16, widths [1.0, 0.75, 0.5, 0.25], 64x64 images): float32,
with its SavedModels and the all-widths bundle (the defaults), conversions in
this process, no latency timing. Each round runs one export per checkout, each
in a fresh process (`--one`), alternating; a process times its export only
(not its imports or the backbone's build). Prints each side's median seconds
and their ratio.

    git archive <commit> | tar -x -C /tmp/other
    python -m benchmarks.bench_export_traces --other /tmp/other [--rounds 3]

Writes benchmarks/results/bench_export_traces.json and prints a table.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as keras_slim sets it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
WIDTHS = [1.0, 0.75, 0.5, 0.25]


def one_export():
    """Seconds of one export in this process (printed as JSON)."""
    import numpy as np

    import keras_slim
    from keras_slim.backbones import SlimResNet
    from keras_slim.export import export_backbone

    backbone = SlimResNet(depth=50, stem="imagenet", base_width=16,
                          widths=WIDTHS, input_shape=(64, 64, 3))
    images = np.random.default_rng(0).random((8, 64, 64, 3), "float32")
    folder = os.path.join(tempfile.mkdtemp(), "out")
    start = time.perf_counter()
    manifest = export_backbone(backbone, folder, images=images,
                               precisions=["float32"], latency_threads=(),
                               isolate=False, log=None)
    seconds = time.perf_counter() - start
    if not manifest["verified"]:
        raise SystemExit("the export failed to verify")
    print(json.dumps({"seconds": seconds, "package": keras_slim.__file__}))


def run_in(tree):
    """Seconds of one export by the checkout at `tree`, in a new process."""
    env = dict(os.environ, PYTHONPATH=tree,
               TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    # This file runs there as a script: the other checkout may not have it.
    done = subprocess.run(
        [sys.executable, os.path.abspath(__file__), "--one"],
        cwd=tree, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{tree}: exit {done.returncode}\n"
                         f"{done.stderr[-2000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not result["package"].startswith(os.path.join(tree, "")):
        raise SystemExit(f"{tree}: imported keras_slim from "
                         f"{result['package']} instead")
    return result["seconds"]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--other", help="another checkout to compare with")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--one", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:  # run as a script in the checkout measured
        return one_export()
    from benchmarks import _common
    if not args.other or not os.path.isdir(
            os.path.join(args.other, "keras_slim")):
        parser.error("--other: give a folder holding another checkout "
                     "(git archive <commit> | tar -x -C FOLDER)")
    sides = {"this checkout": HERE, "other": os.path.abspath(args.other)}
    seconds = _common.alternated_rounds(
        list(sides), args.rounds, lambda side: run_in(sides[side]))
    median = _common.print_rounds_table("checkout", "export", seconds,
                                        baseline="other")
    path = _common.write_result("bench_export_traces", {
        "machine": _common.machine(), "rounds": args.rounds,
        "other": sides["other"], "seconds": seconds,
        "ratio_this_to_other": median["this checkout"] / median["other"]})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
