"""Data: image sets in memory, two-view SSL augmentation, tf.data pipelines.

`load` reads digits, TFDS data sets, image folders, ZIPs of them and IDX
files into an `ImageData` (uint8 arrays in memory); `stream` lists an image
folder too large for memory as `ImageFiles`, decoded batch by batch;
`TwoViewAugmentation` turns a batch of images into two augmented views and
`SupervisedAugmentation` into one labelled crop; `view_pairs`,
`labeled_training_batches` and `labeled_batches` build the `tf.data`
pipelines for pretraining, fine-tuning and evaluation.
"""

from keras_slim.data.image_data import ImageData
from keras_slim.data.image_files import ImageFiles
from keras_slim.data.loading import load
from keras_slim.data.pipelines import labeled_batches
from keras_slim.data.pipelines import labeled_training_batches
from keras_slim.data.pipelines import steps_per_epoch
from keras_slim.data.pipelines import view_pairs
from keras_slim.data.streaming import stream
from keras_slim.data.supervised_augmentation import SupervisedAugmentation
from keras_slim.data.two_view_augmentation import TwoViewAugmentation

__all__ = [
    "ImageData",
    "ImageFiles",
    "SupervisedAugmentation",
    "TwoViewAugmentation",
    "labeled_batches",
    "labeled_training_batches",
    "load",
    "steps_per_epoch",
    "stream",
    "view_pairs",
]
