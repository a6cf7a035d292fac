"""`keras-slim convert` writes a run directory that export and evaluate take."""

import json
import os

import numpy as np
import pytest

from keras_slim import cli
from keras_slim import convert
from keras_slim.export import run_litert
from tests.convert._fixtures import fixture
from tests.convert._fixtures import reference
from tests.convert._fixtures import relative_difference
from tests.convert._fixtures import width_key
from tests.data._trees import image_bytes
from tests.data._trees import write_files

LINCLS = "slimclr_lincls_tiny.pth.tar"


def _image_tree(root, classes=10, per_class=2, size=64):
    rng = np.random.default_rng(7)
    files = {}
    for split in ("train", "test"):
        for c in range(classes):
            for i in range(per_class):
                image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
                files[f"{split}/class{c}/{i}.png"] = image_bytes(image)
    return write_files(root, files)


def _data_overrides(root):
    return [f"data.source={root}", "data.stream=false", "data.image_size=64",
            "data.test_split=test", "augmentation.crop_size=64",
            "evaluation.max_train_examples=null",
            "data.max_test_examples=null"]


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    base = tmp_path_factory.mktemp("convert")
    data = _image_tree(base / "images")
    out = str(base / "run")
    assert cli.main(["convert", fixture("slimclr_mocov2_tiny.pth.tar"), out,
                     "--lincls", fixture(LINCLS), "--image-size", "64",
                     *_data_overrides(data)]) == 0
    return out, data


def test_the_run_directory_holds_backbone_classifiers_and_results(converted):
    out, _ = converted
    results = json.load(open(os.path.join(out, "results.json")))
    assert [row["width"] for row in results["widths"]] == [1.0, 0.75, 0.5,
                                                          0.25]
    assert [row["feature_dim"] for row in results["widths"]] == [128, 96, 64,
                                                                32]
    params = [row["params"] for row in results["widths"]]
    assert params == sorted(params, reverse=True) and params[-1] > 0
    assert results["converted_from"]["layout"] == "mocov2"
    assert results["converted_from"]["sha256"] == convert.presets.file_sha256(
        fixture("slimclr_mocov2_tiny.pth.tar"))
    assert sorted(os.listdir(os.path.join(out, "classifiers"))) == [
        "w0.25.keras", "w0.5.keras", "w0.75.keras", "w1.keras"]
    heads = convert.load_classifiers(os.path.join(out, "classifiers"))
    backbone, _ = convert.load_slimclr_lincls(fixture(LINCLS))
    ref = reference(LINCLS)
    import keras

    loaded = keras.saving.load_model(os.path.join(out, "backbone.keras"))
    for index, width in enumerate(backbone.widths.values):
        logits = heads[width](loaded(ref["images"], width=width))
        assert relative_difference(
            logits, ref[f"logits_{width_key(ref['widths'], index)}"]) < 1e-4


def test_export_writes_verified_per_width_classifier_files(converted, capsys):
    out, _ = converted
    assert cli.main(["export", out, "--head", "--precisions", "float32",
                     "--no-saved-model", "--no-bundle", "--latency-runs", "1",
                     "--images", "20", "--representative", "4"]) == 0
    manifest = json.load(open(os.path.join(out, "export", "manifest.json")))
    files = {m["width"]: m for m in manifest["models"]}
    assert sorted(files) == [0.25, 0.5, 0.75, 1.0]
    ref = reference(LINCLS)
    heads = convert.load_classifiers(os.path.join(out, "classifiers"))
    backbone, _ = convert.load_slimclr_lincls(fixture(LINCLS))
    for index, width in enumerate(backbone.widths.values):
        model = files[width]
        assert model["verification"]["passed"]
        assert model["verification"]["top1_agreement"] == 1.0
        outputs = run_litert(os.path.join(out, "export", model["file"]),
                             ref["images"])
        expected = ref[f"logits_{width_key(ref['widths'], index)}"]
        assert relative_difference(outputs["logits"], expected) < 1e-4
    assert heads  # the export used the converted probes, not new ones
    assert "using the run's classifiers" in capsys.readouterr().out


def test_evaluate_runs_on_the_converted_directory(converted):
    out, _ = converted
    # Two of the four widths: each evaluated width traces the backbone
    # for the kNN and for the paper probe's steps, which is what costs here.
    assert cli.main(["evaluate", out, "--protocols", "knn,paper",
                     "evaluation.random_baseline=false",
                     "evaluation.linear_epochs=2",
                     "evaluation.eval_widths=[1.0, 0.25]"]) == 0
    results = json.load(open(os.path.join(out, "results.json")))
    assert [row["width"] for row in results["widths"]] == [1.0, 0.25]
    assert all(0.0 <= row["knn_top1"] <= 1.0 for row in results["widths"])
    assert all(0.0 <= row["paper_linear_top1"] <= 1.0
               for row in results["widths"])


def test_convert_refuses_overwrite_a_backbone_override_and_a_bad_pair(
        converted, tmp_path, capsys):
    out, data = converted
    source = fixture("slimclr_mocov2_tiny.pth.tar")
    assert cli.main(["convert", source, out]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli.main(["convert", source, str(tmp_path / "b"),
                     "backbone.depth=18"]) == 2
    assert "comes from the checkpoint" in capsys.readouterr().err
    assert cli.main(["convert", fixture("other_architecture.pth.tar"),
                     str(tmp_path / "c")]) == 2
    assert "not an official SlimCLR" in capsys.readouterr().err
    assert cli.main(["convert", str(tmp_path / "missing.pth"),
                     str(tmp_path / "d")]) == 2
    assert "neither a checkpoint file nor a preset" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "b" / "backbone.keras")


def test_a_us3l_checkpoint_converts_and_exports_calibrated_widths(tmp_path):
    data = _image_tree(tmp_path / "images", classes=3, per_class=4, size=32)
    out = str(tmp_path / "us3l")
    assert cli.main(["convert", fixture("us3l_simclr_cifar_resnet18_tiny.pth.tar"),
                     out, f"data.source={data}", "data.test_split=test",
                     "data.image_size=32", "augmentation.crop_size=32",
                     "train.batch_size=8", "--image-size", "32"]) == 0
    results = json.load(open(os.path.join(out, "results.json")))
    assert results["method"] == "us3l"
    assert results["converted_from"]["layout"] == "us3l"
    assert len(results["widths"]) == 8  # the range's stored widths
    assert cli.main(["export", out, "--widths", "1.0,0.5", "--precisions",
                     "float32", "--no-saved-model", "--no-bundle",
                     "--latency-runs", "1", "--images", "12",
                     "--representative", "4"]) == 0
    manifest = json.load(open(os.path.join(out, "export", "manifest.json")))
    assert manifest["verified"] is True
    assert sorted(m["width"] for m in manifest["models"]) == [0.5, 1.0]
    # --lincls takes SlimCLR linear-evaluation files only.
    assert cli.main(["convert", fixture("us3l_simclr_cifar_resnet18_tiny.pth.tar"),
                     str(tmp_path / "again"), "--lincls",
                     fixture(LINCLS)]) == 2
