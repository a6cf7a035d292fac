"""Where a small export converts: worker processes vs. this process.

`keras_slim.export.run_conversions` converts in worker processes (the TFLite
converter leaks ~20 MB per call) or, with `isolate="auto"` (the default of
`keras-slim export`), in the calling process when the export has at most one
worker's worth of files. This times `export_backbone` of a SlimResNet-18
(CIFAR stem, base width 64, 32x32) at widths [1.0, 0.5], float32, no
SavedModel, bundle or latency timing: two conversions, a typical
`keras-slim export` of a few files. `isolate=True` and `"auto"` alternate for
`--rounds` rounds in one process; the median seconds of each and their
ratio. (What the in-process side leaks is `tests/export/test_export.py`'s
concern; here the exports' own Keras models grow the process on both sides.)

    python -m benchmarks.bench_export_isolation [--rounds 3]

Writes benchmarks/results/bench_export_isolation.json and prints a table.
"""

import argparse
import os
import tempfile
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")  # as keras_slim sets it
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

from benchmarks import _common  # noqa: E402
from keras_slim.backbones import SlimResNet  # noqa: E402
from keras_slim.export import export_backbone  # noqa: E402

SIDES = (True, "auto")


def one_export(backbone, images, isolate):
    """Seconds of one export."""
    folder = os.path.join(tempfile.mkdtemp(), "out")
    start = time.perf_counter()
    manifest = export_backbone(
        backbone, folder, images=images, widths=[1.0, 0.5],
        precisions=["float32"], saved_model=False, bundle=False,
        latency_threads=(), isolate=isolate, log=None)
    seconds = time.perf_counter() - start
    if not manifest["verified"]:
        raise SystemExit(f"isolate={isolate!r}: the export failed to verify")
    return seconds


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    backbone = SlimResNet(depth=18, stem="cifar", base_width=64,
                          widths=[1.0, 0.5], input_shape=(32, 32, 3))
    images = np.random.default_rng(0).random((16, 32, 32, 3), "float32")
    one_export(backbone, images, False)  # this side's own imports, once
    seconds = _common.alternated_rounds(
        SIDES, args.rounds, lambda side: one_export(backbone, images, side))
    median = _common.print_rounds_table("isolate", "export", seconds,
                                        baseline=True, name=repr)
    path = _common.write_result("bench_export_isolation", {
        "machine": _common.machine(), "rounds": args.rounds,
        "seconds": {repr(s): v for s, v in seconds.items()},
        "ratio_auto_to_workers": median["auto"] / median[True]})
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
