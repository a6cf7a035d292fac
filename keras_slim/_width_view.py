"""A Keras model that runs a slimmable model at one fixed width."""

import keras

from keras_slim.width import width_name


class WidthView(keras.Model):
    """Runs `model(inputs, width=width)`; owns no weights of its own.

    Each width gets its own view, hence its own compiled `predict_function`:
    Keras caches that function per model, so switching the width of one model
    would reuse a stale trace.
    """

    def __init__(self, model, width):
        super().__init__(name=f"{model.name}_{width_name(width)}_view")
        self.viewed = model
        self.width = width
        self.built = True

    def call(self, inputs, training=None):
        return self.viewed(inputs, width=self.width, training=training)
