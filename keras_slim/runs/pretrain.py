"""`pretrain(config)`: one slimmable pretraining run, from data to results."""

import os
import time

import keras
import numpy as np

from keras_slim.config import widths_from_config
from keras_slim.io import atomic_path
from keras_slim.runs.builders import build_backbone
from keras_slim.runs.builders import build_method
from keras_slim.runs.builders import build_optimizer
from keras_slim.runs.builders import build_strategy
from keras_slim.runs.builders import global_batch_check
from keras_slim.runs.run_checkpoint import RunCheckpoint
from keras_slim.runs.run_checkpoint import read_checkpoint_state
from keras_slim.runs.run_checkpoint import restore_checkpoint
from keras_slim.runs.run_directory import RunDirectory
from keras_slim.runs.width_progress import WidthProgress

__all__ = ["pretrain", "run_directory_of", "load_split", "eval_arrays",
           "crop_size"]


def run_directory_of(config):
    return RunDirectory(
        config["output_dir"] or os.path.join("runs", config["name"])
    )


def crop_size(config):
    return config["augmentation"]["crop_size"] or config["data"]["image_size"]


def load_split(config, split_key, max_examples=None):
    """The `ImageData` of `data.<split_key>`."""
    from keras_slim import data

    spec = config["data"]
    limit = spec["max_examples" if split_key == "train_split"
                 else "max_test_examples"]
    if max_examples is not None:
        limit = max_examples if limit is None else min(limit, max_examples)
    return data.load(
        spec["source"], split=spec[split_key], data_dir=spec["data_dir"],
        image_size=spec["image_size"], channels=spec["channels"],
        on_corrupt=spec["on_corrupt"], max_examples=limit,
        cache_dir=spec["cache_dir"],
    )


def training_split(config):
    """The pretraining images: in memory, or streamed (`data.stream`)."""
    from keras_slim import data

    spec = config["data"]
    if not spec["stream"]:
        return load_split(config, "train_split")
    return data.stream(
        spec["source"], split=spec["train_split"],
        image_size=spec["image_size"], channels=spec["channels"] or 3,
        on_corrupt=spec["on_corrupt"], max_examples=spec["max_examples"])


def eval_arrays(image_data, size):
    """(float32 images in [0, 1] at `size` x `size`, int32 labels)."""
    images = image_data.images
    if images.shape[1:3] != (size, size):
        import tensorflow as tf

        images = tf.image.resize(images, (size, size), antialias=True).numpy()
    images = np.clip(images.astype("float32") / 255.0, 0.0, 1.0)
    return images, image_data.labels.astype("int32")


def pretrain(config, run_dir=None, callbacks=(), evaluate=True, log=print):
    """Pretrain every width of `config`'s backbone; evaluate; write results.

    Resumes from `run_dir`'s checkpoint when one exists (same config
    required, except for harmless keys such as `train.epochs`). A resumed
    run ends with the same weights, optimizer state and history as a run
    never stopped: the checkpoint holds every variable, and batch `n` of
    the data is a function of `(seed, n)` alone.

    Args:
        config: a validated configuration (`keras_slim.config.load_config`).
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
    """
    from keras_slim import data as slim_data
    from keras_slim import evaluation

    run = RunDirectory(run_dir) if run_dir else run_directory_of(config)
    # Before the run folder is written: a refused setting leaves nothing
    # behind that would stop the corrected config.
    strategy = build_strategy(config)
    global_batch_check(config, strategy)
    run.start(config)
    _set_precision(config)
    keras.utils.set_random_seed(config["seed"])

    train_data = training_split(config)
    size = crop_size(config)
    augmentation = slim_data.TwoViewAugmentation.from_preset(
        config["augmentation"]["preset"], image_size=size,
        **config["augmentation"]["options"],
    )
    batch = config["train"]["batch_size"]
    per_epoch = slim_data.steps_per_epoch(train_data, batch)
    log(f"data: {train_data.name} {config['data']['train_split']}, "
        f"{train_data.num_examples} images {train_data.image_shape}, "
        f"{per_epoch} steps of {batch} per epoch, views {size}x{size}")

    with strategy.scope():
        backbone = build_backbone(config, train_data.image_shape[-1],
                                  seed=config["seed"])
        model = build_method(config, backbone, per_epoch)
        model.compile(optimizer=build_optimizer(config, per_epoch),
                      jit_compile=config["train"]["jit_compile"])
        model.optimizer.build(model.trainable_variables)

    state = read_checkpoint_state(run.checkpoint_dir)
    start_step = 0
    history = []
    if state is not None:
        restore_checkpoint(model, state)
        start_step = int(state["step"])
        history = state["history"]
        log(f"resuming {run.path} at step {start_step}")

    eval_train = eval_test = None
    monitor = []
    ev = config["evaluation"]
    if ev["knn_every_epochs"]:
        eval_train, eval_test = _labelled_sets(config, size)
        monitor.append(evaluation.KNNMonitor(
            *eval_train, *eval_test, every_n_epochs=ev["knn_every_epochs"],
            widths=ev["eval_widths"], k=ev["knn_k"],
            temperature=ev["knn_temperature"],
        ))
    checkpoint = RunCheckpoint(
        run.checkpoint_dir,
        every_steps=config["train"]["checkpoint_every_steps"],
        history=history,
        metric_state=state.get("metrics") if state else None,
    )
    tensorboard = _StepTensorBoard(run.logs_dir, update_freq=50)
    # The guard first: a spoiled step stops before anything saves it.
    all_callbacks = ([_NonFiniteGuard()] + monitor + [checkpoint, tensorboard]
                     + list(callbacks))

    started = time.time()
    try:
        _fit(model, train_data, augmentation, config, per_epoch, start_step,
             all_callbacks)
    except FloatingPointError as error:
        raise FloatingPointError(
            f"{error} {_resume_note(run)}"
        ) from None
    train_seconds = time.time() - started
    run.write_json("history.json", checkpoint.history)
    with atomic_path(run.backbone_path) as tmp:
        model.backbone.save(tmp)
    log(f"saved {run.backbone_path}")
    if not evaluate:
        return {"run_dir": run.path, "train_seconds": train_seconds}
    if eval_train is None:
        eval_train, eval_test = _labelled_sets(config, size)
    from keras_slim.runs.report import evaluate_backbone
    from keras_slim.runs.report import write_results

    results = evaluate_backbone(config, model.backbone, eval_train, eval_test,
                                log=log)
    # Wall time of this process's training; a resumed run counts from
    # its resumption (`resumed_at_step`).
    results["train_seconds"] = round(train_seconds, 1)
    results["resumed_at_step"] = start_step
    results["epochs"] = config["train"]["epochs"]
    write_results(run, config, results, log=log)
    if config["evaluation"]["require_beating_baseline"]:
        check_beats_baseline(results)
    return results


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


