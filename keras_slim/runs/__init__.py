"""Pretraining runs: a config in, a run directory of weights and results out.

In one call, `pretrain(config)`; in three steps, `run = prepare(config)`,
`train(run)`, `evaluate(run)` (a script with its own `tf.distribute`
strategy passes it to `prepare`; on JAX, a `keras.distribution`).

A run reads its data with `tf.data` on either backend, so it needs
TensorFlow installed (a clear ImportError says so); on JAX it trains with
JAX and exports in a TensorFlow worker process.
"""

from keras_slim import _backend

_backend.require_tensorflow("A keras_slim run (its tf.data input pipeline)")

from keras_slim.runs.inputs import crop_size  # noqa: E402
from keras_slim.runs.inputs import eval_arrays
from keras_slim.runs.inputs import labelled_sets
from keras_slim.runs.inputs import load_split
from keras_slim.runs.inputs import training_split
from keras_slim.runs.non_finite_guard import NonFiniteGuard
from keras_slim.runs.pretrain import pretrain
from keras_slim.runs.results import BaselineNotBeaten
from keras_slim.runs.results import check_beats_baseline
from keras_slim.runs.results import format_table
from keras_slim.runs.results import write_results
from keras_slim.runs.run import Run
from keras_slim.runs.run_checkpoint import RunCheckpoint
from keras_slim.runs.run_directory import RunDirectory
from keras_slim.runs.steps import evaluate
from keras_slim.runs.steps import prepare
from keras_slim.runs.steps import train
from keras_slim.runs.width_evaluation import PROTOCOLS
from keras_slim.runs.width_evaluation import evaluate_backbone
from keras_slim.runs.width_evaluation import evaluate_run
from keras_slim.runs.width_evaluation import load_backbone
from keras_slim.runs.width_evaluation import widths_to_evaluate
from keras_slim.runs.width_progress import WidthProgress

__all__ = ["BaselineNotBeaten", "NonFiniteGuard", "PROTOCOLS", "Run",
           "RunCheckpoint", "RunDirectory", "WidthProgress",
           "check_beats_baseline", "crop_size", "eval_arrays", "evaluate",
           "evaluate_backbone", "evaluate_run", "format_table",
           "labelled_sets", "load_backbone", "load_split", "prepare",
           "pretrain", "train", "training_split", "widths_to_evaluate",
           "write_results"]
