"""Slimmable backbones: `backbone(images, width=w)`, `backbone.subnetwork(w)`."""

from keras_slim.backbones.slim_backbone import SlimBackbone
from keras_slim.backbones.slim_mobilenet_v2 import SlimMobileNetV2
from keras_slim.backbones.slim_resnet import SlimResNet

__all__ = ["SlimBackbone", "SlimMobileNetV2", "SlimResNet"]
