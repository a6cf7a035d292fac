"""keras_slim: slimmable self-supervised pretraining for Keras 3 / TensorFlow.

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

try:
    import tensorflow  # noqa: F401
except ImportError as error:  # pragma: no cover - depends on the install
    raise ImportError(
        "keras_slim needs TensorFlow 2.21, which is an extra so that you can "
        "choose the build: pip install 'keras-slim[cpu]' (tensorflow-cpu) or "
        "'keras-slim[gpu]' (tensorflow)."
    ) from error

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
