"""SavedModel -> `.tflite` with TFLite builtin ops only, in worker processes.

Edge runtimes (LiteRT on Android/iOS/microcontrollers) cannot run TensorFlow
"Flex" ops (`SELECT_TF_OPS`), so every conversion here allows builtin ops
only and fails with the names of the offending ops otherwise.

`TFLiteConverter.convert()` leaks about 20 MB per call and never gives it
back, so `run_conversions` converts in short-lived worker processes (a new
one every `per_process` conversions): the caller's memory stays flat however
many widths and precisions it exports. A worker costs a TensorFlow start-up
(about 5 s on a 2-core machine), so a process that ends after a few
conversions (`keras-slim export`) converts them itself (`isolate="auto"`).
"""

import json
import os
import re
import subprocess
import sys
import tempfile

import numpy as np

from keras_slim.io import atomic_path

__all__ = ["PRECISIONS", "convert_saved_model", "run_conversions",
           "check_isolate", "ConversionError"]

# float32: exact; float16: weights stored as float16 (half the size, runs in
# float32 on CPU); dynamic_int8: int8 weights, float activations (no data
# needed); int8: weights and activations int8, calibrated on representative
# images (the only one integer-only accelerators run).
PRECISIONS = ("float32", "float16", "dynamic_int8", "int8")

INPUT_NAME = "images"


class ConversionError(ValueError):
    """A model could not become a builtin-ops-only `.tflite` file."""


def check_precision(precision):
    if precision not in PRECISIONS:
        raise ValueError(
            f"Unknown precision {precision!r}; choose from "
            f"{', '.join(PRECISIONS)}."
        )
    return precision


def convert_saved_model(saved_model_dir, precision="float32",
                        signature_keys=None, representative_images=None,
                        int8_io=False):
    """Convert a SavedModel to `.tflite` bytes in this process.

    Args:
        saved_model_dir: a SavedModel whose signatures take one float32
            input named `images`.
        precision: one of `PRECISIONS`.
        signature_keys: the signatures to convert (default: the serving
            signature); several give one file with one signature each.
        representative_images: float32 `(N, H, W, C)` images for the
            activation ranges of `precision="int8"` (required there).
        int8_io: for `"int8"`, int8 input and output tensors too (an
            integer-only accelerator needs them); otherwise float32 I/O
            with (de)quantization inside the model.

    Raises:
        ConversionError: an op has no TFLite builtin, or the converter
            failed otherwise; the message says which.
    """
    import tensorflow as tf

    check_precision(precision)
    if int8_io and precision != "int8":
        raise ValueError("`int8_io` is for precision 'int8' only.")
    if precision == "int8":
        representative_images = _check_representative(representative_images)
    converter = tf.lite.TFLiteConverter.from_saved_model(
        saved_model_dir, signature_keys=signature_keys)
    ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if precision != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if precision == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if precision == "int8":
        converter.representative_dataset = _representative_dataset(
            representative_images, signature_keys)
        ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    converter.target_spec.supported_ops = ops
    converter.allow_custom_ops = False
    try:
        return converter.convert()
    except Exception as error:  # the converter raises several types
        raise ConversionError(_explain(error, saved_model_dir)) from None


def _check_representative(images):
    if images is None:
        raise ValueError(
            "precision 'int8' needs representative images to calibrate the "
            "activation ranges: pass a few hundred training images (float32 "
            "in [0, 1], shape (N, height, width, channels)), e.g. "
            "`representative_images=x_train[:300]`; or choose "
            "'dynamic_int8', which needs no data."
        )
    images = np.asarray(images, dtype="float32")
    if images.ndim != 4 or len(images) == 0:
        raise ValueError(
            f"representative images must have shape (N, height, width, "
            f"channels) with N >= 1, got shape {images.shape}."
        )
    return images


def _representative_dataset(images, signature_keys):
    def one_at_a_time():
        for key in signature_keys or [None]:
            for image in images:
                batch = image[None]
                # Several signatures: the calibrator needs to know whose.
                yield (key, {INPUT_NAME: batch}) if key else [batch]
    return one_at_a_time


_TF_OP = re.compile(r"\btf\.([A-Z][A-Za-z0-9]+)")


