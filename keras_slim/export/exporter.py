"""`export_backbone`: every width of a slimmable backbone to verified files."""

import glob
import json
import os
import shutil
import tempfile

import numpy as np

from keras_slim.export import _graphs
from keras_slim.export._manifest import build_manifest
from keras_slim.export._manifest import plot_latency
from keras_slim.export._request import Request
from keras_slim.export.conversion import check_isolate
from keras_slim.export.conversion import run_conversions
from keras_slim.export.export_error import ExportError
from keras_slim.export.verification import compare_outputs
from keras_slim.export.verification import litert_latency
from keras_slim.export.verification import litert_ops
from keras_slim.export.verification import run_litert
from keras_slim.io import write_json_atomic
from keras_slim.width import width_name

__all__ = ["export_backbone", "read_manifest", "check_output_folder",
           "MANIFEST"]

MANIFEST = "manifest.json"
BUNDLE = "bundle"


def export_backbone(backbone, output_dir, images, widths=None,
                    precisions=("float32",), representative_images=None,
                    classifiers=None, labels=None, image_shape=None,
                    int8_io=False, saved_model=True, bundle=True,
                    latency_threads=(1, 2), latency_runs=30, accuracy=None,
                    overwrite=False, isolate=True, log=print):
    """Export widths of a slimmable backbone to TFLite/LiteRT and verify them.

    For each width and precision, writes `<w>_<precision>.tflite` (the
    width's plain sub-network, TFLite builtin ops only), runs it with the
    LiteRT interpreter on `images` and compares with the Keras model at that
    width (thresholds in `keras_slim.export.THRESHOLDS`), and times it at
    batch 1. Also writes a SavedModel per width (`saved_model/<w>/`), one
    file per precision holding every width as a signature
    (`bundle_<precision>.tflite`, signature keys `w1`, `w0.5`, ...),
    `manifest.json` (what was written, its size, cost, check results,
    latency, accuracy) and `latency_vs_width.png`. Every file is written
    atomically.

    Args:
        backbone: a `keras_slim.backbones.SlimBackbone`. Widths of a width
            range must have calibrated BatchNorm statistics
            (`keras_slim.evaluation.calibrate_batch_norm`).
        output_dir: the folder to write (created; must be empty or hold an
            earlier export, replaced only with `overwrite=True`).
        images: float32 `(N, H, W, C)` real images in [0, 1] the files are
            checked on (e.g. 64-1000 test images).
        widths: widths to export (default: every width with statistics).
        precisions: any of "float32", "float16", "dynamic_int8", "int8".
        representative_images: float32 images of the training data that
            calibrate "int8" (a few hundred); required for "int8".
        classifiers: optional `{width: keras.layers.Dense}` heads (e.g. a
            `LinearProbeResult.classifiers`): the files then output `logits`
            as well as `features`.
        labels: optional class ids of `images`; with classifiers, each file's
            top-1 accuracy on them goes into the manifest.
        image_shape: input shape of the files (default: the images').
        int8_io: "int8" files take and return int8 tensors.
        saved_model: also write a SavedModel per width.
        bundle: also write the multi-signature file per precision.
        latency_threads: LiteRT thread counts to time (empty: no timing).
        latency_runs: timed batch-1 runs per measurement (median reported).
        accuracy: optional `{width: {name: value}}` copied into the
            manifest (e.g. the kNN/linear top-1 of `results.json`).
        overwrite: replace an earlier export in `output_dir`.
        isolate: convert in worker processes (memory stays flat); `False`
            in this process, `"auto"` in this process for a few files
            (see `keras_slim.export.run_conversions`).
        log: progress printer (`None` for silence).

    Returns:
        the manifest dict (also in `output_dir/manifest.json`).

    Raises:
        ExportError: a conversion failed (e.g. an op without a TFLite
            builtin) or a file missed its verification threshold; the
            manifest is still written, with `"verified": false`.
        ValueError: bad arguments (unknown width or precision, missing
            representative images, wrong image shape, ...).

    Example:

    ```python
    import os
    import tempfile

    import numpy as np
    from keras_slim.backbones import SlimResNet
    from keras_slim.export import export_backbone

    backbone = SlimResNet(depth=10, base_width=8, widths=[1.0, 0.5])
    x_test = np.random.default_rng(0).random((8, 16, 16, 3), "float32")
    folder = os.path.join(tempfile.mkdtemp(), "exported")
    # precisions=["float32", "int8"] would add int8 files, calibrated on
    # representative_images=x_train[:300].
    manifest = export_backbone(backbone, folder, images=x_test, widths=[0.5],
                               saved_model=False, bundle=False,
                               latency_threads=(), isolate=False, log=None)
    assert [m["file"] for m in manifest["models"]] == ["w0.5_float32.tflite"]
    assert manifest["verified"]
    ```

    References:
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
        - [LiteRT post-training quantization](https://ai.google.dev/edge/litert/models/post_training_quantization)
    """
    log = log or (lambda *_: None)
    check_isolate(isolate)
    request = Request.check(backbone, images, widths, precisions,
                             representative_images, classifiers, labels,
                             image_shape, int8_io)
    output_dir = os.path.abspath(output_dir)
    _prepare_output(output_dir, overwrite)
    with tempfile.TemporaryDirectory(prefix="keras_slim_export_") as work:
        models = {w: _graphs.width_model(backbone, w, request.image_shape,
                                         request.classifiers.get(w))
                  for w in request.widths}
        # One trace per width serves its SavedModel, its frozen graphs and
        # its reference outputs (a trace costs more than a conversion).
        serving = {w: _graphs.serving_function(m, request.image_shape)
                   for w, m in models.items()}
        jobs, entries = _plan(request, models, serving, output_dir, work,
                              saved_model, bundle, log)
        log(f"converting {len(jobs)} files (builtin TFLite ops only)")
        results = run_conversions(jobs, isolate=isolate)
    manifest = build_manifest(backbone, request, accuracy)
    # Each width's Keras outputs, once: every precision and bundle
    # signature of that width is compared with the same reference.
    expected = {w: _graphs.serving_outputs(serve, request.images)
                for w, serve in serving.items()}
    failures = []
    for entry, result in zip(entries, results):
        _finish(entry, result, expected, request, latency_threads,
                latency_runs, output_dir, failures, log)
        (manifest["bundles"] if entry.get("signatures") else
         manifest["models"]).append(entry)
    manifest["saved_models"] = ({width_name(w): f"saved_model/{width_name(w)}"
                                 for w in request.widths}
                                if saved_model else {})
    manifest["verified"] = not failures
    write_json_atomic(os.path.join(output_dir, MANIFEST), manifest)
    plot_latency(manifest, os.path.join(output_dir, "latency_vs_width.png"))
    if failures:
        raise ExportError(failures, os.path.join(output_dir, MANIFEST))
    log(f"wrote {len(entries)} verified files and {MANIFEST} to {output_dir}")
    return manifest


