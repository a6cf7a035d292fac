"""`pretrain`: a tiny end-to-end run on the bundled digits, its run directory."""

import json
import os
import shutil

import numpy as np
import pytest

from keras_slim.config import load_config
from keras_slim.runs import RunDirectory
from keras_slim.runs import evaluate_run
from keras_slim.runs import pretrain
from keras_slim.runs.run_checkpoint import read_checkpoint_state

TINY = [
    "data.image_size=8", "data.max_examples=256",
    "backbone.depth=10", "backbone.base_width=4",
    "backbone.widths=[1.0, 0.5]",
    "train.epochs=2", "train.batch_size=64", "train.verbose=0",
    "evaluation.knn_every_epochs=1", "evaluation.knn_k=10",
    "evaluation.linear_epochs=3", "method.options={queue_size: 128}",
    "method.base=mocov2", "augmentation.preset=cifar",
]
# 10 classes: the tiny run is above chance (0.1) at every width; its 3-epoch
# probes at width 0.5 measured 0.15-0.31 over seeds 0-2 (2026-12-01).
ABOVE_CHANCE = 0.12


def tiny_config(tmp_path, *extra):
    return load_config(None, TINY + [f"output_dir={tmp_path / 'run'}",
                                     *extra])


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    tmp_path = tmp_path_factory.mktemp("pretrain")
    config = tiny_config(tmp_path)
    lines = []
    results = pretrain(config, log=lines.append)
    return config, results, RunDirectory(config["output_dir"]), lines


