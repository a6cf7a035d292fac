"""Slimmable self-supervised recipes: one `model.fit`, every width trained."""

from keras_slim.methods.slim_clr import SlimCLR
from keras_slim.methods.slim_ssl import SlimSSL

__all__ = ["SlimCLR", "SlimSSL"]
