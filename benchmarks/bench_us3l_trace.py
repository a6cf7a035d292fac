"""What tracing US3L's training step costs: every grid branch vs. drawable.

US3L's random slot picks its width inside the compiled step with a switch
over the width grid, and a phased run (`total_steps`) has one switch per
sampling phase. A switch traces every branch it holds. keras_slim gives a
branch only to the grid widths the phase's draw can pick (never the largest,
none below the phase's range); before 2026-12-05 every grid width had one.
This traces one training step of a phased US3L (SimCLR base, SlimResNet-10,
CIFAR stem, base width 8, range [0.25, 1], the default grid step 0.0625: 13
widths, 8x8 inputs, batch 16) both ways, alternated for `--rounds` rounds:
"every branch" patches `drawable_indices` to return every grid index, which
is the earlier step exactly. It reports the width passes traced, the graph
ops (branches included) and the median trace seconds.

    python -m benchmarks.bench_us3l_trace [--rounds 3]

Writes benchmarks/results/bench_us3l_trace.json and prints a table.
"""

import argparse
import os
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as keras_slim sets it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import _common  # noqa: E402
from keras_slim import Widths  # noqa: E402
from keras_slim.backbones import SlimResNet  # noqa: E402
from keras_slim.methods import US3L  # noqa: E402


def build():
    keras.utils.set_random_seed(0)
    backbone = SlimResNet(depth=10, stem="cifar", base_width=8,
                          widths=Widths(min_width=0.25, max_width=1.0),
                          input_shape=(8, 8, 3))
    model = US3L(backbone, base="simclr", total_steps=400, hidden_dim=64,
                 projection_dim=32)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    model.optimizer.build(model.trainable_variables)
    return model


def graph_ops(graph):
    """Ops of `graph` and of every function it calls (the branches)."""
    return len(graph.get_operations()) + sum(
        graph_ops(f.graph) for f in graph._functions.values()
        if hasattr(f, "graph"))


def trace(model, views, every_branch):
    """(width passes, graph ops, seconds) of tracing one training step."""
    passes = []
    outputs, drawable = model.width_outputs, model.drawable_indices
    model.width_outputs = lambda w, *a, **k: (passes.append(w)
                                              or outputs(w, *a, **k))
    if every_branch:
        model.drawable_indices = lambda slots: range(len(model.grid))
    try:
        start = time.perf_counter()
        step = tf.function(model.train_step, autograph=False)
        graph = step.get_concrete_function(views).graph
        seconds = time.perf_counter() - start
    finally:
        model.width_outputs, model.drawable_indices = outputs, drawable
    return len(passes), graph_ops(graph), seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    model = build()
    images = tf.random.uniform((16, 8, 8, 3), seed=0)
    views = (images, tf.image.flip_left_right(images))
    trace(model, views, False)  # this process's one-time costs
    sides = {"drawable branches": False, "every branch": True}
    counts = {}

    def measure(side):
        passes, ops, seconds = trace(model, views, sides[side])
        counts[side] = {"width_passes": passes, "ops": ops}
        return seconds

    seconds = _common.alternated_rounds(sides, args.rounds, measure)
    median = _common.print_rounds_table(
        "US3L step (phased, 13-width grid)", "trace", seconds,
        "every branch")
    print("\n| side | width passes traced | graph ops |\n|---|---|---|")
    for side, count in counts.items():
        print(f"| {side} | {count['width_passes']} | {count['ops']:,} |")
    path = _common.write_result("bench_us3l_trace", {
        "machine": _common.machine(), "rounds": args.rounds,
        "seconds": seconds, "median": median, "counts": counts})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
