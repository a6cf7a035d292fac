"""The manifest of an export and its latency/accuracy plot."""

import datetime

from keras_slim import __version__
from keras_slim.export.verification import THRESHOLDS
from keras_slim.io import atomic_path
from keras_slim.profile import profile
from keras_slim.width import width_name


def build_manifest(backbone, request, accuracy):
    costs = {}
    for width in request.widths:
        cost = profile(backbone, width, input_shape=request.image_shape)
        costs[width_name(width)] = {
            "width": width, "params": int(cost.params),
            "flops": int(cost.flops),
            "feature_dim": int(backbone.feature_dim(width))}
        if accuracy and width in {float(w) for w in accuracy}:
            costs[width_name(width)]["accuracy"] = {
                k: v for w, values in accuracy.items() if float(w) == width
                for k, v in values.items()}
    return {
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"),
        "keras_slim_version": __version__,
        "backbone": backbone.name,
        "input": {"name": "images", "shape": [None, *request.image_shape],
                  "dtype": "float32", "range": [0.0, 1.0],
                  "int8_io": request.int8_io},
        "outputs": ["features"] + (["logits"] if request.classifiers else []),
        "thresholds": {p: THRESHOLDS[p] for p in request.precisions},
        "widths": costs,
        "models": [],
        "bundles": [],
    }


def plot_latency(manifest, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [m for m in manifest["models"] if "latency_ms" in m
            and m["latency_ms"]]
    if not rows:
        return
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for precision in sorted({m["precision"] for m in rows}):
        mine = sorted((m for m in rows if m["precision"] == precision),
                      key=lambda m: m["width"])
        threads = sorted(mine[0]["latency_ms"], key=int)[0]
        axes[0].plot([m["width"] for m in mine],
                     [m["latency_ms"][threads] for m in mine], "o-",
                     label=f"{precision} ({threads} thread)")
        accuracy = [(m["width"], m["verification"].get("top1")) for m in mine]
        accuracy = [(w, a) for w, a in accuracy if a is not None]
        if accuracy:
            axes[1].plot(*zip(*accuracy), "o-", label=precision)
    axes[0].set(xlabel="width", ylabel="LiteRT latency, batch 1 (ms)",
                title="Latency vs width")
    axes[0].legend()
    axes[1].set(xlabel="width", ylabel="top-1 of the exported file",
                title="Accuracy vs width")
    if axes[1].lines:
        axes[1].legend()
    else:
        axes[1].text(0.5, 0.5, "export with a classifier head and labels\n"
                     "to measure accuracy", ha="center", va="center",
                     transform=axes[1].transAxes)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110)
    plt.close(figure)
