"""keras_slim: slimmable self-supervised pretraining for Keras 3 (TensorFlow, JAX).

One pretraining run, one set of weights, several widths; each width a backbone
for its compute budget, exportable on its own.
"""

import os as _os
import sys as _sys

# TensorFlow reads TF_ENABLE_ONEDNN_OPTS once, at its import. Its oneDNN
# kernels made our training steps 1.5-1.9x faster on the project's CPUs, so
# when keras_slim is imported first it switches them on (an explicit value in
# the environment wins; importing TensorFlow first keeps its own default).
if "tensorflow" not in _sys.modules:
    _os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
    if _os.path.basename(_sys.argv[0] if _sys.argv else "") == "keras-slim":
        # The command's output starts with its own lines, not TensorFlow's.
        from keras_slim.cli.startup import import_tensorflow_quietly

        import_tensorflow_quietly()

from keras_slim import _backend  # noqa: E402

_backend.check_supported()
if _backend.is_tensorflow():
    # On JAX, the core (layers, backbones, recipes, training on arrays)
    # needs no TensorFlow; tf.data, TFLite export and the TensorFlow backend
    # do, and say so when it is missing.
    _backend.require_tensorflow("The TensorFlow backend of keras_slim")

from keras_slim import backbones  # noqa: E402
from keras_slim import convert
from keras_slim import heads
from keras_slim import layers
from keras_slim import losses
from keras_slim import methods
from keras_slim import optimizers
from keras_slim.profile import profile
from keras_slim.width import Widths
from keras_slim.width import make_divisible
from keras_slim.width import width_name

__version__ = "0.1.0"

__all__ = [
    "Widths",
    "backbones",
    "heads",
    "layers",
    "losses",
    "methods",
    "optimizers",
    "make_divisible",
    "profile",
    "width_name",
]
