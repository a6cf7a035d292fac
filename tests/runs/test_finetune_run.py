"""`keras-slim finetune`: a tiny pretraining run fine-tuned at every width."""

import os
import shutil

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_slim.config import ConfigError
from keras_slim.config import load_config
from keras_slim.runs import RunDirectory
from keras_slim.runs import pretrain
from keras_slim.runs import finetune as finetune_module
from keras_slim.runs.finetune import finetune
from keras_slim.runs.inputs import crop_size
from keras_slim.runs.inputs import eval_arrays
from keras_slim.runs.inputs import load_split
from keras_slim.runs.run_checkpoint import read_checkpoint_state
from tests._stopped_fit import free_stopped_fit

PRETRAIN = [
    "data.image_size=8", "data.max_examples=256",
    "data.max_test_examples=128",
    "backbone.depth=10", "backbone.base_width=4",
    "backbone.widths=[1.0, 0.5]",
    "train.epochs=1", "train.batch_size=64", "train.verbose=0",
    "method.options={queue_size: 128}", "method.base=mocov2",
    "augmentation.preset=cifar",
]
FINETUNE = ["finetune.epochs=2", "finetune.batch_size=64",
            "finetune.learning_rate=0.05"]


def _quiet(*_):
    pass


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    folder = str(tmp_path_factory.mktemp("finetune") / "pretrained")
    pretrain(load_config(None, PRETRAIN + [f"output_dir={folder}"]),
             evaluate=False, log=_quiet)
    return folder


@pytest.fixture(scope="module")
def finetuned(pretrained):
    lines = []
    results = finetune(pretrained, FINETUNE, log=lines.append)
    return results, RunDirectory(os.path.join(pretrained, "finetune")), lines


def _test_set(run):
    config = run.read_config()
    images, labels = eval_arrays(load_split(config, "test_split"),
                                 crop_size(config))
    return images, labels


def test_the_run_directory_holds_both_fine_tunings(finetuned):
    results, run, lines = finetuned
    for name in ("config.yaml", "classifier.keras", "history.json",
                 "results.json", "accuracy_vs_flops.png",
                 "random_init/classifier.keras"):
        assert os.path.isfile(run.file(name)), name
    assert read_checkpoint_state(run.checkpoint_dir)["step"] == 2 * 4
    history = run.read_json("history.json")
    assert [h["epoch"] for h in history] == [1, 2]
    assert {"w1/top1", "w0.5/top1", "w0.5/loss"} <= set(history[-1])
    table = "\n".join(lines)
    assert "fine-tuned random" in table and "MFLOPs" in table
    assert results["train_examples"] == 256 and results["num_classes"] == 10


def test_results_are_the_saved_classifiers_top1_and_cost(finetuned):
    results, run, _ = finetuned
    images, labels = _test_set(run)
    assert results["test_examples"] == len(labels) == 128
    for key, path in (("finetune_top1", "classifier.keras"),
                      ("random_finetune_top1",
                       "random_init/classifier.keras")):
        classifier = keras.saving.load_model(run.file(path), compile=False)
        for row in results["widths"]:
            logits = classifier.predict(images, width=row["width"],
                                        verbose=0)
            top1 = float(np.mean(np.argmax(logits, -1) == labels))
            assert row[key] == round(top1, 4), (key, row)
            plain = classifier.subnetwork(row["width"])
            assert row["params"] == plain.count_params()
    full, half = results["widths"]
    assert full["flops"] > 3 * half["flops"]


def test_export_writes_per_width_classifiers_checked_against_keras(
        finetuned, tmp_path):
    from keras_slim.runs.export_run import export_run

    results, run, _ = finetuned
    manifest = export_run(run.path, output_dir=str(tmp_path / "export"),
                          precisions=["float32"], image_count=64,
                          saved_model=False, bundle=False, latency_runs=1,
                          log=_quiet)
    assert manifest["verified"] and manifest["outputs"] == ["features",
                                                            "logits"]
    assert [m["width"] for m in manifest["models"]] == [1.0, 0.5]
    for model in manifest["models"]:
        check = model["verification"]
        assert check["top1_agreement"] >= 0.99
        assert check["top1"] == pytest.approx(check["keras_top1"], abs=0.02)
        row = next(r for r in results["widths"]
                   if r["width"] == model["width"])
        accuracy = manifest["widths"][row["name"]]["accuracy"]
        assert accuracy["finetune_top1"] == row["finetune_top1"]


