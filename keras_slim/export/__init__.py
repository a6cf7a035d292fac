"""Export each width of a slimmable backbone to TFLite/LiteRT, verified.

`export_backbone` writes, per width and precision, a builtin-ops-only
`.tflite`, checks it with the LiteRT interpreter against the Keras model,
times it, and records everything in `manifest.json`.
"""

from keras_slim.export.conversion import PRECISIONS
from keras_slim.export.conversion import ConversionError
from keras_slim.export.conversion import convert_saved_model
from keras_slim.export.conversion import run_conversions
from keras_slim.export.export_error import ExportError
from keras_slim.export.exporter import MANIFEST
from keras_slim.export.exporter import export_backbone
from keras_slim.export.exporter import read_manifest
from keras_slim.export.verification import THRESHOLDS
from keras_slim.export.verification import compare_outputs
from keras_slim.export.verification import litert_latency
from keras_slim.export.verification import litert_ops
from keras_slim.export.verification import run_litert

__all__ = [
    "PRECISIONS", "THRESHOLDS", "MANIFEST", "ConversionError", "ExportError",
    "export_backbone", "read_manifest", "convert_saved_model",
    "run_conversions", "run_litert", "compare_outputs", "litert_latency",
    "litert_ops",
]
