"""`keras-slim finetune`: every width of a pretrained backbone, on labels.

One `SlimClassifier.fit` fine-tunes all widths of the pretraining run's
backbone at once; the same fine-tuning from a random initialization of the
same architecture runs beside it (`finetune.random_baseline`), and the
results table puts their per-width top-1 side by side with each width's
parameters and FLOPs.

A fine-tuning run directory:

```
<run>/config.yaml             the pretraining run's config + `finetune:`
<run>/checkpoint/             training state of the pretrained fine-tuning
<run>/classifier.keras        the fine-tuned SlimClassifier (every width)
<run>/random_init/            the same for the random-init baseline
<run>/results.json            per width: params, FLOPs, top-1 of both
```

Rerunning the same command resumes a killed run where its checkpoint left
off, and skips a part already finished.
"""

import os
import time

import keras
import numpy as np

from keras_slim import evaluation
from keras_slim.data import ImageData
from keras_slim.data import SupervisedAugmentation
from keras_slim.data import labeled_training_batches
from keras_slim.data import steps_per_epoch
from keras_slim.io import atomic_path
from keras_slim.profile import profile
from keras_slim.runs.finetune_config import FIXED_ON_FINETUNE_RESUME
from keras_slim.runs.finetune_config import finetune_config
from keras_slim.runs.finetune_config import source_run
from keras_slim.runs.finetune_optimizer import finetune_optimizer
from keras_slim.runs.fitting import fit_from_step
from keras_slim.runs.inputs import crop_size
from keras_slim.runs.inputs import eval_arrays
from keras_slim.runs.inputs import load_split
from keras_slim.runs.non_finite_guard import NonFiniteGuard
from keras_slim.runs.results import write_results
from keras_slim.runs.run_checkpoint import RunCheckpoint
from keras_slim.runs.run_checkpoint import read_checkpoint_state
from keras_slim.runs.run_checkpoint import restore_checkpoint
from keras_slim.runs.run_directory import RunDirectory
from keras_slim.runs.step_tensorboard import StepTensorBoard
from keras_slim.runs.width_evaluation import load_backbone
from keras_slim.tasks import SlimClassifier
from keras_slim.width import width_name

__all__ = ["finetune", "finetune_from_config", "CLASSIFIER_FILE"]

CLASSIFIER_FILE = "classifier.keras"
_RANDOM_FOLDER = "random_init"


def finetune(run_dir, overrides=(), data=None, output_dir=None, log=print):
    """Fine-tune every width of the run at `run_dir` on labels.

    Args:
        run_dir: a pretraining run directory (`keras-slim pretrain`) or a
            converted checkpoint (`keras-slim convert`).
        overrides: `key=value` strings of `finetune.*`, `data.*`, ... (see
            `keras_slim.runs.finetune_config.finetune_config`).
        data: the labelled data (`data.source`: a TFDS name, a folder of
            class subfolders, a .zip, ...); default the pretraining data.
        output_dir: the fine-tuning run directory (default
            `<run_dir>/finetune`).
        log: where progress lines go.

    Returns:
        the results dict (also `<output_dir>/results.json`).

    Raises:
        FileNotFoundError: `run_dir` is no run directory, or has no
            `backbone.keras` yet.
        ValueError: a bad override, labels the test split does not share
            with the training split, another config than the one the
            output directory resumes.
    """
    config = finetune_config(run_dir, overrides, data=data,
                             output_dir=output_dir)
    return finetune_from_config(config, log=log)


def finetune_from_config(config, log=print):
    """`finetune` for a config from `finetune_config`."""
    directory = RunDirectory(config.output_dir)
    source = source_run(config.finetune.source)
    # Before the folder is written: a bad data set leaves nothing behind.
    train_data, test, num_classes = _labelled_data(config, log)
    directory.start(config, fixed=FIXED_ON_FINETUNE_RESUME)
    pretrained = load_backbone(source)
    starts = {"finetune": (directory, pretrained)}
    if config.finetune.random_baseline:
        starts["random_finetune"] = (
            RunDirectory(directory.file(_RANDOM_FOLDER)),
            _fresh_copy(pretrained, config.seed))
    classifiers, seconds = {}, {}
    for key, (folder, backbone) in starts.items():
        log(f"fine-tuning every width from "
            f"{'random init' if key.startswith('random') else 'pretraining'}"
            f" ({folder.path})")
        classifiers[key], seconds[key] = _train(
            folder, backbone, train_data, num_classes, config, log)
    results = {
        "source": config.finetune.source,
        "label_fraction": config.finetune.label_fraction,
        "num_classes": num_classes,
        "train_examples": train_data.num_examples,
        "test_examples": len(test[1]),
        "train_seconds": seconds,
        "widths": _rows(classifiers, train_data, test, config),
    }
    write_results(directory, config, results, log=log)
    return results