def _explain(error, saved_model_dir):
    text = str(error)
    flex = sorted(set(_TF_OP.findall(text)))
    if flex or "not supported by the native TFLite runtime" in text:
        names = ", ".join(flex) or "see the converter message below"
        return (
            f"{saved_model_dir} uses TensorFlow ops that are not TFLite "
            f"builtins ({names}). Edge runtimes cannot run such ops (Flex / "
            f"SELECT_TF_OPS), so keras_slim exports builtin ops only: "
            f"replace them in the model (the plain sub-networks of "
            f"keras_slim backbones need none).\n{_tail(text)}"
        )
    return f"TFLite conversion of {saved_model_dir} failed:\n{_tail(text)}"


def _tail(text, lines=12):
    kept = [line for line in text.splitlines() if line.strip()]
    return "\n".join(kept[-lines:])


def run_conversions(jobs, per_process=8, isolate=True):
    """Run conversion jobs; each writes its `.tflite` atomically.

    Args:
        jobs: list of dicts with keys `saved_model`, `precision`, `output`
            and optionally `signature_keys`, `representative` (a `.npy`
            file of images), `int8_io`.
        per_process: conversions per worker process before a fresh one.
        isolate: `True` converts in worker processes; `False` in this
            process (it then grows by the converter's leak, ~20 MB per
            conversion); `"auto"` in this process when there are at most
            `per_process` jobs (one worker's worth: it grows by at most
            `per_process` leaks), in workers otherwise. "auto" suits a
            process that ends after the export; a long-lived one (a
            notebook exporting again and again) keeps memory flat with
            `True`.

    Returns:
        one dict per job, in order: `{"ok": True, "bytes": n}` or
        `{"ok": False, "error": message}`.
    """
    check_isolate(isolate)
    if isolate == "auto":
        isolate = len(jobs) > per_process
    if not isolate:
        return [_convert_job(job) for job in jobs]
    results = []
    for start in range(0, len(jobs), max(1, int(per_process))):
        results += _run_worker(jobs[start:start + per_process])
    return results


def check_isolate(isolate):
    """Raises ValueError unless `isolate` is True, False or "auto"."""
    if not (isinstance(isolate, bool) or isolate == "auto"):
        raise ValueError(
            f"isolate must be True, False or 'auto', got {isolate!r}.")


def _convert_job(job):
    try:
        representative = job.get("representative")
        if representative is not None:
            representative = np.load(representative)
        blob = convert_saved_model(
            job["saved_model"], job["precision"],
            signature_keys=job.get("signature_keys"),
            representative_images=representative,
            int8_io=job.get("int8_io", False),
        )
        with atomic_path(job["output"]) as tmp:
            with open(tmp, "wb") as f:
                f.write(blob)
        return {"ok": True, "bytes": len(blob)}
    except (ValueError, OSError) as error:
        return {"ok": False, "error": str(error)}


def _run_worker(jobs):
    with tempfile.TemporaryDirectory(prefix="keras_slim_convert_") as tmp:
        jobs_path = os.path.join(tmp, "jobs.json")
        results_path = os.path.join(tmp, "results.json")
        with open(jobs_path, "w", encoding="utf-8") as f:
            json.dump(jobs, f)
        env = dict(os.environ)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
        # The worker imports this package from wherever the caller did (a
        # source checkout need not be installed, nor the current folder).
        package_parent = os.path.dirname(os.path.dirname(os.path.dirname(
            os.path.abspath(__file__))))
        env["PYTHONPATH"] = os.pathsep.join(
            [package_parent] + [p for p in [env.get("PYTHONPATH")] if p])
        process = subprocess.run(
            [sys.executable, "-m", "keras_slim.export._worker", jobs_path,
             results_path],
            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        done = []
        if os.path.isfile(results_path):
            with open(results_path, encoding="utf-8") as f:
                done = json.load(f)
    if len(done) < len(jobs):
        # The worker died (killed, out of memory): its job left no file.
        why = (f"the conversion worker exited with code {process.returncode}"
               f" before finishing:\n{_tail(process.stderr)}")
        done += [{"ok": False, "error": why}] * (len(jobs) - len(done))
    return done
