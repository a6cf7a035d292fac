"""The TensorFlow worker of `export_in_tensorflow`:
`python -m keras_slim.runs._export_worker ARGUMENTS.json RESULT.json`.

Runs `export_run(**arguments)` on the TensorFlow backend, printing its
progress, and writes `{"manifest": ...}` or the error it raised to
RESULT.json (atomically: no file means the worker died).
"""

import json
import sys

import keras

from keras_slim.export import ExportError
from keras_slim.io import write_json_atomic
from keras_slim.runs.export_run import export_run


def main(arguments_path, result_path):
    if keras.backend.backend() != "tensorflow":
        sys.exit("keras_slim.runs._export_worker runs with "
                 "KERAS_BACKEND=tensorflow only.")
    with open(arguments_path, encoding="utf-8") as f:
        arguments = json.load(f)
    try:
        result = {"manifest": export_run(**arguments)}
    except ExportError as error:
        result = {"error": "ExportError", "failures": error.failures,
                  "manifest_path": error.manifest_path}
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        result = {"error": type(error).__name__, "message": str(error)}
    write_json_atomic(result_path, result)
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
