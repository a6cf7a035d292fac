"""Projection and prediction heads that slice with the backbone's width."""

from keras_slim.heads.slim_mlp_head import SlimMLPHead

__all__ = ["SlimMLPHead"]
