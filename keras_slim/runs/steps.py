"""A run in three steps: `prepare(config)`, `train(run)`, `evaluate(run)`.

`pretrain(config)` is the three in a row. A script with its own
`tf.distribute` strategy (see `examples/mirrored_pretrain.py`) calls them
itself: `prepare(config, strategy=strategy)` builds everything inside that
strategy's scope.
"""

import time

import keras

from keras_slim import data
from keras_slim import evaluation
from keras_slim.config import as_run_config
from keras_slim.io import atomic_path
from keras_slim.runs._run_backend import run_backend
from keras_slim.runs.builders import build_backbone
from keras_slim.runs.builders import build_method
from keras_slim.runs.builders import build_optimizer
from keras_slim.runs.builders import build_strategy
from keras_slim.runs.builders import global_batch_check
from keras_slim.runs.fitting import fit_from_step
from keras_slim.runs.inputs import crop_size
from keras_slim.runs.inputs import run_directory_of
from keras_slim.runs.inputs import training_split
from keras_slim.runs.non_finite_guard import NonFiniteGuard
from keras_slim.runs.results import check_beats_baseline
from keras_slim.runs.results import write_results
from keras_slim.runs.run import Run
from keras_slim.runs.run_checkpoint import RunCheckpoint
from keras_slim.runs.run_checkpoint import read_checkpoint_state
from keras_slim.runs.run_checkpoint import restore_checkpoint
from keras_slim.runs.run_directory import RunDirectory
from keras_slim.runs.step_tensorboard import StepTensorBoard
from keras_slim.runs.width_evaluation import evaluate_backbone

__all__ = ["prepare", "train", "evaluate"]


def prepare(config, strategy=None, run_dir=None, log=print,
            steps_per_execution=1):
    """Everything a run needs before it trains, restored from its folder.

    Sets the precision and seed, loads the training data, builds the
    augmentation, the backbone, the recipe and its optimizer inside
    `strategy.scope()`, and restores the run directory's checkpoint when
    there is one (same config required, except for harmless keys such as
    `train.epochs`).

    Args:
        config: a `keras_slim.config.RunConfig` (`load_config`), or a
            mapping of sections (validated).
        strategy: a `tf.distribute.Strategy` (default: `train.strategy`);
            on JAX a `keras.distribution.Distribution`.
        run_dir: the run folder (default: `output_dir` or `runs/<name>`).
        log: where progress lines go (default `print`).
        steps_per_execution: training steps per call of the compiled step
            (a TPU's host overhead), at most one epoch's.

    Returns:
        a `keras_slim.runs.Run`.

    Raises:
        ValueError: a bad config, e.g. a batch the replicas cannot split,
            or another config than the one the run directory resumes.
    """
    config = as_run_config(config)
    directory = RunDirectory(run_dir) if run_dir else run_directory_of(config)
    backend = run_backend()
    strategy = (backend.as_strategy(strategy) if strategy
                else build_strategy(config))
    # Before the run folder is written: a refused setting leaves nothing
    # behind that would stop the corrected config.
    global_batch_check(config, strategy)
    directory.start(config)
    keras.mixed_precision.set_dtype_policy(
        config.train.mixed_precision or "float32")
    keras.utils.set_random_seed(config.seed)
    backend.host_input_pipeline()

    train_data = training_split(config)
    size = crop_size(config)
    augmentation = data.TwoViewAugmentation.from_preset(
        config.augmentation.preset, image_size=size,
        **config.augmentation.options,
    )
    batch = config.train.batch_size
    per_epoch = data.steps_per_epoch(train_data, batch)
    log(f"data: {train_data.name} {config.data.train_split}, "
        f"{train_data.num_examples} images {train_data.image_shape}, "
        f"{per_epoch} steps of {batch} per epoch, views {size}x{size}")

    with strategy.scope():
        backbone = build_backbone(config, train_data.image_shape[-1],
                                  seed=config.seed)
        model = build_method(config, backbone, per_epoch)
        model.compile(optimizer=build_optimizer(config, per_epoch),
                      jit_compile=backend.jit_compile(
                          config.train.jit_compile),
                      # More than an epoch's steps per call would never
                      # be used in full.
                      steps_per_execution=min(steps_per_execution,
                                              per_epoch))
        model.optimizer.build(model.trainable_variables)

    run = Run(config, directory, strategy, model, train_data, augmentation,
              per_epoch, log=log)
    state = read_checkpoint_state(directory.checkpoint_dir)
    if state is not None:
        restore_checkpoint(model, state)
        run.start_step = int(state["step"])
        run.history = state["history"]
        run.metric_state = state.get("metrics")
        log(f"resuming {directory.path} at step {run.start_step}")
    return run


