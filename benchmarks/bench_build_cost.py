"""What building a slimmable backbone costs, against its plain network.

A backbone is built by running its forward pass once on a symbolic input
(`keras.KerasTensor`) at the largest width: each layer creates its variables
and reports the shape of its output. For the output, Keras traces a layer's
`call` into a scratch graph unless the layer says what its output is; the
slimmable layers say it from the shapes (`compute_output_spec`). This times,
alternated for `--rounds` rounds, three ways to get each network:

* `slim`: the backbone's constructor, as keras_slim builds it;
* `slim, traced`: the same with the slimmable layers' symbolic calls traced
  by Keras (their `compute_output_spec` replaced by `keras.Operation`'s,
  which traces `call`: what keras_slim did before 2026-12-05);
* `plain`: `keras.Model.from_config` of the width-1.0 sub-network's config,
  the plain Keras network with the same layers (variables and wiring).

    python -m benchmarks.bench_build_cost [--rounds 5]

Networks: SlimResNet-50 (ImageNet stem, 4 widths), SlimResNet-18 (CIFAR
stem, 4 widths), SlimMobileNetV2 (4 widths), 224x224x3 inputs for the two
ImageNet networks and 32x32x3 for the CIFAR one. Writes
benchmarks/results/bench_build_cost.json and prints a table.
"""

import argparse
import contextlib
import copy
import os
import statistics
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as keras_slim sets it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

from benchmarks import _common  # noqa: E402
from keras_slim import layers  # noqa: E402
from keras_slim.backbones import SlimMobileNetV2  # noqa: E402
from keras_slim.backbones import SlimResNet  # noqa: E402

NETWORKS = {
    "SlimResNet-50": lambda: SlimResNet(depth=50, stem="imagenet",
                                        input_shape=(224, 224, 3)),
    "SlimResNet-18": lambda: SlimResNet(depth=18, stem="cifar",
                                        input_shape=(32, 32, 3)),
    "SlimMobileNetV2": lambda: SlimMobileNetV2(input_shape=(224, 224, 3)),
}
SLIM_LAYERS = (layers.SlimConv2D, layers.SlimDense, layers.SlimDepthwiseConv2D,
               layers.SlimBatchNormalization,
               layers.SwitchableBatchNormalization)


@contextlib.contextmanager
def traced_symbolic_calls():
    """Keras's own tracing of `call` for the slimmable layers' symbolic
    calls, instead of their shape rules."""
    saved = {cls: cls.__dict__.get("compute_output_spec")
             for cls in SLIM_LAYERS}
    for cls in SLIM_LAYERS:
        cls.compute_output_spec = keras.Operation.compute_output_spec
    try:
        yield
    finally:
        for cls, method in saved.items():
            if method is None:
                del cls.compute_output_spec
            else:
                cls.compute_output_spec = method


def seconds_to(make):
    keras.utils.set_random_seed(0)
    start = time.perf_counter()
    make()
    return time.perf_counter() - start


def measure_network(name, rounds):
    make = NETWORKS[name]
    slim = make()
    plain_config = slim.subnetwork(1.0).get_config()

    def traced():
        with traced_symbolic_calls():
            return make()

    def plain():  # from_config consumes its argument
        return keras.Model.from_config(copy.deepcopy(plain_config))

    sides = {"slim": make, "slim, traced": traced, "plain": plain}
    for side in sides.values():  # this process's one-time costs
        seconds_to(side)
    seconds = _common.alternated_rounds(
        sides, rounds, lambda side: seconds_to(sides[side]))
    variables = {"slim": len(slim.variables), "slim, traced":
                 len(slim.variables), "plain": len(plain().variables)}
    return [{"network": name, "side": side, "variables": variables[side],
             "seconds": seconds[side],
             "median": statistics.median(seconds[side])} for side in sides]


def table(rows):
    """The markdown table of BENCHMARKS.md for these rows."""
    lines = ["| network | built as | variables | build (s, median) | rounds "
             "| vs plain |", "|---|---|---|---|---|---|"]
    for row in rows:
        plain = next(r for r in rows if r["network"] == row["network"]
                     and r["side"] == "plain")
        lines.append(
            f"| {row['network']} | {row['side']} | {row['variables']:,} | "
            f"{row['median']:.2f} | "
            f"{', '.join(f'{s:.2f}' for s in row['seconds'])} | "
            f"{row['median'] / plain['median']:.2f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = []
    for name in NETWORKS:
        rows += measure_network(name, args.rounds)
    print(table(rows))
    path = _common.write_result("bench_build_cost", {
        "machine": _common.machine(), "rounds": args.rounds, "rows": rows})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
