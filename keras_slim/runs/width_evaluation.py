"""Per-width evaluation of a backbone or a finished run directory."""

import os

import keras
import numpy as np

from keras_slim import data
from keras_slim import evaluation
from keras_slim import tasks
from keras_slim.config import ConfigError
from keras_slim.config import as_run_config
from keras_slim.config import parse_override
from keras_slim.config import validate_config
from keras_slim.config import widths_from_config
from keras_slim.profile import profile
from keras_slim.runs.builders import build_backbone
from keras_slim.runs.inputs import crop_size
from keras_slim.runs.inputs import labelled_sets
from keras_slim.runs.results import merge_results
from keras_slim.runs.results import write_results
from keras_slim.runs.run_directory import RunDirectory
from keras_slim.width import width_name

__all__ = ["PROTOCOLS", "evaluate_backbone", "evaluate_run",
           "load_backbone", "widths_to_evaluate"]

PROTOCOLS = ("knn", "linear", "joint", "paper", "semi", "semi_slim",
             "align")


def widths_to_evaluate(config):
    """`evaluation.eval_widths`, else every width of the list (or the
    stored statistics widths of a range)."""
    config = as_run_config(config)
    requested = config.evaluation.eval_widths
    widths = widths_from_config(config)
    if requested:
        return [widths.validate(w) for w in requested]
    return list(widths.stat_widths if widths.is_range else widths.values)


def evaluate_backbone(config, backbone, train, test, log=print,
                      protocols=("knn", "linear")):
    """Cost and accuracy of every evaluated width, pretrained and random-init.

    Args:
        config: the run's `RunConfig` (or a mapping of sections).
        backbone: the trained slimmable backbone.
        train, test: `(images, labels)` arrays (float32 in [0, 1]).
        protocols: any of "knn", "linear", "joint", "paper", "semi" (each
            width fine-tuned alone on `evaluation.semi_supervised` label
            fractions), "semi_slim" (every width at once, in one
            `SlimClassifier`).

    Returns:
        `{"dataset": ..., "image_shape": ..., "widths": [per-width dict]}`.
    """
    config = as_run_config(config)
    widths = widths_to_evaluate(config)
    shape = tuple(int(d) for d in train[0].shape[1:])
    rows = {w: {"width": w} for w in widths}
    for w in widths:
        cost = profile(backbone, w, input_shape=shape)
        rows[w]["params"] = int(cost.params)
        rows[w]["flops"] = int(cost.flops)
    log(f"evaluating widths {widths} on {len(train[1])} train / "
        f"{len(test[1])} test images")
    _measure(config, backbone, widths, train, test, rows, "", protocols, log)
    if config.evaluation.random_baseline:
        random = build_backbone(config, shape[-1], seed=config.seed + 1)
        _measure(config, random, widths, train, test, rows, "random_",
                 [p for p in protocols if p in ("knn", "linear")], log)
    return {
        "dataset": config.data.source,
        "image_shape": list(shape),
        "widths": [rows[w] for w in widths],
    }


def _measure(config, backbone, widths, train, test, rows, prefix, protocols,
             log):
    ev = config.evaluation
    if backbone.widths.is_range:
        evaluation.calibrate_batch_norm(
            backbone, train[0], widths=widths,
            num_batches=ev.calibration_batches,
            batch_size=config.train.batch_size,
        )
    who = "random-init" if prefix else "pretrained"
    if "knn" in protocols:
        top1 = evaluation.evaluate_knn(
            backbone, *train, *test, widths=widths, k=ev.knn_k,
            temperature=ev.knn_temperature,
        )
        _store(rows, top1, prefix + "knn_top1")
        log(f"  {who} kNN top-1: {_short(top1)}")
    for joint in (False, True):
        name = "joint" if joint else "linear"
        if name not in protocols:
            continue
        result = evaluation.linear_probe(
            backbone, *train, *test, widths=widths,
            epochs=ev.linear_epochs,
            learning_rate=ev.linear_learning_rate, joint=joint,
            seed=config.seed,
        )
        _store(rows, _accuracies(result), f"{prefix}{name}_top1")
        log(f"  {who} {name} probe top-1: {_short(_accuracies(result))}")
    if "paper" in protocols:
        result = evaluation.paper_linear_probe(
            backbone, *train, *test, widths=widths,
            epochs=ev.linear_epochs,
            learning_rate=ev.paper_learning_rate,
            milestones=_paper_milestones(ev.linear_epochs),
            seed=config.seed,
        )
        _store(rows, _accuracies(result), f"{prefix}paper_linear_top1")
        log(f"  {who} paper linear protocol top-1: "
            f"{_short(_accuracies(result))}")
    if "semi" in protocols:
        _semi_supervised(config, backbone, widths, train, test, rows, prefix,
                         who, log)
    if "semi_slim" in protocols:
        _semi_supervised_all_widths(config, backbone, widths, train, test,
                                    rows, prefix, who, log)


