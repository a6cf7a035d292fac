"""`pretrain(config)`: one slimmable pretraining run, from data to results."""

from keras_slim.runs.inputs import crop_size
from keras_slim.runs.inputs import eval_arrays
from keras_slim.runs.inputs import load_split
from keras_slim.runs.inputs import run_directory_of
from keras_slim.runs.inputs import training_split
from keras_slim.runs.results import BaselineNotBeaten
from keras_slim.runs.results import check_beats_baseline
from keras_slim.runs.steps import evaluate as evaluate_step
from keras_slim.runs.steps import prepare
from keras_slim.runs.steps import train
from keras_slim.runs.width_evaluation import widths_to_evaluate

# Also importable from here, where they were first defined.
__all__ = ["pretrain", "BaselineNotBeaten", "check_beats_baseline",
           "crop_size", "eval_arrays", "load_split", "run_directory_of",
           "training_split", "widths_to_evaluate"]


def pretrain(config, run_dir=None, callbacks=(), evaluate=True, log=print):
    """Pretrain every width of `config`'s backbone; evaluate; write results.

    `prepare(config)`, `train(run)` and `evaluate(run)` in a row (see
    `keras_slim.runs.steps`). Resumes from `run_dir`'s checkpoint when one
    exists (same config required, except for harmless keys such as
    `train.epochs`). A resumed run ends with the same weights, optimizer
    state and history as a run never stopped: the checkpoint holds every
    variable, and batch `n` of the data is a function of `(seed, n)` alone.

    Args:
        config: a `keras_slim.config.RunConfig` (`load_config`), or a
            mapping of sections (validated).
        run_dir: the run folder (default: `output_dir` or `runs/<name>`).
        callbacks: extra Keras callbacks for `fit`.
        evaluate: run the per-width evaluation at the end.
        log: where progress lines go (default `print`).

    Returns:
        The results dict (also in `<run>/results.json`), or the trained
        model's run directory summary when `evaluate=False`.

    Raises:
        FloatingPointError: a loss or weight became NaN/Inf; the message
            names the width and step and the intact checkpoint.
        ValueError: a bad config, e.g. a batch the replicas cannot split.
        BaselineNotBeaten: with `evaluation.require_beating_baseline`, a
            width lost to its random-init baseline.
    """
    run = prepare(config, run_dir=run_dir, log=log)
    train(run, callbacks=callbacks)
    if not evaluate:
        return {"run_dir": run.directory.path,
                "train_seconds": run.train_seconds}
    return evaluate_step(run)
