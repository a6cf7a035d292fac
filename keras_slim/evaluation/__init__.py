"""Evaluation of every width: kNN, linear probes, semi-supervised fine-tuning.

Inputs are images in [0, 1] as numpy arrays `(N, H, W, C)` with integer
labels `(N,)` (most functions also take a `tf.data.Dataset` of
`(images, labels)` batches). Every function evaluates each width separately
and returns `{width: value}`. A width range's widths must be BN-calibrated
first (`calibrate_batch_norm`); evaluating an uncalibrated width is an error.

On the JAX backend everything runs on numpy arrays without TensorFlow,
except `paper_linear_probe` (its random crops) and
`fine_tune_semi_supervised` (its `tf.data` augmentation), which use
TensorFlow's image ops on either backend and say so when it is missing.
"""

from keras_slim.evaluation.calibration import calibrate_batch_norm
from keras_slim.evaluation.calibration import with_stat_widths
from keras_slim.evaluation.features import extract_features
from keras_slim.evaluation.knn import evaluate_knn
from keras_slim.evaluation.knn import knn_accuracy
from keras_slim.evaluation.knn import knn_classify
from keras_slim.evaluation.knn_monitor import KNNMonitor
from keras_slim.evaluation.linear_probe import linear_probe
from keras_slim.evaluation.linear_probe_result import LinearProbeResult
from keras_slim.evaluation.paper_linear_probe import paper_linear_probe
from keras_slim.evaluation.representation_metrics import alignment
from keras_slim.evaluation.representation_metrics import alignment_uniformity
from keras_slim.evaluation.representation_metrics import uniformity
from keras_slim.evaluation.semi_supervised import fine_tune_semi_supervised
from keras_slim.evaluation.semi_supervised import labeled_subset

__all__ = [
    "KNNMonitor",
    "LinearProbeResult",
    "alignment",
    "alignment_uniformity",
    "calibrate_batch_norm",
    "evaluate_knn",
    "extract_features",
    "fine_tune_semi_supervised",
    "knn_accuracy",
    "knn_classify",
    "labeled_subset",
    "linear_probe",
    "paper_linear_probe",
    "uniformity",
    "with_stat_widths",
]
