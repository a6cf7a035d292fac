"""keras_slim: slimmable self-supervised pretraining for Keras 3 / TensorFlow.

One pretraining run, one set of weights, several widths; each width a backbone
for its compute budget, exportable on its own.
"""

from keras_slim import backbones
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