def _semi_supervised(config, backbone, widths, train, test, rows, prefix,
                     who, log):
    ev = config.evaluation
    for fraction in ev.semi_supervised:
        key = f"{prefix}semi{_percent(fraction)}_top1"
        for w in widths:
            top1 = evaluation.fine_tune_semi_supervised(
                backbone, w, *train, *test, label_fraction=fraction,
                epochs=ev.semi_supervised_epochs, seed=config.seed,
            )
            rows[w][key] = float(top1)
        log(f"  {who} fine-tuned on {_percent(fraction)}% labels: "
            f"{_short({w: rows[w][key] for w in widths})}")


def _semi_supervised_all_widths(config, backbone, widths, train, test, rows,
                                prefix, who, log):
    ev = config.evaluation
    for fraction in ev.semi_supervised:
        key = f"{prefix}semi{_percent(fraction)}_slim_top1"
        top1 = tasks.fine_tune_all_widths_semi_supervised(
            backbone, *train, *test, label_fraction=fraction,
            epochs=ev.semi_supervised_epochs, seed=config.seed,
            calibration_batches=ev.calibration_batches)
        missing = [w for w in widths if w not in top1]
        if missing:
            raise ValueError(
                f"semi_slim evaluates a range's stat_widths; widths "
                f"{missing} are not among them: drop them from "
                f"evaluation.eval_widths or use the semi protocol.")
        for w in widths:
            rows[w][key] = float(top1[w])
        log(f"  {who} fine-tuned every width at once on {_percent(fraction)}%"
            f" labels: {_short({w: rows[w][key] for w in widths})}")


def _paper_milestones(epochs):
    """The MoCo v2 script's steps at epochs 60 and 80 of 100, scaled."""
    return (int(round(0.6 * epochs)), int(round(0.8 * epochs)))


def _accuracies(result):
    if isinstance(result, dict):
        return result
    return result.accuracies


def _store(rows, values, key):
    for width, value in values.items():
        rows[float(width)][key] = round(float(value), 4)


def _short(values):
    return ", ".join(f"{width_name(w)} {v:.3f}" for w, v in values.items())


def _percent(fraction):
    value = fraction * 100
    return f"{value:g}"


def load_backbone(run):
    """The trained slimmable backbone of a run directory.

    Its classes are registered: importing any `keras_slim` module imports
    the package, which imports the backbones and layers.
    """
    if not os.path.isfile(run.backbone_path):
        raise FileNotFoundError(
            f"{run.backbone_path} is missing: the run has not finished "
            f"pretraining. Run `keras-slim pretrain` on it again to resume."
        )
    return keras.saving.load_model(run.backbone_path, compile=False)


def evaluate_run(run_dir, protocols=("knn", "linear"), overrides=(),
                 log=print):
    """Evaluate a finished run's backbone; merge into its results.json.

    Args:
        run_dir: a folder written by `pretrain`.
        protocols: any of "knn", "linear", "joint", "paper", "semi", "align".
        overrides: `key=value` strings changing the `evaluation` (or data)
            settings for this evaluation only, e.g. `evaluation.knn_k=20`.
    """
    unknown = sorted(set(protocols) - set(PROTOCOLS))
    if unknown:
        raise ValueError(f"unknown protocols {unknown}; choose from "
                         f"{', '.join(PROTOCOLS)}")
    run = RunDirectory(run_dir)
    raw = run.read_config()  # the YAML's dict, changed before validation
    for text in overrides:
        key_path, value = parse_override(text)
        if key_path[0] not in ("evaluation", "data"):
            raise ConfigError([(".".join(key_path), "evaluate only takes "
                                "evaluation.* and data.* overrides")])
        raw[key_path[0]][key_path[-1]] = value
    config = validate_config(raw, run.config_path)
    backbone = load_backbone(run)
    train, test = labelled_sets(config)
    core = [p for p in protocols if p != "align"]
    results = evaluate_backbone(config, backbone, train, test, log=log,
                                protocols=core)
    if "align" in protocols:
        _alignment(config, backbone, train, results, log)
    previous = run.read_json("results.json", default={}) or {}
    merged = merge_results(previous, results)
    write_results(run, config, merged, log=log)
    return merged


def _alignment(config, backbone, train, results, log):
    """Alignment and uniformity (Wang & Isola) on two augmented views."""
    size = crop_size(config)
    augmentation = data.TwoViewAugmentation.from_preset(
        config.augmentation.preset, image_size=size,
        **config.augmentation.options)
    count = min(len(train[0]), 1024)
    images = np.round(train[0][:count] * 255).astype("uint8")
    view1, view2 = augmentation(images, seed=[config.seed, 7])
    for row in results["widths"]:
        metrics = evaluation.alignment_uniformity(
            backbone, view1, view2, width=row["width"])
        row.update({k: round(float(v), 4) for k, v in metrics.items()})
    log("  alignment / uniformity: " + ", ".join(
        f"{width_name(r['width'])} {r['alignment']:.3f}/{r['uniformity']:.3f}"
        for r in results["widths"]))