def _resume_note(run):
    state = read_checkpoint_state(run.checkpoint_dir)
    if state is None:
        return f"No checkpoint was written; {run.path} can be deleted."
    return (
        f"The checkpoint of step {state['step']} in {run.checkpoint_dir} is "
        f"intact and rerunning resumes from it; with the same settings it "
        f"fails the same way, so to change the learning rate or the data "
        f"use a new output_dir."
    )


class _NonFiniteGuard(keras.callbacks.Callback):
    """Stops at the first step whose loss or gradient norm is NaN or Inf.

    The recipe checks each width's loss before its update. A NaN input can
    still leave the loss finite (a ReLU may map NaN to 0) while its
    gradient, hence the updated weights, are NaN: the step's logged
    gradient norms show it, and this stops training before a checkpoint
    could save the spoiled weights.
    """

    def on_train_batch_end(self, batch, logs=None):
        for key, value in (logs or {}).items():
            if not key.endswith(("loss", "grad_norm")):
                continue
            value = float(np.asarray(keras.ops.convert_to_numpy(value))
                          .reshape(-1)[0])
            if np.isfinite(value):
                continue
            # The step has run: `ssl_step` already counts it.
            step = int(keras.ops.convert_to_numpy(self.model.ssl_step)) - 1
            what = "gradient" if key.endswith("grad_norm") else "loss"
            raise FloatingPointError(
                f"Non-finite {what} {_where(key)} ({key}={value}) at "
                f"training step {step} (counted from 0; the weights in "
                f"memory are spoiled, the checkpoints are not): lower the "
                f"learning rate or check the inputs for NaN/Inf."
            )


def _where(key):
    """`w0.5/grad_norm` -> "at width 0.5"; the total `loss` -> "in total"."""
    slot = key.rsplit("/", 1)[0] if "/" in key else ""
    if not slot:
        return "in total"
    if slot.startswith("w") and slot[1:].replace(".", "", 1).isdigit():
        return f"at width {slot[1:]}"
    return f"in slot {slot}"


class _StepTensorBoard(keras.callbacks.TensorBoard):
    """TensorBoard whose batch summaries continue at the training step.

    Keras numbers batch summaries from 0 in every `fit` call, so a resumed
    run (and the second `fit` after a cut epoch) would write over steps
    already logged. Here they continue at the recipe's `ssl_step`.
    """

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        self._global_train_batch = int(
            keras.ops.convert_to_numpy(self.model.ssl_step)
        )
        self._pop_writer()
        self._push_writer(self._train_writer, self._global_train_batch)


def _set_precision(config):
    policy = config["train"]["mixed_precision"]
    keras.mixed_precision.set_dtype_policy(policy or "float32")


def _labelled_sets(config, size):
    cap = config["evaluation"]["max_train_examples"]
    train = eval_arrays(load_split(config, "train_split", cap), size)
    test = eval_arrays(load_split(config, "test_split"), size)
    return train, test


def _fit(model, train_data, augmentation, config, per_epoch, start_step,
         callbacks):
    """`model.fit` from `start_step`, finishing a cut epoch first."""
    from keras_slim.data import view_pairs

    epochs = config["train"]["epochs"]
    # 1: our compact per-width progress (Keras' bar would print every
    # metric of every width); 2: Keras' one line per epoch; 0: nothing.
    verbose = config["train"]["verbose"]
    if verbose == 1:
        callbacks = list(callbacks) + [WidthProgress()]
        verbose = 0
    batch = config["train"]["batch_size"]
    seed = config["seed"]
    epoch, done = divmod(start_step, per_epoch)
    if epoch >= epochs:
        return
    if done:
        # The resumed epoch has only its remaining steps left.
        pairs = view_pairs(train_data, augmentation, batch, seed=seed,
                           start_step=start_step, steps=per_epoch - done)
        model.fit(pairs, epochs=epoch + 1, initial_epoch=epoch,
                  steps_per_epoch=per_epoch - done, callbacks=callbacks,
                  shuffle=False,
                  verbose=verbose)
        epoch += 1
    if epoch < epochs:
        pairs = view_pairs(train_data, augmentation, batch, seed=seed,
                           start_step=epoch * per_epoch)
        model.fit(pairs, epochs=epochs, initial_epoch=epoch,
                  steps_per_epoch=per_epoch, callbacks=callbacks,
                  shuffle=False,
                  verbose=verbose)


def widths_to_evaluate(config):
    requested = config["evaluation"]["eval_widths"]
    widths = widths_from_config(config)
    if requested:
        return [widths.validate(w) for w in requested]
    return list(widths.stat_widths if widths.is_range else widths.values)
