"""`keras_slim.export`: every precision, the signature bundle, bad requests.

A random-init SlimResNet on the bundled digits (8x8 grey): the checks
compare each `.tflite` with the Keras model at its width, which holds for
trained and untrained weights alike. The shared export converts in worker
processes (the default); the other exports convert in this process
(`isolate=False`), which saves a TensorFlow start-up per test.
"""

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_slim import data
from keras_slim import export
from keras_slim.backbones import SlimResNet
from keras_slim.evaluation import calibrate_batch_norm
from keras_slim.evaluation import with_stat_widths
from keras_slim.export import _graphs
from keras_slim.width import Widths

SHAPE = (8, 8, 1)


@pytest.fixture(scope="module")
def digits():
    train = data.load("digits", "train")
    test = data.load("digits", "test")
    return (train.images.astype("float32") / 255.0, train.labels,
            test.images.astype("float32") / 255.0, test.labels)


def _backbone(widths=(1.0, 0.5), depth=10):
    """ResNet-10: what an export does to a ResNet is the same at any depth."""
    keras.utils.set_random_seed(1)
    return SlimResNet(depth=depth, base_width=4, widths=list(widths),
                      input_shape=SHAPE)


@pytest.fixture(scope="module")
def exported(tmp_path_factory, digits):
    x_train, _, x_test, _ = digits
    backbone = _backbone()
    folder = str(tmp_path_factory.mktemp("export") / "out")
    lines, traced = [], []
    serving_function = _graphs.serving_function

    def traced_once_per_call(model, image_shape):
        traced.append(model.name)
        return serving_function(model, image_shape)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_graphs, "serving_function", traced_once_per_call)
        patch.setattr(keras.Model, "predict", None)  # no trace of its own
        manifest = export.export_backbone(
            backbone, folder, images=x_test[:64],
            precisions=["float32", "float16", "dynamic_int8", "int8"],
            representative_images=x_train[:64], latency_threads=(1,),
            latency_runs=3, log=lines.append)
    return backbone, folder, manifest, lines, traced


def test_each_width_is_traced_once_for_all_its_files(exported):
    # Its SavedModel, its four precisions, its bundle signature and its
    # reference outputs all come from one trace of the width's network.
    traced = exported[4]
    assert len(traced) == len(set(traced)) == 2


def _model(manifest, width, precision):
    return next(m for m in manifest["models"]
                if m["width"] == width and m["precision"] == precision)


def test_every_width_and_precision_is_written_and_verified(exported):
    _, folder, manifest, lines, _ = exported
    assert manifest["verified"] is True
    assert [(m["width"], m["precision"]) for m in manifest["models"]] == [
        (w, p) for w in (1.0, 0.5)
        for p in ("float32", "float16", "dynamic_int8", "int8")]
    for model in manifest["models"]:
        path = os.path.join(folder, model["file"])
        assert os.path.getsize(path) == model["bytes"]
        check = model["verification"]
        assert check["passed"] and check["images"] == 64
        assert model["latency_ms"]["1"] > 0
        # Builtins only, weights folded in: no Flex, no resource variables.
        assert model["ops"] and not any(
            op.startswith("Flex") or op in ("VAR_HANDLE", "READ_VARIABLE",
                                            "CUSTOM") for op in model["ops"])
    assert _model(manifest, 1.0, "float32")["verification"][
        "max_abs_diff"] <= 1e-4 * max(
            1.0, _model(manifest, 1.0, "float32")["verification"][
                "feature_scale"])
    assert _model(manifest, 1.0, "float16")["verification"]["cosine"] >= 0.999
    assert _model(manifest, 1.0, "int8")["verification"]["cosine"] >= 0.98
    assert not [n for n in os.listdir(folder) if "partial" in n]
    assert any("verified" in line for line in lines)


def test_smaller_precisions_and_widths_give_smaller_files(exported):
    _, _, manifest, _, _ = exported
    size = {(m["width"], m["precision"]): m["bytes"]
            for m in manifest["models"]}
    assert size[1.0, "int8"] < 0.4 * size[1.0, "float32"]
    assert size[1.0, "float16"] < 0.65 * size[1.0, "float32"]
    assert size[0.5, "float32"] < 0.5 * size[1.0, "float32"]


