"""Prints the BENCHMARKS.md tables from benchmarks/results/*.json.

    python -m benchmarks.report
"""

import glob
import json
import os

from benchmarks.bench_backbone_step import table as backbone_table
from benchmarks.bench_backends import table as backends_table
from benchmarks.bench_build_cost import table as build_table

HERE = os.path.dirname(__file__)


def _load(name):
    path = os.path.join(HERE, "results", f"{name}.json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def backbone_sections():
    for model in ("resnet18", "mobilenet_v2"):
        result = _load(f"backbone_step_{model}")
        if result is None:
            continue
        print(f"#### {model}: batch {result['batch']}, "
              f"{result['size']}x{result['size']}, median of "
              f"{result['repeats']} alternated steps")
        print(f"{result['date']}, commit {result['commit']}, "
              f"{result['machine']}\n")
        print(backbone_table(result["rows"]))
        print()


def ssl_sections():
    for path in sorted(glob.glob(os.path.join(HERE, "results",
                                              "ssl_step_*.json"))):
        with open(path) as f:
            result = json.load(f)
        if "memory" in result and "repeats" not in result:
            # `--memory` runs (ru_maxrss, the allocator's footprint,
            # identical for every variant): no timing table to print.
            continue
        print(f"#### {os.path.basename(path)[:-5]}: batch {result['batch']}, "
              f"median of {result['repeats']}")
        print(f"{result['date']}, commit {result['commit']}, "
              f"{result['machine']}\n")
        print("| method | jit | slim step (ms) | plain steps "
              + " + ".join(f"w{w:g}" for w in result["widths"])
              + " (ms) | sum (ms) | ratio slim/sum |")
        print("|---|---|---|---|---|---|")
        for row in result["rows"]:
            plain = row["plain_s"]
            total = sum(plain.values())
            parts = " + ".join(f"{v * 1e3:.0f}" for v in plain.values())
            print(f"| {row['method']} | {'on' if row['jit'] else 'off'} "
                  f"| {row['slim_s'] * 1e3:.0f} | {parts} | {total * 1e3:.0f} "
                  f"| {row['ratio']:.3f} |")
        print()


def _section(name, title, table):
    """One result file's heading, provenance line and table."""
    result = _load(name)
    if result is None:
        return
    print(f"#### {title(result)}")
    print(f"{result['date']}, commit {result['commit']}, "
          f"{result['machine']}\n")
    print(table(result["rows"]))
    print()


def backends_section():
    _section("bench_backends", lambda r: (
        f"SlimCLR-MoCo v2 step by backend: batch {r['batch']}, median of "
        f"{r['steps']} steps x {r['rounds']} rounds"), backends_table)


def build_section():
    _section("bench_build_cost", lambda r: (
        f"Building a slimmable backbone: median of {r['rounds']} alternated "
        f"rounds"), build_table)


if __name__ == "__main__":
    backbone_sections()
    ssl_sections()
    backends_section()
    build_section()
