"""Optimizers and learning-rate schedules for self-supervised pretraining."""

from keras_slim.optimizers.coupled_sgd import CoupledSGD
from keras_slim.optimizers.lars import LARS
from keras_slim.optimizers.slim_start_cosine import SlimStartCosine
from keras_slim.optimizers.schedules import SlowStartCosine
from keras_slim.optimizers.schedules import WarmupCosine

__all__ = ["CoupledSGD", "LARS", "SlimStartCosine", "SlowStartCosine",
           "WarmupCosine"]