def test_manifest_records_cost_and_matches_the_keras_model(exported,
                                                           digits):
    backbone, folder, manifest, _, _ = exported
    with open(os.path.join(folder, "manifest.json")) as f:
        assert json.load(f) == json.loads(json.dumps(manifest))
    for width in (1.0, 0.5):
        row = manifest["widths"][f"w{width:g}"]
        plain = backbone.subnetwork(width, input_shape=SHAPE)
        assert row["params"] == plain.count_params()
        assert row["feature_dim"] == backbone.feature_dim(width)
    images = digits[2][:16]
    want = np.asarray(backbone(images, width=0.5, training=False))
    got = export.run_litert(os.path.join(folder, "w0.5_float32.tflite"),
                            images)["features"]
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-5)
    assert os.path.isfile(os.path.join(folder, "latency_vs_width.png"))


def test_int8_file_is_integer_inside_with_float_io(exported):
    _, folder, _, _, _ = exported
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(os.path.join(folder, "w1_int8.tflite"))
    assert interpreter.get_input_details()[0]["dtype"] == np.float32
    kinds = {np.dtype(t["dtype"]).name
             for t in interpreter.get_tensor_details()}
    assert "int8" in kinds


def test_bundle_holds_every_width_as_a_signature(exported, digits):
    _, folder, manifest, _, _ = exported
    bundles = {b["precision"]: b for b in manifest["bundles"]}
    assert sorted(bundles) == ["dynamic_int8", "float16", "float32", "int8"]
    bundle = bundles["float32"]
    assert bundle["signatures"] == {"w1": 1.0, "w0.5": 0.5}
    path = os.path.join(folder, bundle["file"])
    images = digits[2][:8]
    for key, width in bundle["signatures"].items():
        assert bundle["verification"][key]["passed"]
        alone = export.run_litert(
            os.path.join(folder, f"{key}_float32.tflite"), images)
        together = export.run_litert(path, images, signature=key)
        np.testing.assert_allclose(together["features"], alone["features"],
                                   atol=1e-5)
    # One file for all widths: about the sum of the single-width files.
    singles = sum(m["bytes"] for m in manifest["models"]
                  if m["precision"] == "float32")
    assert 0.9 * singles < bundle["bytes"] < 1.1 * singles


def test_saved_model_per_width_serves_the_same_features(exported, digits):
    backbone, folder, manifest, _, _ = exported
    assert manifest["saved_models"] == {"w1": "saved_model/w1",
                                        "w0.5": "saved_model/w0.5"}
    loaded = tf.saved_model.load(os.path.join(folder, "saved_model", "w0.5"))
    images = digits[2][:8]
    served = loaded.signatures["serving_default"](images=tf.constant(images))
    want = np.asarray(backbone(images, width=0.5, training=False))
    np.testing.assert_allclose(served["features"].numpy(), want, atol=1e-5)


def test_head_exports_logits_and_the_files_accuracy(tmp_path, digits):
    x_train, y_train, x_test, y_test = digits
    backbone = _backbone(widths=(1.0,))
    features = np.asarray(backbone(x_train, width=1.0, training=False))
    # A least-squares head: a real classifier of the digits.
    mean, std = features.mean(0), features.std(0) + 1e-3
    targets = np.eye(10)[y_train]
    design = np.c_[(features - mean) / std, np.ones(len(features))]
    solution = np.linalg.lstsq(design, targets, rcond=None)[0]
    head = keras.layers.Dense(10)
    head.build((None, features.shape[1]))
    head.set_weights([solution[:-1] / std[:, None],
                      solution[-1] - (mean / std) @ solution[:-1]])
    manifest = export.export_backbone(
        backbone, str(tmp_path / "out"), images=x_test[:128],
        labels=y_test[:128], precisions=["float32", "float16"],
        classifiers={1.0: head}, latency_threads=(), saved_model=False,
        isolate=False, log=None)
    assert manifest["outputs"] == ["features", "logits"]
    for precision in ("float32", "float16"):
        check = _model(manifest, 1.0, precision)["verification"]
        assert check["top1_agreement"] == 1.0
        assert check["top1"] == check["keras_top1"] > 0.5
    assert _model(manifest, 1.0, "float32")["latency_ms"] == {}
    bundle = manifest["bundles"][0]["verification"]["w1"]
    assert bundle["top1"] == bundle["keras_top1"]


def test_int8_io_gives_integer_inputs_and_outputs(tmp_path, digits):
    manifest = export.export_backbone(
        _backbone(widths=(1.0,)), str(tmp_path / "out"),
        images=digits[2][:64], precisions=["int8"], int8_io=True,
        representative_images=digits[0][:64], latency_threads=(1,),
        latency_runs=2, bundle=False, saved_model=False, isolate=False,
        log=None)
    model = _model(manifest, 1.0, "int8")
    assert model["verification"]["cosine"] >= 0.98
    assert manifest["input"]["int8_io"] is True
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(str(tmp_path / "out" / model["file"]))
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert interpreter.get_output_details()[0]["dtype"] == np.int8