def train(run, callbacks=()):
    """Train `run` to `train.epochs`, checkpointing; save its backbone.

    A resumed run ends with the same weights, optimizer state and history
    as a run never stopped: the checkpoint holds every variable, and batch
    `n` of the data is a function of `(seed, n)` alone.

    Args:
        run: a `Run` from `prepare`.
        callbacks: extra Keras callbacks for `fit`.

    Returns:
        the per-epoch history (list of log dicts, also `history.json`).

    Raises:
        FloatingPointError: a loss or weight became NaN/Inf; the message
            names the width and step and the intact checkpoint.
    """
    config = run.config
    ev = config.evaluation
    monitor = []
    if ev.knn_every_epochs:
        train_set, test_set = run.labelled_sets()
        monitor.append(evaluation.KNNMonitor(
            *train_set, *test_set, every_n_epochs=ev.knn_every_epochs,
            widths=ev.eval_widths, k=ev.knn_k,
            temperature=ev.knn_temperature,
        ))
    checkpoint = RunCheckpoint(
        run.directory.checkpoint_dir,
        every_steps=config.train.checkpoint_every_steps,
        history=run.history, metric_state=run.metric_state,
    )
    tensorboard = StepTensorBoard(run.directory.logs_dir, update_freq=50)
    # The guard first: a spoiled step stops before anything saves it.
    guard = NonFiniteGuard.for_widths(run.backbone.widths)
    all_callbacks = ([guard] + monitor + [checkpoint, tensorboard]
                     + list(callbacks))
    started = time.time()
    try:
        _fit(run, all_callbacks)
    except FloatingPointError as error:
        raise FloatingPointError(
            f"{error} {_resume_note(run.directory)}"
        ) from None
    run.train_seconds = time.time() - started
    run.history = checkpoint.history
    run.directory.write_json("history.json", checkpoint.history)
    with atomic_path(run.directory.backbone_path) as tmp:
        run.backbone.save(tmp)
    run.log(f"saved {run.directory.backbone_path}")
    return run.history


def evaluate(run, protocols=("knn", "linear")):
    """Every evaluated width of `run`'s backbone, pretrained and random-init.

    Writes `results.json` and the accuracy-vs-FLOPs plot and logs the
    table. With `evaluation.require_beating_baseline`, raises
    `BaselineNotBeaten` (after writing) when a width lost to random init.

    Args:
        run: a trained `Run`.
        protocols: see `keras_slim.runs.evaluate_backbone`.

    Returns:
        the results dict (also in `<run>/results.json`).
    """
    config = run.config
    train_set, test_set = run.labelled_sets()
    results = evaluate_backbone(config, run.backbone, train_set, test_set,
                                log=run.log, protocols=protocols)
    if run.train_seconds is not None:
        # Wall time of this process's training; a resumed run counts from
        # its resumption (`resumed_at_step`).
        results["train_seconds"] = round(run.train_seconds, 1)
    results["resumed_at_step"] = run.start_step
    results["epochs"] = config.train.epochs
    write_results(run.directory, config, results, log=run.log)
    if config.evaluation.require_beating_baseline:
        check_beats_baseline(results)
    return results


def _resume_note(directory):
    state = read_checkpoint_state(directory.checkpoint_dir)
    if state is None:
        return f"No checkpoint was written; {directory.path} can be deleted."
    return (
        f"The checkpoint of step {state['step']} in "
        f"{directory.checkpoint_dir} is intact and rerunning resumes from "
        f"it; with the same settings it fails the same way, so to change "
        f"the learning rate or the data use a new output_dir."
    )


def _fit(run, callbacks):
    """`model.fit` from `run.start_step`, finishing a cut epoch first."""
    config = run.config

    def pairs(start_step, steps):
        return data.view_pairs(
            run.train_data, run.augmentation, config.train.batch_size,
            seed=config.seed, start_step=start_step,
            **({} if steps is None else {"steps": steps}))

    fit_from_step(run.model, pairs, run.start_step, run.steps_per_epoch,
                  config.train.epochs, callbacks,
                  verbose=config.train.verbose, strategy=run.strategy)
