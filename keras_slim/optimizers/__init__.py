"""Optimizers and learning-rate schedules for self-supervised pretraining."""

from keras_slim.optimizers.lars import LARS
from keras_slim.optimizers.schedules import SlowStartCosine
from keras_slim.optimizers.schedules import WarmupCosine

__all__ = ["LARS", "SlowStartCosine", "WarmupCosine"]
