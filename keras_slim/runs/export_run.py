"""`keras-slim export`: a run directory's widths to verified LiteRT files."""

import os

import keras
import numpy as np

from keras_slim import _backend
from keras_slim import evaluation
from keras_slim.config import validate_config
from keras_slim.config import widths_from_config
from keras_slim.convert import load_classifiers
from keras_slim.export import export_backbone
from keras_slim.export.exporter import check_output_folder
from keras_slim.runs._tensorflow_export import export_in_tensorflow
from keras_slim.runs.finetune import CLASSIFIER_FILE
from keras_slim.runs.inputs import labelled_sets
from keras_slim.runs.run_directory import RunDirectory
from keras_slim.runs.width_evaluation import load_backbone
from keras_slim.runs.width_evaluation import widths_to_evaluate

__all__ = ["export_run"]


def export_run(run_dir, output_dir=None, widths=None,
               precisions=("float32", "int8"), head=False, int8_io=False,
               representative_count=300, image_count=500, saved_model=True,
               bundle=True, latency_runs=30, overwrite=False,
               isolate="auto", log=print):
    """Export the trained backbone of a run directory, every width verified.

    A fine-tuning run (`keras-slim finetune`) exports its fine-tuned
    classifier at each width: backbone and head, outputs `features` and
    `logits`, each file's top-1 on the test images checked against Keras'
    (`THRESHOLDS`' `top1_agreement`) and written into the manifest.

    Images come from the run's own data settings: representative images
    (int8 calibration) from its training split, the verification images
    (and labels) from its test split, both drawn at random with the run's
    seed. A width range is BatchNorm-calibrated on training images first.

    Args:
        run_dir: a folder written by `keras-slim pretrain`, `convert` or
            `finetune`.
        output_dir: where to write (default `<run_dir>/export`).
        widths: widths to export (default: every evaluated width); for a
            width range, any width inside it. Checked against the run's
            config before anything loads (or a worker starts).
        precisions: see `keras_slim.export.PRECISIONS`.
        head: export backbone + a linear classifier per width (files output
            `logits` too, and the manifest gets each file's top-1 on the test
            images): the run's own `classifiers/` (a converted
            linear-evaluation checkpoint) when it has them, else a linear
            probe trained per width on the run's labelled data.
        int8_io: int8 inputs/outputs for the "int8" files.
        representative_count: training images that calibrate "int8".
        image_count: test images each file is verified on.
        saved_model, bundle, latency_runs, overwrite: see
            `keras_slim.export.export_backbone`.
        isolate: where the files are converted (see
            `keras_slim.export.run_conversions`). "auto", the default, spares
            a `keras-slim export` of a few files a worker's TensorFlow
            start-up; its process ends after the export, and with it the
            converter's leak.

    On another backend than TensorFlow (a run trained on JAX) the export
    runs in a TensorFlow-backend worker process, which reads the run
    directory's files; TensorFlow must be installed.

    Returns:
        the manifest dict.
    """
    run = RunDirectory(run_dir)
    # Before the slow part (loading, heads, a TensorFlow worker's start).
    check_output_folder(os.path.abspath(output_dir or run.file("export")),
                        overwrite)
    config = validate_config(run.read_config(), run.config_path)
    widths = _widths_to_export(config, widths)
    if not _backend.is_tensorflow():
        arguments = dict(
            run_dir=run_dir, output_dir=output_dir, widths=widths,
            precisions=list(precisions), head=head, int8_io=int8_io,
            representative_count=representative_count,
            image_count=image_count, saved_model=saved_model, bundle=bundle,
            latency_runs=latency_runs, overwrite=overwrite, isolate=isolate)
        return export_in_tensorflow(arguments, log)
    finetuned = _finetuned_classifier(run)
    backbone = load_backbone(run) if finetuned is None else finetuned.backbone
    train, test = labelled_sets(config)
    rng = np.random.default_rng(config.seed)
    if backbone.widths.is_range:
        # Any width of the range: slots for its statistics, then calibrate.
        backbone = evaluation.with_stat_widths(backbone, widths)
        _calibrate(backbone, widths, train[0], config, log)
    classifiers, probe = None, {}
    if finetuned is not None:
        head = True
        classifiers = {w: finetuned.head.to_keras_layer(w) for w in widths}
        log(f"exporting the fine-tuned classifier "
            f"({run.file(CLASSIFIER_FILE)})")
    elif head and os.path.isdir(run.file("classifiers")):
        classifiers = _run_classifiers(run, widths, log)
    elif head:
        classifiers, probe = _train_heads(backbone, widths, train, test,
                                          config, log)
    chosen = rng.permutation(len(test[0]))[:image_count]
    representative = None
    if "int8" in precisions:
        picks = rng.permutation(len(train[0]))[:representative_count]
        representative = train[0][picks]
    return export_backbone(
        backbone, output_dir or run.file("export"), images=test[0][chosen],
        labels=test[1][chosen] if head else None, widths=widths,
        precisions=precisions, representative_images=representative,
        classifiers=classifiers, int8_io=int8_io, saved_model=saved_model,
        bundle=bundle, latency_runs=latency_runs,
        accuracy=_accuracy(run, probe), overwrite=overwrite,
        isolate=isolate, log=log)