def check_output_folder(output_dir, overwrite=False):
    """Raises ValueError unless an export may write into `output_dir`.

    It may when the folder is new or empty, or holds an earlier export and
    `overwrite` is true. Callers with slow work before the export (loading
    a run, training heads, starting a worker) check first.
    """
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        if not os.path.isfile(os.path.join(output_dir, MANIFEST)):
            raise ValueError(
                f"{output_dir} is not empty and holds no earlier export "
                f"({MANIFEST}); choose an empty or new folder.")
        if not overwrite:
            raise ValueError(
                f"{output_dir} holds an earlier export; pass "
                f"overwrite=True (CLI: --overwrite) to replace it.")


def _prepare_output(output_dir, overwrite):
    check_output_folder(output_dir, overwrite)
    if os.path.isdir(output_dir) and os.listdir(output_dir):
        _remove_earlier_export(output_dir)
    os.makedirs(output_dir, exist_ok=True)


def _remove_earlier_export(output_dir):
    """Delete the files an earlier export wrote (and only those)."""
    for path in glob.glob(os.path.join(glob.escape(output_dir), "*.tflite")):
        os.remove(path)
    for name in (MANIFEST, "latency_vs_width.png"):
        path = os.path.join(output_dir, name)
        if os.path.exists(path):
            os.remove(path)
    shutil.rmtree(os.path.join(output_dir, "saved_model"), ignore_errors=True)


