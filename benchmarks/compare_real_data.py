"""Per-width top-1 of two or more `bench_real_data` results side by side.

    python -m benchmarks.compare_real_data \
        benchmarks/results/real_data_fashion_mnist_2026-11-23.json \
        benchmarks/results/real_data_fashion_mnist.json \
        benchmarks/results/real_data_fashion_mnist_restart.json

Prints one markdown table per metric (kNN, linear): a row per variant and
width, a column per file (labelled by its date and commit, or `name`), and
the change from the first file. Variants missing from a file are left blank.
"""

import argparse
import json
import os


def _label(path, payload):
    name = payload.get("settings", {}).get("name")
    stem = os.path.splitext(os.path.basename(path))[0]
    when = payload.get("date", "?")[:10]
    commit = payload.get("commit", "?")[:7]
    return f"{name or stem} ({when}, {commit})"


def _rows(payload):
    """{(variant, width): row}; individual runs are keyed by their width."""
    rows = {}
    for variant, found in payload.get("variants", {}).items():
        for row in found.get("rows", []):
            rows[(variant, float(row["width"]))] = row
    return rows


def table(paths, metric):
    payloads = []
    for path in paths:
        with open(path) as f:
            payloads.append(json.load(f))
    columns = [_rows(p) for p in payloads]
    keys = []
    for rows in columns:
        keys += [k for k in rows if k not in keys]
    heads = [_label(p, d) for p, d in zip(paths, payloads)]
    lines = ["| variant | width | " + " | ".join(heads) + " | change vs first |",
             "|---|---|" + "---|" * (len(heads) + 1)]
    for variant, width in keys:
        values = [rows.get((variant, width), {}).get(metric)
                  for rows in columns]
        cells = ["" if v is None else f"{100 * v:.1f}" for v in values]
        changes = [f"{100 * (v - values[0]):+.1f}" for v in values[1:]
                   if v is not None and values[0] is not None]
        lines.append(f"| {variant} | {width:g} | " + " | ".join(cells)
                     + f" | {' / '.join(changes)} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("results", nargs="+",
                        help="bench_real_data JSON files, the reference first")
    args = parser.parse_args(argv)
    if len(args.results) < 2:
        parser.error("give at least two result files to compare")
    for metric, title in (("knn_top1", "kNN top-1 (%)"),
                          ("linear_top1", "linear-probe top-1 (%)")):
        print(f"{title}\n\n{table(args.results, metric)}\n")


if __name__ == "__main__":
    main()
