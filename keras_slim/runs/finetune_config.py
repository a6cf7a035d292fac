"""The configuration of a fine-tuning run, made from its pretraining run's."""

import copy
import os

from keras_slim.config import ConfigError
from keras_slim.config import parsed_overrides
from keras_slim.config import set_path
from keras_slim.config import validate_config
from keras_slim.runs.run_directory import RunDirectory

__all__ = ["finetune_config", "source_run", "FIXED_ON_FINETUNE_RESUME"]

# What a fine-tuning run may change of its pretraining run's config: the
# backbone (backbone.keras), its recipe and its views are fixed facts of
# the source run.
_CHANGEABLE = ("name", "seed", "output_dir", "data", "finetune",
               "evaluation", "train.verbose", "train.checkpoint_every_steps",
               "train.jit_compile")

# Changing these between a fine-tuning run and its resumption would mix two
# trainings (`finetune.random_baseline` only adds or drops the baseline).
FIXED_ON_FINETUNE_RESUME = (
    ("seed",),
    ("data", "source"), ("data", "train_split"), ("data", "image_size"),
    ("data", "channels"), ("data", "max_examples"),
    ("augmentation", "crop_size"),
    ("finetune", "source"), ("finetune", "epochs"),
    ("finetune", "batch_size"), ("finetune", "optimizer"),
    ("finetune", "learning_rate"), ("finetune", "momentum"),
    ("finetune", "weight_decay"), ("finetune", "warmup_fraction"),
    ("finetune", "label_smoothing"), ("finetune", "inplace_distillation"),
    ("finetune", "num_random_widths"), ("finetune", "label_fraction"),
    ("finetune", "crop_scale"),
)


def source_run(run_dir):
    """The pretraining `RunDirectory` at `run_dir`, checked to hold a backbone.

    Raises:
        FileNotFoundError: no run directory there, or one whose pretraining
            has not finished (no `backbone.keras`).
        ValueError: `run_dir` is itself a fine-tuning run.
    """
    run = RunDirectory(run_dir)
    config = run.read_config()  # names the folder when it is not a run
    finetuned_from = (config.get("finetune") or {}).get("source")
    if finetuned_from:
        raise ValueError(
            f"{run_dir} is a fine-tuning run (of {finetuned_from}); give "
            f"the pretraining run directory (or a `keras-slim convert` "
            f"output) to fine-tune.")
    if not os.path.isfile(run.backbone_path):
        raise FileNotFoundError(
            f"{run_dir} has no backbone.keras: its pretraining has not "
            f"finished. Run `keras-slim pretrain` with its config again to "
            f"resume it, or convert an official checkpoint with `keras-slim "
            f"convert CHECKPOINT OUT_DIR` and fine-tune OUT_DIR.")
    return run


def finetune_config(run_dir, overrides=(), data=None, output_dir=None):
    """The validated config of fine-tuning the run at `run_dir`.

    It is the pretraining run's config, with `finetune.source` set to
    `run_dir`, `data.source` to `data` when given, and `overrides` (only of
    `data.*`, `finetune.*`, `evaluation.*`, `name`, `seed`, `output_dir`
    and `train.verbose` / `checkpoint_every_steps` / `jit_compile`: the
    backbone comes from the run's `backbone.keras`). Its run directory is
    `output_dir`, else an `output_dir=` override, else
    `<run_dir>/finetune` (`finetune_10pct` with `finetune.label_fraction=0.1`).

    Raises:
        ConfigError: an override of a fixed key, or a bad value.
        FileNotFoundError, ValueError: see `source_run`.
    """
    run = source_run(run_dir)
    config = copy.deepcopy(run.read_config())
    config.setdefault("finetune", {})
    problems, chosen_dir = [], output_dir
    if data is not None:
        config.setdefault("data", {})["source"] = data
    for key_path, value in parsed_overrides(overrides, problems):
        if not _changeable(key_path):
            problems.append((".".join(key_path), _fixed_message(key_path)))
            continue
        if key_path == ("output_dir",):
            chosen_dir = chosen_dir or value
            continue
        set_path(config, key_path, value, problems)
    config["finetune"]["source"] = os.path.abspath(run_dir)
    try:
        config = validate_config(config, "the fine-tuning config")
    except ConfigError as error:
        problems += error.problems
    if problems:  # every problem at once, the refused overrides first
        raise ConfigError(problems, "the fine-tuning config")
    return config.replace(output_dir=chosen_dir or os.path.join(
        run_dir, _default_folder(config.finetune.label_fraction)))


def _changeable(key_path):
    dotted = ".".join(key_path)
    return any(dotted == key or dotted.startswith(key + ".")
               for key in _CHANGEABLE)


def _fixed_message(key_path):
    return (f"is the pretraining run's (fine-tuning takes its "
            f"backbone.keras as it is); fine-tuning takes overrides of "
            f"{', '.join(_CHANGEABLE)}, e.g. finetune.learning_rate=0.05")


def _default_folder(label_fraction):
    if label_fraction is None:
        return "finetune"
    return f"finetune_{label_fraction * 100:g}pct"
