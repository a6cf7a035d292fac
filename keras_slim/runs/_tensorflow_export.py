"""`export_run` on another Keras backend: in a TensorFlow-backend process.

TFLite conversion traces each width's Keras model with `tf.function`, which
only a model on the TensorFlow backend allows. A run trained on JAX is
exported by a worker process started with `KERAS_BACKEND=tensorflow`
(`keras_slim.runs._export_worker`): the weights travel through the run
directory's `backbone.keras` (backend-neutral), the arguments and the
outcome through JSON files, its progress lines through its stdout.
"""

import json
import os
import subprocess
import sys
import tempfile

from keras_slim import _backend
from keras_slim.export import ExportError

__all__ = ["export_in_tensorflow"]

# What the worker can report, raised again here with its message.
_ERRORS = {error.__name__: error
           for error in (ValueError, FileNotFoundError, FileExistsError)}


def export_in_tensorflow(arguments, log):
    """`export_run(**arguments)` in a TensorFlow worker; its manifest.

    Raises what the worker's `export_run` raised (`ExportError`,
    `ValueError`, ...), or a RuntimeError with the end of its stderr when it
    died.
    """
    _backend.require_tensorflow("Exporting to TFLite")
    log = log or (lambda *_: None)
    with tempfile.TemporaryDirectory(prefix="keras_slim_export_") as tmp:
        arguments_path = os.path.join(tmp, "arguments.json")
        result_path = os.path.join(tmp, "result.json")
        with open(arguments_path, "w", encoding="utf-8") as f:
            json.dump(arguments, f)
        with open(os.path.join(tmp, "stderr.txt"), "w+",
                  encoding="utf-8") as errors:
            code = _run(arguments_path, result_path, errors, log)
            errors.seek(0)
            stderr = errors.read()
        result = None
        if os.path.isfile(result_path):
            with open(result_path, encoding="utf-8") as f:
                result = json.load(f)
    if result is None:
        tail = "\n".join(stderr.strip().splitlines()[-20:])
        raise RuntimeError(
            f"The TensorFlow export worker exited with code {code} before "
            f"finishing:\n{tail}")
    if result.get("error") == "ExportError":
        raise ExportError(result["failures"], result["manifest_path"])
    if "error" in result:
        raise _ERRORS.get(result["error"], RuntimeError)(result["message"])
    return result["manifest"]


def _run(arguments_path, result_path, errors, log):
    env = dict(os.environ, KERAS_BACKEND="tensorflow", PYTHONUNBUFFERED="1")
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # The worker imports this package from wherever the caller did.
    package_parent = os.path.dirname(os.path.dirname(os.path.dirname(
        os.path.abspath(__file__))))
    env["PYTHONPATH"] = os.pathsep.join(
        [package_parent] + [p for p in [env.get("PYTHONPATH")] if p])
    with subprocess.Popen(
            [sys.executable, "-m", "keras_slim.runs._export_worker",
             arguments_path, result_path],
            env=env, stdout=subprocess.PIPE, stderr=errors, text=True,
    ) as process:
        for line in process.stdout:
            log(line.rstrip("\n"))
    return process.returncode
