"""The results table and the accuracy-vs-FLOPs plot of a run."""

import warnings

from keras_slim.runs import format_table
from keras_slim.runs import results as results_module

ROWS = [
    {"width": 1.0, "params": 1000, "flops": 4e6, "knn_top1": 0.5,
     "random_knn_top1": 0.25, "semi50_top1": 0.625,
     "semi50_slim_top1": 0.75, "random_semi50_top1": 0.375},
    {"width": 0.5, "params": 250, "flops": 1e6, "knn_top1": 0.375,
     "random_knn_top1": 0.125, "semi50_top1": 0.5,
     "semi50_slim_top1": 0.625, "random_semi50_top1": 0.25},
]


def test_every_accuracy_is_a_column_and_a_curve():
    table = format_table({"widths": ROWS})
    header = table.splitlines()[0].split("  ")
    assert [h.strip() for h in header if h.strip()] == [
        "width", "params", "MFLOPs", "kNN", "kNN random", "semi 50%",
        "semi 50% slim", "semi 50% random"]
    assert "62.5%" in table.splitlines()[2]
    curves = list(results_module._curves(ROWS))
    assert curves == [
        ("knn_top1", "kNN", "o-"), ("random_knn_top1", "kNN random", "o:"),
        ("semi50_top1", "semi 50%", "d-"),
        ("semi50_slim_top1", "semi 50% slim", "d-"),
        ("random_semi50_top1", "semi 50% random", "d:")]


def test_a_plot_without_accuracies_has_no_empty_legend(tmp_path):
    rows = [{k: r[k] for k in ("width", "params", "flops")} for r in ROWS]
    path = tmp_path / "plot.png"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results_module.plot_results({"widths": rows}, str(path))
    assert not [w for w in caught if "No artists" in str(w.message)]
    assert path.stat().st_size > 0
    assert list(results_module._curves(rows)) == []
