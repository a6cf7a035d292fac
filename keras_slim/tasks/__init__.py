"""Tasks on top of a slimmable backbone: supervised fine-tuning of every width."""

from keras_slim.tasks.semi_supervised import (
    fine_tune_all_widths_semi_supervised)
from keras_slim.tasks.slim_classifier import SlimClassifier

__all__ = ["SlimClassifier", "fine_tune_all_widths_semi_supervised"]
