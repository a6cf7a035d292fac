"""Run exported `.tflite` files with LiteRT; compare with Keras; time them."""

import statistics
import time

import numpy as np

from keras_slim.export.conversion import INPUT_NAME

__all__ = ["THRESHOLDS", "run_litert", "compare_outputs", "litert_latency",
           "litert_ops"]

# What an export must meet against the Keras model at the same width, on
# real images. `max_abs_diff` is on the features, relative to their largest
# magnitude when that exceeds 1; cosine is the mean over images of the
# cosine similarity of each image's feature vectors; top-1 agreement (the
# fraction of images whose arg-max logit is the same) is for files with a
# classifier head.
THRESHOLDS = {
    "float32": {"max_abs_diff": 1e-4, "top1_agreement": 0.99},
    "float16": {"cosine": 0.999, "top1_agreement": 0.99},
    "dynamic_int8": {"cosine": 0.98, "top1_agreement": 0.98},
    "int8": {"cosine": 0.98, "top1_agreement": 0.98},
}


def _interpreter(model_path, num_threads):
    from ai_edge_litert.interpreter import Interpreter

    return Interpreter(model_path=model_path, num_threads=num_threads)


def _runner(interpreter, signature):
    signatures = interpreter.get_signature_list()
    if signature is None:
        if len(signatures) != 1:
            raise ValueError(
                f"the file has signatures {sorted(signatures)}: name one.")
        signature = next(iter(signatures))
    if signature not in signatures:
        raise ValueError(f"no signature {signature!r}; the file has "
                         f"{sorted(signatures)}.")
    return interpreter.get_signature_runner(signature)


def run_litert(model_path, images, signature=None, num_threads=1,
               batch_size=32):
    """Outputs of a `.tflite` on float images `(N, H, W, C)` in [0, 1].

    Quantized (int8) inputs are quantized and outputs dequantized with the
    file's own scales, so the result compares with the float model.

    Returns:
        dict `{output name: float32 array (N, ...)}`.
    """
    runner = _runner(_interpreter(model_path, num_threads), signature)
    input_detail = runner.get_input_details()[INPUT_NAME]
    output_details = runner.get_output_details()
    parts = {name: [] for name in output_details}
    images = np.asarray(images, dtype="float32")
    for start in range(0, len(images), batch_size):
        batch = _quantize(images[start:start + batch_size], input_detail)
        outputs = runner(**{INPUT_NAME: batch})
        for name, value in outputs.items():
            parts[name].append(_dequantize(value, output_details[name]))
    return {name: np.concatenate(values) for name, values in parts.items()}


def _quantize(values, detail):
    dtype = np.dtype(detail["dtype"])
    if dtype == np.float32:
        return values
    scale, zero_point = detail["quantization"]
    info = np.iinfo(dtype)
    quantized = np.round(values / scale) + zero_point
    return np.clip(quantized, info.min, info.max).astype(dtype)


def _dequantize(values, detail):
    if np.dtype(detail["dtype"]) == np.float32:
        return np.asarray(values)
    scale, zero_point = detail["quantization"]
    return ((np.asarray(values, dtype="float32") - zero_point) * scale
            ).astype("float32")


def compare_outputs(expected, actual, precision):
    """How far a file's outputs are from Keras', and whether that passes.

    Args:
        expected, actual: dicts `{"features": (N, D)[, "logits": (N, K)]}`.
        precision: selects the thresholds in `THRESHOLDS`.

    Returns:
        dict with `max_abs_diff`, `cosine` (mean), `cosine_min`,
        `top1_agreement` (with logits), `passed` and `failures` (the
        thresholds missed, as readable strings).
    """
    want, got = expected["features"], actual["features"]
    cosines = _cosines(want, got)
    # Features after ReLU and pooling share a large positive mean, which
    # makes the plain cosine lenient; the centered one shows what is left.
    center = np.mean(want, axis=0, keepdims=True)
    report = {
        "max_abs_diff": float(np.max(np.abs(want - got))),
        "feature_scale": float(np.max(np.abs(want))),
        "cosine": float(np.mean(cosines)),
        "cosine_min": float(np.min(cosines)),
        "centered_cosine": float(np.mean(_cosines(want - center,
                                                  got - center))),
    }
    if "logits" in expected:
        report["logits_max_abs_diff"] = float(
            np.max(np.abs(expected["logits"] - actual["logits"])))
        report["top1_agreement"] = float(np.mean(
            np.argmax(expected["logits"], 1) == np.argmax(actual["logits"],
                                                          1)))
    failures = []
    for key, limit in THRESHOLDS[precision].items():
        if key not in report:
            continue
        value = report[key]
        if key == "max_abs_diff":
            # float32 rounding grows with the values: features larger than
            # 1 are held to the same *relative* precision.
            limit = limit * max(1.0, report["feature_scale"])
        ok = value <= limit if key == "max_abs_diff" else value >= limit
        if not ok:
            sign = "<=" if key == "max_abs_diff" else ">="
            failures.append(f"{key} {value:.6g} (needs {sign} {limit:g})")
    report["passed"] = not failures
    report["failures"] = failures
    return report


def _cosines(a, b):
    a = a.reshape(len(a), -1).astype("float64")
    b = b.reshape(len(b), -1).astype("float64")
    norms = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    dots = np.sum(a * b, axis=1)
    # Two all-zero vectors agree; one zero vector does not.
    both_zero = norms == 0
    safe = np.where(both_zero, 1.0, norms)
    cosine = dots / safe
    return np.where(both_zero,
                    np.all(a == b, axis=1).astype("float64"), cosine)


def litert_latency(model_path, image_shape, signature=None, num_threads=1,
                   runs=30, warmup=3):
    """Median wall time (ms) of one batch-1 inference with LiteRT."""
    interpreter = _interpreter(model_path, num_threads)
    runner = _runner(interpreter, signature)
    detail = runner.get_input_details()[INPUT_NAME]
    image = np.random.default_rng(0).random((1, *image_shape),
                                            dtype="float32")
    feed = {INPUT_NAME: _quantize(image, detail)}
    for _ in range(warmup):
        runner(**feed)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        runner(**feed)
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def litert_ops(model_path):
    """The sorted op names of a `.tflite` (all builtins after our export)."""
    interpreter = _interpreter(model_path, 1)
    try:
        details = interpreter._get_ops_details()  # no public equivalent
    except AttributeError:
        return []
    return sorted({op["op_name"] for op in details})
