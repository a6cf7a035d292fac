"""What tracing a training step costs: slimmable network vs. its plain width.

A slimmable convolution keeps its kernel as one variable per (input band,
output band) of its widths, and concatenates the bands it needs at a width;
a plain network has one kernel. `tf.function` traces every op of a step once,
so a step's trace time follows its op count. This traces, for SlimResNet-10
(CIFAR stem, base width 8, 8x8 inputs, batch 16) with 2 and with 4 widths,
one SGD-momentum step (mean square of the features) at width 1.0 of the
slimmable network and of its plain sub-network (`subnetwork(1.0)`, the same
function), alternated for `--rounds` rounds; it reports trainable variables,
graph ops and the median trace seconds, and the ratio slim/plain. Tests and
first steps pay this time (the suite is mostly tracing).

    python -m benchmarks.bench_trace_cost [--rounds 3]

Writes benchmarks/results/bench_trace_cost.json and prints a table.
"""

import argparse
import os
import statistics
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as keras_slim sets it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import _common  # noqa: E402
from benchmarks.bench_backbone_step import make_step  # noqa: E402
from keras_slim.backbones import SlimResNet  # noqa: E402

WIDTH_LISTS = ([1.0, 0.5], [1.0, 0.75, 0.5, 0.25])


def trace(model, call, images):
    """(graph ops, seconds) of tracing one training step of `model`."""
    step = make_step(call, model.trainable_variables, jit=False)
    start = time.perf_counter()
    graph = step.get_concrete_function(images).graph
    return len(graph.get_operations()), time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    images = tf.random.uniform((16, 8, 8, 3), seed=0)
    rows = []
    for widths in WIDTH_LISTS:
        keras.utils.set_random_seed(0)
        slim = SlimResNet(depth=10, stem="cifar", base_width=8,
                          widths=widths, input_shape=(8, 8, 3))
        plain = slim.subnetwork(1.0)
        sides = {
            "slim": (slim, lambda x: slim(x, width=1.0, training=True)),
            "plain": (plain, lambda x: plain(x, training=True)),
        }
        trace(*sides["slim"], images)  # this process's one-time costs
        ops = {}

        def measure(side):
            ops[side], seconds = trace(*sides[side], images)
            return seconds

        seconds = _common.alternated_rounds(sides, args.rounds, measure)
        for side, (model, _) in sides.items():
            rows.append({
                "widths": widths, "side": side,
                "trainable_variables": len(model.trainable_variables),
                "ops": ops[side], "seconds": seconds[side],
                "median": statistics.median(seconds[side])})
    print("| widths | network | trainable variables | graph ops | trace (s, "
          "median) | slim / plain |\n|---|---|---|---|---|---|")
    for slim_row, plain_row in zip(rows[::2], rows[1::2]):
        for row in (slim_row, plain_row):
            print(f"| {len(row['widths'])} | {row['side']} | "
                  f"{row['trainable_variables']} | {row['ops']:,} | "
                  f"{row['median']:.2f} | "
                  f"{row['median'] / plain_row['median']:.2f} |")
    path = _common.write_result("bench_trace_cost", {
        "machine": _common.machine(), "rounds": args.rounds, "rows": rows})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
