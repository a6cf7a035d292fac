"""Optimizers and learning-rate schedules for self-supervised pretraining."""

from keras_slim.optimizers.coupled_sgd import CoupledSGD
from keras_slim.optimizers.lars import LARS
from keras_slim.optimizers.parameter_groups import ParameterGroups
from keras_slim.optimizers.parameter_groups import parameter_groups
from keras_slim.optimizers.slim_start_cosine import SlimStartCosine
from keras_slim.optimizers.schedules import SlowStartCosine
from keras_slim.optimizers.schedules import WarmupCosine

__all__ = ["CoupledSGD", "LARS", "ParameterGroups", "SlimStartCosine",
           "SlowStartCosine", "WarmupCosine", "parameter_groups"]
