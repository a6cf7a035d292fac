"""Slimmable self-supervised recipes: one `model.fit`, every width trained."""

from keras_slim.methods.dspnet import DSPNet
from keras_slim.methods.slim_clr import SlimCLR
from keras_slim.methods.slim_ssl import SlimSSL
from keras_slim.methods.us3l import US3L

__all__ = ["DSPNet", "SlimCLR", "SlimSSL", "US3L"]
