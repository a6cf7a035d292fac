"""The tiny pretraining run the resume tests share (TensorFlow and JAX):
SlimCLR-MoCo v2 on digits 8x8, ResNet-10 of base width 4, widths [1.0, 0.5],
batch 64, 256 images (4 steps per epoch), 2 epochs, a checkpoint every step.
ResNet-10 (one block a stage) traces in about half ResNet-18's time; the
runs test what is around the network."""

import h5py

TINY = [
    "data.image_size=8", "data.max_examples=256",
    "backbone.depth=10", "backbone.base_width=4",
    "backbone.widths=[1.0, 0.5]",
    "train.epochs=2", "train.batch_size=64", "train.verbose=0",
    "train.checkpoint_every_steps=1",
    "method.base=mocov2", "method.options={queue_size: 128}",
    "augmentation.preset=cifar",
]
STEPS = 8  # 2 epochs of 256 // 64


def checkpoint_arrays(path):
    """Every dataset of a `.weights.h5` file: {h5 path: array}."""
    found = {}
    with h5py.File(path, "r") as f:
        f.visititems(lambda name, obj: found.__setitem__(name, obj[()])
                     if isinstance(obj, h5py.Dataset) else None)
    return found