def test_run_directory_holds_every_output(finished_run):
    config, results, run, lines = finished_run
    for name in ("config.yaml", "backbone.keras", "results.json",
                 "history.json", "accuracy_vs_flops.png"):
        assert os.path.isfile(run.file(name)), name
    assert os.listdir(run.logs_dir)
    assert run.read_config() == config
    state = read_checkpoint_state(run.checkpoint_dir)
    assert state["step"] == 2 * (256 // 64)
    with open(run.results_path) as f:
        saved = json.load(f)
    assert saved == json.loads(json.dumps(results))
    assert "kNN random" in "\n".join(lines)


def test_results_have_every_width_with_cost_and_accuracy(finished_run):
    _, results, _, _ = finished_run
    rows = results["widths"]
    assert [r["width"] for r in rows] == [1.0, 0.5]
    assert rows[0]["flops"] > 3 * rows[1]["flops"]
    assert rows[0]["params"] > 3 * rows[1]["params"]
    for row in rows:
        for key in ("knn_top1", "linear_top1", "random_knn_top1",
                    "random_linear_top1"):
            assert ABOVE_CHANCE < row[key] <= 1.0, (key, row)


def test_history_has_per_width_knn_each_epoch(finished_run):
    _, _, run, _ = finished_run
    history = run.read_json("history.json")
    assert [h["epoch"] for h in history] == [1, 2]
    for entry in history:
        assert 0 < entry["w0.5/knn_top1"] <= 1
        assert np.isfinite(entry["w1/loss"])


def test_evaluate_merges_new_protocols(finished_run):
    _, _, run, _ = finished_run
    merged = evaluate_run(run.path, protocols=["joint", "align"],
                          overrides=["evaluation.random_baseline=false"],
                          log=lambda *_: None)
    for row in merged["widths"]:
        assert ABOVE_CHANCE < row["joint_top1"] <= 1
        assert row["alignment"] >= 0 and row["uniformity"] < 0
        assert "knn_top1" in row  # kept from the pretraining run


def test_the_three_steps_resume_a_finished_run(finished_run, tmp_path):
    from keras_slim.runs import Run
    from keras_slim.runs import evaluate
    from keras_slim.runs import prepare
    from keras_slim.runs import train

    config, results, run, _ = finished_run
    copy = str(tmp_path / "copy")
    shutil.copytree(run.path, copy)
    lines = []
    prepared = prepare(config, run_dir=copy, log=lines.append)
    assert isinstance(prepared, Run)
    assert (prepared.start_step, prepared.steps_per_epoch) == (8, 4)
    assert f"resuming {copy} at step 8" in lines
    # Nothing left to train: the history is the checkpoint's.
    history = train(prepared)
    assert [h["epoch"] for h in history] == [1, 2]
    assert int(prepared.model.ssl_step) == 8
    again = evaluate(prepared, protocols=("knn",))
    for row, before in zip(again["widths"], results["widths"]):
        assert row["knn_top1"] == before["knn_top1"]
        assert "linear_top1" not in row
    assert again["resumed_at_step"] == 8
    assert RunDirectory(copy).read_json("results.json") == json.loads(
        json.dumps(again))


def test_the_guard_names_widths_by_their_log_prefix():
    from keras_slim.runs import NonFiniteGuard

    guard = NonFiniteGuard([1.0, 0.5])
    assert guard.where("w0.5/grad_norm") == "at width 0.5"
    assert guard.where("w1/loss") == "at width 1"
    assert guard.where("loss") == "in total"
    # Not a width of the model: named as the slot it is, not parsed.
    assert guard.where("w0.25/loss") == "in slot w0.25"
    assert guard.where("wmin/loss") == "in slot wmin"


def test_more_epochs_resume_the_same_run(finished_run, tmp_path):
    config, _, run, _ = finished_run
    more = dict(config, train=dict(config["train"], epochs=3))
    lines = []
    pretrain(more, evaluate=False, log=lines.append)
    assert any("resuming" in line and "step 8" in line for line in lines)
    assert read_checkpoint_state(run.checkpoint_dir)["step"] == 12
    assert [h["epoch"] for h in run.read_json("history.json")] == [1, 2, 3]


def test_resume_with_other_widths_is_refused(finished_run):
    config, _, _, _ = finished_run
    other = dict(config, backbone=dict(config["backbone"], widths=[1.0, 0.25]))
    with pytest.raises(ValueError, match=r"backbone: .*0\.25"):
        pretrain(other, log=lambda *_: None)


def test_evaluate_refuses_a_folder_that_is_not_a_run(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a keras-slim run"):
        evaluate_run(str(tmp_path))
    with pytest.raises(ValueError, match="unknown protocols"):
        evaluate_run(str(tmp_path), protocols=["knn", "svm"])


def test_baseline_check_names_every_losing_width_and_protocol():
    from keras_slim.runs import BaselineNotBeaten
    from keras_slim.runs import check_beats_baseline

    rows = [
        {"width": 1.0, "knn_top1": 0.9, "random_knn_top1": 0.8,
         "linear_top1": 0.9, "random_linear_top1": 0.85},
        {"width": 0.5, "knn_top1": 0.7, "random_knn_top1": 0.75,
         "linear_top1": 0.8, "random_linear_top1": 0.8},
    ]
    with pytest.raises(BaselineNotBeaten) as info:
        check_beats_baseline({"widths": rows})
    message = str(info.value)
    assert "width 0.5 knn: 0.700 <= random init 0.750" in message
    assert "width 0.5 linear" in message and "width 1 " not in message
    check_beats_baseline({"widths": rows[:1]})


def test_export_cli_writes_verified_files_with_the_runs_accuracy(
        finished_run, capsys, monkeypatch):
    from keras_slim import cli
    from keras_slim.runs import export_run

    _, results, run, _ = finished_run
    code = cli.main(["export", run.path, "--precisions", "float32",
                     "--head", "--images", "64", "--latency-runs", "2",
                     "--no-saved-model", "--no-bundle"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert "w0.5_float32.tflite" in out and "max diff" in out
    with open(run.file("export", "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["verified"] and manifest["outputs"] == ["features",
                                                            "logits"]
    for row in results["widths"]:
        name = f"w{row['width']:g}"
        accuracy = manifest["widths"][name]["accuracy"]
        assert accuracy["knn_top1"] == row["knn_top1"]
        assert 0 <= accuracy["head_linear_top1"] <= 1
        model = next(m for m in manifest["models"] if m["file"] ==
                     f"{name}_float32.tflite")
        check = model["verification"]
        assert check["images"] == 64 and check["top1_agreement"] == 1.0
    # Again: an export folder is only replaced when asked to, and refused
    # before the run's backbone and data load.
    def no_loading(*_):
        raise AssertionError("loaded the run before refusing its output")

    with monkeypatch.context() as patched:
        patched.setattr(export_run, "load_backbone", no_loading)
        assert cli.main(["export", run.path, "--precisions", "float32"]) == 2
        assert "--overwrite" in capsys.readouterr().err
        # A width the run does not have: refused from its config alone.
        assert cli.main(["export", run.path, "--widths", "0.3",
                         "--overwrite"]) == 2
    assert ("cannot export width 0.3: Width 0.3 is not one of this "
            "network's widths [1.0, 0.5]") in capsys.readouterr().err


def test_the_export_worker_s_errors_come_back_as_its_caller_s(
        finished_run, monkeypatch, tmp_path):
    # The JSON protocol between a JAX run's export and its TensorFlow
    # worker, both sides in this process (the worker's process start is
    # tested by the JAX run's export, tests/jax/test_pretrain_run.py).
    from keras_slim.runs import _export_worker
    from keras_slim.runs import _tensorflow_export

    def worker_here(arguments_path, result_path, errors, log):
        return _export_worker.main(arguments_path, result_path)

    monkeypatch.setattr(_tensorflow_export, "_run", worker_here)
    arguments = dict(run_dir=finished_run[2].path,
                     output_dir=str(tmp_path / "export"), widths=[0.3])
    with pytest.raises(ValueError, match="cannot export width 0.3"):
        _tensorflow_export.export_in_tensorflow(arguments, log=None)
    monkeypatch.setattr(_tensorflow_export, "_run", lambda *_: -9)
    with pytest.raises(RuntimeError, match="exited with code -9 before"):
        _tensorflow_export.export_in_tensorflow(arguments, log=None)


def test_data_stream_leaves_the_training_images_on_disk(tmp_path):
    from keras_slim import data
    from keras_slim.config import ConfigError
    from keras_slim.runs import training_split
    from tests.data import _trees

    root = _trees.write_files(tmp_path / "tree", _trees.class_tree(
        "train/", per_class=16, size=(10, 10)))
    config = tiny_config(tmp_path, f"data.source={root}", "data.stream=true")
    files = training_split(config)
    assert isinstance(files, data.ImageFiles)
    assert (files.num_examples, files.image_shape) == (32, (8, 8, 3))
    _trees.write_files(tmp_path / "tree", {"train/cat/x.jpg": b"oops"})
    with pytest.raises(ValueError, match=r"1 corrupt .*train/cat/x\.jpg"):
        training_split(config)
    with pytest.raises(ConfigError, match="data.stream needs the size"):
        load_config(None, [f"data.source={root}", "data.stream=true",
                           "augmentation.crop_size=8"])