def test_a_killed_fine_tuning_resumes_to_the_same_weights(pretrained,
                                                           finetuned,
                                                           tmp_path,
                                                           monkeypatch):
    # The reference is the module's uninterrupted run: the fine-tuning from
    # pretraining does not depend on the random-init one run after it.
    options = FINETUNE + ["finetune.random_baseline=false"]
    whole = finetuned[1].path

    class Killed(Exception):
        pass

    class KillAtStepSix(keras.callbacks.Callback):
        """Stops before the checkpoint callback saves step 6 (mid-epoch)."""

        def on_train_batch_end(self, batch, logs=None):
            if int(self.model.step_counter) == 6:
                raise Killed()

    # The guard is the first callback: the killer takes its place.
    monkeypatch.setattr(finetune_module.NonFiniteGuard, "for_widths",
                        lambda widths: KillAtStepSix())
    cut = str(tmp_path / "cut")
    with pytest.raises(Killed):
        finetune(pretrained, options + ["train.checkpoint_every_steps=1"],
                 output_dir=cut, log=_quiet)
    free_stopped_fit()
    monkeypatch.undo()
    assert read_checkpoint_state(os.path.join(cut, "checkpoint"))["step"] == 5
    # The failed fit left no TensorBoard state behind: the process's next
    # summaries are recorded (Keras' own would stay filtered by step 6).
    with tf.summary.create_file_writer(str(tmp_path / "after")).as_default(
            step=1):
        assert bool(tf.summary.should_record_summaries())
    lines = []
    finetune(pretrained, options + ["train.checkpoint_every_steps=1"],
             output_dir=cut, log=lines.append)
    assert any(line.endswith("at step 5") for line in lines)
    a = keras.saving.load_model(os.path.join(whole, "classifier.keras"))
    b = keras.saving.load_model(os.path.join(cut, "classifier.keras"))
    for x, y in zip(a.get_weights(), b.get_weights()):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-6)


def test_a_rerun_skips_what_is_finished_and_refuses_other_settings(
        finetuned, tmp_path):
    results, run, _ = finetuned
    copy = str(tmp_path / "copy")
    shutil.copytree(run.path, copy)
    source = results["source"]
    lines = []
    again = finetune(source, FINETUNE, output_dir=copy, log=lines.append)
    assert sum("already fine-tuned" in line for line in lines) == 2
    assert again["widths"] == results["widths"]
    with pytest.raises(ValueError, match="finetune.learning_rate: 0.05 -> "
                                         "0.1"):
        finetune(source, FINETUNE[:2], output_dir=copy, log=_quiet)


def test_a_label_fraction_fine_tunes_on_a_balanced_subset(pretrained):
    from keras_slim.runs.finetune_config import finetune_config

    config = finetune_config(pretrained, ["finetune.label_fraction=0.5"])
    assert config["output_dir"] == os.path.join(pretrained, "finetune_50pct")
    train, _, classes = finetune_module._labelled_data(config, _quiet)
    counts = np.bincount(train.labels, minlength=10)
    full = np.bincount(load_split(config, "train_split").labels,
                       minlength=10)
    # As many of each class: half of 256 / 10, rounded
    # (`evaluation.labeled_subset`).
    assert classes == 10 and full.min() >= 13
    assert counts.tolist() == [13] * 10 and train.num_examples == 130