def test_a_range_width_needs_calibration_then_exports(tmp_path, digits):
    widths = Widths(min_width=0.5, max_width=1.0, stat_widths=[1.0, 0.75,
                                                               0.5])
    backbone = SlimResNet(depth=10, base_width=4, widths=widths,
                          input_shape=SHAPE)
    with pytest.raises(ValueError, match="calibrate_batch_norm"):
        export.export_backbone(backbone, str(tmp_path / "a"),
                               images=digits[2][:8], widths=[0.75])
    with pytest.raises(ValueError, match=r"widths this backbone can export "
                       r"are \[1.0, 0.75, 0.5\]\. Any width of the range "
                       r"can be given statistics"):
        export.export_backbone(backbone, str(tmp_path / "a"),
                               images=digits[2][:8], widths=[0.6])
    calibrate_batch_norm(backbone, digits[0], widths=[0.75], num_batches=2)
    # 0.6 is inside the range: it gets statistics slots, then calibration.
    wider = with_stat_widths(backbone, [0.6])
    assert wider.widths.stat_widths == (1.0, 0.75, 0.6, 0.5)
    calibrate_batch_norm(wider, digits[0], widths=[0.6], num_batches=2)
    images = digits[2][:32]
    np.testing.assert_array_equal(  # every weight and statistic copied
        np.asarray(wider(images, width=0.75, training=False)),
        np.asarray(backbone(images, width=0.75, training=False)))
    manifest = export.export_backbone(
        wider, str(tmp_path / "b"), images=images, widths=[0.75, 0.6],
        latency_threads=(), bundle=False, saved_model=False, isolate=False,
        log=None)
    assert manifest["verified"]
    assert [m["file"] for m in manifest["models"]] == [
        "w0.75_float32.tflite", "w0.6_float32.tflite"]
    assert manifest["widths"]["w0.6"]["params"] == wider.subnetwork(
        0.6).count_params()


@pytest.mark.parametrize("kwargs, message", [
    (dict(widths=[0.3]), "cannot export width 0.3"),
    (dict(precisions=["int4"]), "Unknown precision 'int4'"),
    (dict(precisions=["int8"]), "needs `representative_images`"),
    (dict(images=np.zeros((4, 8, 8, 3), "float32")),
     "have 3 channels, the backbone takes 1"),
    (dict(precisions=["int8"],
          representative_images=np.zeros((4, 16, 16, 1), "float32")),
     r"`representative_images` have shape \(16, 16, 1\) per image"),
    (dict(int8_io=True), "`int8_io` needs the precision 'int8'"),
    (dict(classifiers={1.0: keras.layers.Dense(3)}),
     r"no head for widths \[0.5\]"),
    (dict(isolate="yes"), "isolate must be True, False or 'auto'"),
])
def test_bad_requests_fail_before_writing_anything(tmp_path, kwargs,
                                                   message):
    arguments = dict(images=np.zeros((4,) + SHAPE, "float32"))
    arguments.update(kwargs)
    with pytest.raises(ValueError, match=message):
        export.export_backbone(_backbone(), str(tmp_path / "out"),
                               **arguments)
    assert not os.path.exists(tmp_path / "out")


def test_output_folder_is_never_clobbered(tmp_path, exported):
    stranger = tmp_path / "photos"
    stranger.mkdir()
    (stranger / "holiday.jpg").write_bytes(b"x")
    images = np.zeros((4,) + SHAPE, "float32")
    with pytest.raises(ValueError, match="holds no earlier export"):
        export.export_backbone(_backbone(), str(stranger), images=images)
    assert os.listdir(stranger) == ["holiday.jpg"]
    _, folder, _, _, _ = exported
    with pytest.raises(ValueError, match="--overwrite"):
        export.export_backbone(_backbone(), folder, images=images)
    assert os.path.isfile(os.path.join(folder, "w1_int8.tflite"))