def _widths_to_export(config, widths):
    """The requested widths (default: the evaluated ones), each checked
    against the run's widths before anything is loaded."""
    if not widths:
        return list(widths_to_evaluate(config))
    known = widths_from_config(config)
    checked = []
    for width in widths:
        try:
            checked.append(known.validate(width))
        except ValueError as error:
            raise ValueError(f"cannot export width {width!r}: {error}") \
                from None
    return checked


def _finetuned_classifier(run):
    """A fine-tuning run's `SlimClassifier`, or `None` for other runs."""
    if not os.path.isfile(run.file(CLASSIFIER_FILE)):
        return None
    return keras.saving.load_model(run.file(CLASSIFIER_FILE), compile=False)


def _calibrate(backbone, widths, images, config, log):
    log(f"calibrating BatchNorm statistics of widths {widths}")
    evaluation.calibrate_batch_norm(
        backbone, images, widths=widths,
        num_batches=config.evaluation.calibration_batches,
        batch_size=config.train.batch_size, seed=config.seed)


def _run_classifiers(run, widths, log):
    heads = load_classifiers(run.file("classifiers"))
    missing = [w for w in widths if w not in heads]
    if missing:
        raise ValueError(
            f"{run.file('classifiers')} has no classifier for widths "
            f"{missing} (it has {sorted(heads)}).")
    log(f"using the run's classifiers ({run.file('classifiers')})")
    return {w: heads[w] for w in widths}


def _train_heads(backbone, widths, train, test, config, log):
    ev = config.evaluation
    log(f"training a linear probe per width ({ev.linear_epochs} epochs)")
    result = evaluation.linear_probe(
        backbone, *train, *test, widths=widths, epochs=ev.linear_epochs,
        learning_rate=ev.linear_learning_rate, seed=config.seed)
    probe = {w: {"head_linear_top1": round(float(a), 4)}
             for w, a in result.accuracies.items()}
    return result.classifiers, probe


def _accuracy(run, probe):
    """Per width: the run's results.json accuracies and the head's."""
    results = run.read_json("results.json", default={}) or {}
    accuracy = {}
    for row in results.get("widths", []):
        accuracy[float(row["width"])] = {
            k: v for k, v in row.items()
            if k.endswith("_top1") and not k.startswith("random_")}
    for width, values in probe.items():
        accuracy.setdefault(float(width), {}).update(values)
    return accuracy


def describe(manifest):
    """A short table of an export's files for the terminal."""
    lines = [f"{'file':<28} {'bytes':>11} {'check':>22} {'ms (1 thr)':>10}"]
    for model in manifest["models"]:
        check = model.get("verification", {})
        if "error" in model:
            text = "conversion failed"
        elif model["precision"] == "float32":
            text = f"max diff {check['max_abs_diff']:.1e}"
        else:
            text = f"cosine {check['cosine']:.5f}"
        latency = model.get("latency_ms", {}).get("1")
        lines.append(f"{model['file']:<28} {model.get('bytes', 0):>11,} "
                     f"{text:>22} "
                     f"{'' if latency is None else f'{latency:.3f}':>10}")
    for bundle in manifest["bundles"]:
        lines.append(f"{bundle['file']:<28} {bundle.get('bytes', 0):>11,} "
                     f"{len(bundle['signatures'])} signatures: "
                     f"{', '.join(bundle['signatures'])}")
    return "\n".join(lines)