def _labelled_data(config, log):
    """(training `ImageData`, (test images, labels), class count)."""
    train = load_split(config, "train_split")
    fraction = config.finetune.label_fraction
    if fraction is not None:
        kept = evaluation.labeled_subset(train.labels, fraction,
                                         seed=config.seed,
                                         num_classes=train.num_classes)
        train = ImageData(train.images[kept], train.labels[kept],
                          train.class_names, name=train.name,
                          split=f"{train.split} ({fraction:.0%} of labels)")
    test = eval_arrays(load_split(config, "test_split"), crop_size(config))
    if len(test[1]) and test[1].max() >= train.num_classes:
        raise ValueError(
            f"The test split has label {int(test[1].max())} but the training "
            f"split only {train.num_classes} classes: give data whose splits "
            f"share their classes (data.train_split / data.test_split).")
    log(f"data: {train.name} {train.split}, {train.num_examples} labelled "
        f"images of {train.num_classes} classes; test {len(test[1])}")
    return train, test, train.num_classes


def _fresh_copy(backbone, seed):
    """The same architecture as `backbone`, randomly initialized."""
    keras.utils.set_random_seed(seed)
    fresh = type(backbone).from_config(backbone.get_config())
    fresh.build((None, *backbone.image_shape))
    return fresh


def _train(directory, backbone, train_data, num_classes, config, log):
    """The fine-tuned classifier in `directory` (trained, resumed or read)
    and this process's training seconds (`None`: finished earlier)."""
    path = directory.file(CLASSIFIER_FILE)
    if os.path.isfile(path):
        log(f"  already fine-tuned: {path}")
        return keras.saving.load_model(path, compile=False), None
    ft = config.finetune
    per_epoch = steps_per_epoch(train_data, ft.batch_size)
    keras.utils.set_random_seed(config.seed)
    classifier = SlimClassifier(
        backbone, num_classes,
        inplace_distillation=ft.inplace_distillation,
        label_smoothing=ft.label_smoothing,
        num_random_widths=ft.num_random_widths, seed=config.seed)
    classifier.compile(
        optimizer=finetune_optimizer(ft, per_epoch * ft.epochs,
                                     classifier),
        jit_compile=config.train.jit_compile)
    classifier.optimizer.build(classifier.trainable_variables)
    state = read_checkpoint_state(directory.checkpoint_dir)
    start = 0 if state is None else int(state["step"])
    if state is not None:
        restore_checkpoint(classifier, state)
        log(f"  resuming {directory.path} at step {start}")
    checkpoint = RunCheckpoint(
        directory.checkpoint_dir,
        every_steps=config.train.checkpoint_every_steps,
        history=None if state is None else state["history"],
        metric_state=None if state is None else state.get("metrics"),
        step_variable="step_counter")
    callbacks = [NonFiniteGuard.for_widths(backbone.widths), checkpoint,
                 StepTensorBoard(directory.logs_dir, update_freq=50,
                                 step_variable="step_counter")]
    augmentation = SupervisedAugmentation(crop_size(config),
                                          crop_scale=ft.crop_scale)

    def batches(start_step, steps):
        return labeled_training_batches(
            train_data, augmentation, ft.batch_size, seed=config.seed,
            start_step=start_step,
            **({} if steps is None else {"steps": steps}))

    started = time.time()
    fit_from_step(classifier, batches, start, per_epoch, ft.epochs,
                  callbacks, verbose=config.train.verbose)
    seconds = round(time.time() - started, 1)
    directory.write_json("history.json", checkpoint.history)
    with atomic_path(path) as tmp:
        classifier.save(tmp)
    log(f"  saved {path}")
    return classifier, seconds


def _rows(classifiers, train_data, test, config):
    """Per width: params and FLOPs of its classifier, top-1 of each start."""
    size = crop_size(config)
    shape = (size, size, train_data.image_shape[-1])
    widths = _evaluated_widths(classifiers["finetune"].backbone.widths)
    rows = {w: _cost(classifiers["finetune"], w, shape) for w in widths}
    calibration_images = None
    for key, classifier in classifiers.items():
        if classifier.backbone.widths.is_range:
            if calibration_images is None:
                calibration_images = eval_arrays(train_data, size)[0]
            classifier.calibrate(
                calibration_images, widths=widths,
                num_batches=config.evaluation.calibration_batches,
                batch_size=config.finetune.batch_size,
                seed=config.seed)
        for width in widths:
            logits = classifier.predict(test[0], width=width,
                                        batch_size=256, verbose=0)
            rows[width][f"{key}_top1"] = round(
                float(np.mean(np.argmax(logits, -1) == test[1])), 4)
    return list(rows.values())


def _evaluated_widths(widths):
    return list(widths.stat_widths if widths.is_range else widths.values)


def _cost(classifier, width, shape):
    """The classifier's parameters and multiply-adds at `width`."""
    cost = profile(classifier.backbone, width, input_shape=shape)
    features = classifier.backbone.feature_dim(width)
    head = features * classifier.num_classes
    return {"width": width, "name": width_name(width),
            "params": int(cost.params) + head + classifier.num_classes,
            "flops": int(cost.flops) + head}