def _plan(request, models, serving, output_dir, work, saved_model,
          with_bundle, log):
    """Write the SavedModels; list the conversion jobs and manifest rows."""
    representative = None
    if request.representative is not None:
        representative = os.path.join(work, "representative.npy")
        np.save(representative, request.representative)
    jobs, entries = [], []
    for width, model in models.items():
        name = width_name(width)
        folder = os.path.join(output_dir, "saved_model", name)
        if saved_model:
            _graphs.save_width_model(model, serving[width], folder)
            log(f"  {name}: SavedModel written")
        # The converter gets the weights as constants (see `save_bundle`).
        frozen = os.path.join(work, f"frozen_{name}")
        _graphs.save_bundle({"serving_default": serving[width]}, frozen)
        for precision in request.precisions:
            jobs.append(_job(frozen, precision, request, representative,
                             os.path.join(output_dir,
                                          f"{name}_{precision}.tflite")))
            entries.append({"width": width, "precision": precision,
                            "file": f"{name}_{precision}.tflite"})
    if with_bundle:
        folder = os.path.join(work, BUNDLE)
        keys = {width_name(w): serving[w] for w in models}
        _graphs.save_bundle(keys, folder)
        for precision in request.precisions:
            jobs.append(_job(folder, precision, request, representative,
                             os.path.join(output_dir,
                                          f"{BUNDLE}_{precision}.tflite"),
                             signature_keys=list(keys)))
            entries.append({"precision": precision,
                            "file": f"{BUNDLE}_{precision}.tflite",
                            "signatures": {k: w for k, w in zip(
                                keys, models)}})
    return jobs, entries


def _job(folder, precision, request, representative, output,
         signature_keys=None):
    job = {"saved_model": folder, "precision": precision, "output": output,
           "signature_keys": signature_keys}
    if precision == "int8":
        job["representative"] = representative
        job["int8_io"] = request.int8_io
    return job


def _finish(entry, result, expected, request, latency_threads,
            latency_runs, output_dir, failures, log):
    """Verify and time one written file; fill its manifest row."""
    if not result["ok"]:
        entry["error"] = result["error"]
        failures.append(f"{entry['file']}: {result['error']}")
        return
    path = os.path.join(output_dir, entry["file"])
    entry["bytes"] = os.path.getsize(path)
    entry["ops"] = litert_ops(path)
    signatures = entry.get("signatures") or {None: entry["width"]}
    checks = {}
    for key, width in signatures.items():
        checks[key] = _verify(path, key, expected[width], request,
                              entry["precision"])
        failures += [f"{entry['file']}{'[' + key + ']' if key else ''}: "
                     f"{failure}" for failure in checks[key]["failures"]]
    if entry.get("signatures"):
        entry["verification"] = checks
        log(f"  {entry['file']}: {len(signatures)} signatures, "
            f"{_verdict(checks.values())}")
        return
    entry["verification"] = checks[None]
    entry["latency_ms"] = {
        str(t): round(litert_latency(path, request.image_shape,
                                     num_threads=t, runs=latency_runs), 4)
        for t in latency_threads}
    log(f"  {entry['file']}: {entry['bytes']:,} bytes, "
        f"{_verdict([checks[None]])}, latency {entry['latency_ms']} ms")


def _verify(path, signature, expected, request, precision):
    actual = run_litert(path, request.images, signature=signature)
    report = compare_outputs(expected, actual, precision)
    report["images"] = len(request.images)
    if request.labels is not None and "logits" in actual:
        report["top1"] = float(np.mean(
            np.argmax(actual["logits"], 1) == request.labels))
        report["keras_top1"] = float(np.mean(
            np.argmax(expected["logits"], 1) == request.labels))
    return report


def _verdict(checks):
    checks = list(checks)
    if all(c["passed"] for c in checks):
        worst = min(c["cosine"] for c in checks)
        return f"verified (cosine >= {worst:.5f})"
    return "FAILED: " + "; ".join(f for c in checks for f in c["failures"])


def read_manifest(output_dir):
    """The manifest of an export folder."""
    with open(os.path.join(output_dir, MANIFEST), encoding="utf-8") as f:
        return json.load(f)
