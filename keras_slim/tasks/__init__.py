"""Tasks on top of a slimmable backbone: supervised fine-tuning of every width."""

from keras_slim.tasks.slim_classifier import SlimClassifier

__all__ = ["SlimClassifier"]