def test_failed_verification_fails_the_export_with_a_report(
        tmp_path, digits, monkeypatch):
    monkeypatch.setitem(export.THRESHOLDS, "float16", {"cosine": 1.5})
    with pytest.raises(export.ExportError) as caught:
        export.export_backbone(
            _backbone(widths=(1.0,)), str(tmp_path / "out"),
            images=digits[2][:16], precisions=["float32", "float16"],
            latency_threads=(), bundle=False, saved_model=False,
            isolate=False, log=None)
    assert caught.value.failures == [
        f"w1_float16.tflite: cosine {_cosine_of(tmp_path)} (needs >= 1.5)"]
    with open(tmp_path / "out" / "manifest.json") as f:
        manifest = json.load(f)
    assert manifest["verified"] is False
    assert [m["verification"]["passed"] for m in manifest["models"]] == [
        True, False]


def _cosine_of(tmp_path):
    with open(tmp_path / "out" / "manifest.json") as f:
        model = json.load(f)["models"][1]
    return f"{model['verification']['cosine']:.6g}"


def _flex_saved_model(folder):
    spec = tf.TensorSpec([None, 4, 4], tf.float32, name="images")
    module = tf.Module()
    module.serve = tf.function(lambda images: {
        "features": tf.linalg.inv(images)}, input_signature=[spec])
    tf.saved_model.save(module, folder, signatures={
        "serving_default": module.serve.get_concrete_function()})
    return folder


def test_an_op_without_a_tflite_builtin_is_refused_by_name(tmp_path):
    folder = _flex_saved_model(str(tmp_path / "flex"))
    with pytest.raises(export.ConversionError,
                       match=r"not TFLite builtins \(MatrixInverse\)"):
        export.convert_saved_model(folder)
    output = str(tmp_path / "flex.tflite")
    [result] = export.run_conversions(
        [{"saved_model": folder, "precision": "float32", "output": output}],
        isolate=False)
    assert not result["ok"] and "MatrixInverse" in result["error"]
    assert sorted(os.listdir(tmp_path)) == ["flex"]  # no file, no partial
    # In a worker: test_ten_conversions_do_not_grow_this_process.


@pytest.mark.parametrize("count, workers", [(1, []), (3, []), (4, [3, 1])])
def test_auto_isolation_spares_a_worker_for_a_few_conversions(
        monkeypatch, count, workers):
    from keras_slim.export import conversion

    started, converted = [], []

    def worker(jobs):  # records the worker's batch instead of starting it
        started.append(len(jobs))
        return [{"ok": True, "bytes": 1}] * len(jobs)

    def here(job):  # records a conversion in this process
        converted.append(job)
        return {"ok": True, "bytes": 1}

    monkeypatch.setattr(conversion, "_run_worker", worker)
    monkeypatch.setattr(conversion, "_convert_job", here)
    jobs = [{"output": f"{i}.tflite"} for i in range(count)]
    results = export.run_conversions(jobs, per_process=3, isolate="auto")
    assert len(results) == count
    # One worker's worth (per_process) converts here; more go to workers.
    assert started == workers
    assert converted == ([] if workers else jobs)


def _rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024


def test_ten_conversions_do_not_grow_this_process(tmp_path):
    # ResNet-18: a model large enough that an in-process leak shows.
    model = _graphs.width_model(_backbone(widths=(1.0,), depth=18), 1.0,
                                SHAPE)
    folder = str(tmp_path / "frozen")
    _graphs.save_bundle(
        {"serving_default": _graphs.serving_function(model, SHAPE)}, folder)
    jobs = [{"saved_model": folder, "precision": "float32",
             "output": str(tmp_path / f"{i}.tflite")} for i in range(10)]
    # A failing conversion among them: its error comes back from the
    # worker, and the worker's other conversions are not lost.
    flex = {"saved_model": _flex_saved_model(str(tmp_path / "flex")),
            "precision": "float32", "output": str(tmp_path / "flex.tflite")}
    jobs.insert(3, flex)
    # Warm up this side's first process start (its imports and buffers);
    # a conversion worker here would cost a TensorFlow start for nothing.
    subprocess.run([sys.executable, "-c", "pass"], check=True)
    before = _rss_mb()
    results = export.run_conversions(jobs, per_process=6)
    grown = _rss_mb() - before
    failed = results.pop(3)
    assert not failed["ok"] and "MatrixInverse" in failed["error"]
    assert not [n for n in os.listdir(tmp_path) if n.startswith("flex.")]
    jobs.remove(flex)
    assert all(r["ok"] for r in results)
    assert len({os.path.getsize(j["output"]) for j in jobs}) == 1
    # In this process the same ten conversions grew it by ~8 MB (this tiny
    # model; ~20 MB each for real ones); in workers, by nothing measurable.
    assert grown < 4, f"this process grew {grown:.1f} MB"
