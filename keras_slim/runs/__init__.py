"""Pretraining runs: a config in, a run directory of weights and results out."""

from keras_slim.runs.pretrain import pretrain
from keras_slim.runs.report import PROTOCOLS
from keras_slim.runs.report import evaluate_run
from keras_slim.runs.report import format_table
from keras_slim.runs.run_checkpoint import RunCheckpoint
from keras_slim.runs.run_directory import RunDirectory

__all__ = ["PROTOCOLS", "RunCheckpoint", "RunDirectory", "evaluate_run",
           "format_table", "pretrain"]