def test_bad_sources_and_overrides_get_clear_errors(pretrained, finetuned,
                                                    tmp_path):
    from keras_slim.runs.finetune_config import finetune_config

    with pytest.raises(FileNotFoundError, match="not a keras-slim run"):
        finetune_config(str(tmp_path))
    unfinished = str(tmp_path / "unfinished")
    os.makedirs(unfinished)
    shutil.copy(os.path.join(pretrained, "config.yaml"), unfinished)
    with pytest.raises(FileNotFoundError, match="has no backbone.keras"):
        finetune_config(unfinished)
    with pytest.raises(ValueError, match="is a fine-tuning run"):
        finetune_config(finetuned[1].path)
    with pytest.raises(ConfigError) as error:
        finetune_config(pretrained, ["backbone.base_width=8",
                                     "finetune.epoch=3",
                                     "finetune.label_fraction=2"])
    text = str(error.value)
    assert "backbone.base_width: is the pretraining run's" in text
    assert "did you mean 'epochs'" in text
    assert "finetune.label_fraction: must be in (0, 1]" in text


def test_the_cli_prints_the_config_and_names_a_bad_run(pretrained, tmp_path,
                                                       capsys):
    from keras_slim.cli import main

    assert main(["finetune", pretrained, "--print-config",
                 "finetune.epochs=7", "--output", str(tmp_path / "x")]) == 0
    printed = capsys.readouterr().out
    assert "epochs: 7" in printed and f"source: {pretrained}" in printed
    assert f"output_dir: {tmp_path / 'x'}" in printed
    assert main(["finetune", str(tmp_path / "missing")]) == 2
    assert "not a keras-slim run directory" in capsys.readouterr().err


def test_semi_supervised_fine_tunes_every_width_at_once_beside_alone(
        pretrained, tmp_path):
    from keras_slim.runs import evaluate_run

    copy = str(tmp_path / "copy")
    shutil.copytree(pretrained, copy)
    before = keras.saving.load_model(os.path.join(copy, "backbone.keras"))
    lines = []
    merged = evaluate_run(copy, protocols=["semi", "semi_slim"], overrides=[
        "evaluation.semi_supervised=[0.5]", "evaluation.semi_supervised_epochs=2",
        "evaluation.random_baseline=false"], log=lines.append)
    for row in merged["widths"]:
        for key in ("semi50_top1", "semi50_slim_top1"):
            assert 0.0 <= row[key] <= 1.0
    assert "semi 50% slim" in "\n".join(lines)
    assert any("every width at once on 50% labels" in line for line in lines)
    after = keras.saving.load_model(os.path.join(copy, "backbone.keras"))
    for x, y in zip(before.get_weights(), after.get_weights()):
        np.testing.assert_array_equal(x, y)  # fine-tuned copies only


def test_a_converted_us3l_range_fine_tunes_and_calibrates(tmp_path):
    """A `keras-slim convert` output (official US3L checkpoint, a width
    range) is a source too: the sandwich ends, then calibrated widths.

    No drawn widths: their `switch_case` traces ResNet-18 once per grid width
    (26 s here); tests/tasks/test_slim_classifier.py trains drawn widths."""
    import json

    from keras_slim import cli
    from tests.convert._fixtures import fixture
    from tests.convert.test_convert_run import _image_tree

    data = _image_tree(tmp_path / "images", classes=3, per_class=4, size=32)
    out = str(tmp_path / "us3l")
    assert cli.main(["convert",
                     fixture("us3l_simclr_cifar_resnet18_tiny.pth.tar"), out,
                     f"data.source={data}", "data.test_split=test",
                     "data.image_size=32", "augmentation.crop_size=32",
                     "--image-size", "32"]) == 0
    assert cli.main(["finetune", out, "finetune.epochs=1",
                     "finetune.batch_size=4", "finetune.num_random_widths=0",
                     "finetune.random_baseline=false",
                     "evaluation.calibration_batches=2"]) == 0
    with open(os.path.join(out, "finetune", "results.json")) as f:
        results = json.load(f)
    assert results["num_classes"] == 3 and results["train_examples"] == 12
    rows = results["widths"]
    # Every stored width of the range is calibrated and evaluated.
    assert len(rows) == 8 and rows[0]["width"] == 1.0
    assert all(0.0 <= row["finetune_top1"] <= 1.0 for row in rows)
    assert all("random_finetune_top1" not in row for row in rows)
