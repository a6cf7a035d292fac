"""A run's results: results.json, the accuracy-vs-FLOPs plot, the table."""

import re

from keras_slim.config import as_run_config
from keras_slim.io import atomic_path
from keras_slim.width import width_name

__all__ = ["write_results", "format_table", "plot_results", "merge_results",
           "BaselineNotBeaten", "check_beats_baseline"]


def write_results(run, config, results, log=print):
    """results.json, accuracy_vs_flops.png and the table on `log`.

    `results` gains the run's name and method (in place).
    """
    config = as_run_config(config)
    results.setdefault("run", config.name)
    results.setdefault("method", config.method.name)
    run.write_json("results.json", results)
    plot_results(results, run.plot_path)
    log(format_table(results))
    log(f"results: {run.results_path}\nplot: {run.plot_path}")


def merge_results(previous, results):
    """`previous` results updated by `results`, row by row of each width."""
    merged = dict(previous)
    old_rows = {r["width"]: r for r in previous.get("widths", [])}
    rows = []
    for row in results["widths"]:
        combined = dict(old_rows.get(row["width"], {}))
        combined.update(row)
        rows.append(combined)
    merged.update({k: v for k, v in results.items() if k != "widths"})
    merged["widths"] = rows
    return merged


_COLUMNS = (
    ("width", "width", "{:g}"),
    ("params", "params", "{:,}"),
    ("flops", "MFLOPs", None),
    ("knn_top1", "kNN", "{:.1%}"),
    ("random_knn_top1", "kNN random", "{:.1%}"),
    ("linear_top1", "linear", "{:.1%}"),
    ("random_linear_top1", "linear random", "{:.1%}"),
    ("joint_top1", "joint linear", "{:.1%}"),
    ("paper_linear_top1", "paper linear", "{:.1%}"),
    ("finetune_top1", "fine-tuned", "{:.1%}"),
    ("random_finetune_top1", "fine-tuned random", "{:.1%}"),
)


def format_table(results):
    """A plain-text table of the per-width results."""
    rows = results["widths"]
    columns = [c for c in _COLUMNS if any(c[0] in r for r in rows)]
    columns += [(k, _semi_title(k), "{:.1%}") for k in _semi_keys(rows)]
    header = [title for _, title, _ in columns]
    body = []
    for row in rows:
        cells = []
        for key, _, fmt in columns:
            value = row.get(key)
            if value is None:
                cells.append("-")
            elif key == "flops":
                cells.append(f"{value / 1e6:.2f}")
            else:
                cells.append(fmt.format(value))
        body.append(cells)
    sizes = [max(len(h), *(len(r[i]) for r in body))
             for i, h in enumerate(header)]
    line = "  ".join(h.rjust(s) for h, s in zip(header, sizes))
    out = [line, "-" * len(line)]
    out += ["  ".join(c.rjust(s) for c, s in zip(r, sizes)) for r in body]
    return "\n".join(out)


_SEMI = re.compile(r"(random_)?semi(\d+)(_slim)?_top1")


def _semi_keys(rows):
    """The semi-supervised accuracies some row has: by label fraction, then
    alone, every width at once, random init."""
    def order(key):
        random, percent, slim = _SEMI.fullmatch(key).groups()
        return int(percent), bool(random), bool(slim)
    return sorted({k for r in rows for k in r if _SEMI.fullmatch(k)},
                  key=order)


def _semi_title(key):
    """`semi10_top1` -> `semi 10%`; `semi10_slim_top1` -> `semi 10% slim`
    (every width in one fine-tuning); `random_...` -> `... random`."""
    random, percent, slim = _SEMI.fullmatch(key).groups()
    return f"semi {percent}%" + (" slim" if slim else "") + (
        " random" if random else "")


# A curve's marker by protocol; a random-init baseline's line is dotted.
_MARKERS = {"knn": "o", "linear": "s", "joint": "v", "paper": "P",
            "finetune": "^", "semi": "d"}


def _curves(rows):
    """(key, label, matplotlib style) of each accuracy every row has."""
    titles = {key: title for key, title, _ in _COLUMNS}
    keys = [key for key, _, _ in _COLUMNS if key.endswith("_top1")]
    for key in keys + _semi_keys(rows):
        if not all(key in r for r in rows):
            continue
        protocol = key.removeprefix("random_").split("_")[0]
        marker = _MARKERS["semi" if protocol.startswith("semi") else protocol]
        line = ":" if key.startswith("random_") else "-"
        yield key, titles.get(key) or _semi_title(key), marker + line


def plot_results(results, path):
    """Accuracy vs. FLOPs per width: pretrained against random init."""
    # matplotlib loads in about a second: only a run that plots pays it.
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = results["widths"]
    flops = [r["flops"] / 1e6 for r in rows]
    figure, axes = plt.subplots(figsize=(6, 4))
    for key, label, style in _curves(rows):
        axes.plot(flops, [100 * r[key] for r in rows], style, label=label)
    for r, x in zip(rows, flops):
        axes.annotate(width_name(r["width"]), (x, 0), xytext=(0, 4),
                      textcoords="offset points", ha="center", fontsize=8,
                      xycoords=("data", "axes fraction"))
    axes.set_xlabel("MFLOPs (multiply-adds) per image")
    axes.set_ylabel("top-1 accuracy (%)")
    axes.set_title(f"{results.get('run', '')}: accuracy vs. cost per width")
    axes.grid(alpha=0.3)
    if axes.get_lines():  # a run may have no accuracy yet: no empty legend
        axes.legend()
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


class BaselineNotBeaten(RuntimeError):
    """Pretraining did not beat the random-init backbone at some width."""


def check_beats_baseline(results):
    """Raise `BaselineNotBeaten` naming each width and protocol that lost."""
    losses = []
    for row in results["widths"]:
        for protocol in ("knn", "linear"):
            mine = row.get(f"{protocol}_top1")
            random = row.get(f"random_{protocol}_top1")
            if mine is not None and random is not None and mine <= random:
                losses.append(f"width {row['width']:g} {protocol}: "
                              f"{mine:.3f} <= random init {random:.3f}")
    if losses:
        raise BaselineNotBeaten(
            "pretraining did not beat the random-init baseline: "
            + "; ".join(losses) + ". The recipe or its settings are wrong "
            "for this data (more epochs, another learning rate or "
            "augmentation), not the check."
        )
