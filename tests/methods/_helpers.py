"""Tiny data and models shared by the method tests."""

import gzip
import os

import keras
import numpy as np
import tensorflow as tf

from keras_slim.backbones import SlimResNet
from tests.conftest import SHARED_DATA
from tests.methods._tiny_slim_net import TinySlimNet

FASHION = os.path.join(SHARED_DATA, "fashion-mnist")


def tiny_backbone(widths=(1.0, 0.5), channels=3, **kwargs):
    """A `TinySlimNet`: a recipe test's backbone (fast to trace)."""
    kwargs.setdefault("base_width", 4)
    return TinySlimNet(
        widths=widths, input_shape=(None, None, channels), **kwargs
    )


def resnet_backbone(widths=(1.0, 0.5), channels=3, **kwargs):
    """A SlimResNet-18 of base width 4: where the depth matters."""
    kwargs.setdefault("base_width", 4)
    return SlimResNet(
        widths=widths, input_shape=(None, None, channels), **kwargs
    )


def random_pairs(batch=8, steps=2, size=16, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((batch * steps, size, size, channels), dtype="float32")
    noise = rng.normal(0, 0.05, x.shape).astype("float32")
    return tf.data.Dataset.from_tensor_slices((x, x + noise)).batch(
        batch, drop_remainder=True
    )


def fashion_images(count):
    """The first `count` Fashion-MNIST training images in [0, 1], (n,28,28,1)."""
    path = os.path.join(FASHION, "train-images-idx3-ubyte.gz")
    with gzip.open(path, "rb") as f:
        data = np.frombuffer(f.read(), np.uint8, offset=16)
    images = data.reshape(-1, 28, 28, 1)[:count]
    return images.astype("float32") / 255.0


def fashion_view_pairs(count=256, batch=32, seed=0):
    """Two random crops + flips of real Fashion-MNIST images per example."""
    images = fashion_images(count)

    def augment(image, seed_pair):
        image = tf.image.stateless_random_flip_left_right(image, seed_pair)
        padded = tf.image.pad_to_bounding_box(image, 2, 2, 32, 32)
        return tf.image.stateless_random_crop(padded, (24, 24, 1), seed_pair)

    def views(index, image):
        s1 = tf.stack([seed, tf.cast(index, tf.int32) * 2])
        s2 = tf.stack([seed, tf.cast(index, tf.int32) * 2 + 1])
        return augment(image, s1), augment(image, s2)

    ds = tf.data.Dataset.from_tensor_slices(images).enumerate()
    return ds.map(views).batch(batch, drop_remainder=True)


def weights_of(layer):
    return [np.array(v) for v in layer.weights]


def compile_sgd(model, lr=0.05, **kwargs):
    model.compile(optimizer=keras.optimizers.SGD(lr, momentum=0.9), **kwargs)
