"""Moved: per-width evaluation is `keras_slim.runs.width_evaluation`, the
results files and table are `keras_slim.runs.results`; these names stay
importable from here for scripts written against the old layout."""

from keras_slim.runs.results import format_table
from keras_slim.runs.results import plot_results
from keras_slim.runs.results import write_results
from keras_slim.runs.width_evaluation import PROTOCOLS
from keras_slim.runs.width_evaluation import evaluate_backbone
from keras_slim.runs.width_evaluation import evaluate_run
from keras_slim.runs.width_evaluation import load_backbone

__all__ = ["PROTOCOLS", "evaluate_backbone", "evaluate_run", "format_table",
           "load_backbone", "plot_results", "write_results"]
