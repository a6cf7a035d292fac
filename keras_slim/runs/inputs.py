"""What a run reads: its folder, its data splits and its evaluation arrays."""

import os

import numpy as np
import tensorflow as tf

from keras_slim import data
from keras_slim.config import as_run_config
from keras_slim.runs.run_directory import RunDirectory

__all__ = ["run_directory_of", "crop_size", "load_split", "training_split",
           "eval_arrays", "labelled_sets"]


def run_directory_of(config):
    """The run folder of `config`: `output_dir`, else `runs/<name>`."""
    config = as_run_config(config)
    return RunDirectory(
        config.output_dir or os.path.join("runs", config.name)
    )


def crop_size(config):
    """The side of the augmented views (and of the evaluation images)."""
    config = as_run_config(config)
    return config.augmentation.crop_size or config.data.image_size


def load_split(config, split_key, max_examples=None):
    """The `ImageData` of `data.<split_key>` (`"train_split"` or
    `"test_split"`)."""
    spec = as_run_config(config).data
    limit = (spec.max_examples if split_key == "train_split"
             else spec.max_test_examples)
    if max_examples is not None:
        limit = max_examples if limit is None else min(limit, max_examples)
    return data.load(
        spec.source, split=getattr(spec, split_key), data_dir=spec.data_dir,
        image_size=spec.image_size, channels=spec.channels,
        on_corrupt=spec.on_corrupt, max_examples=limit,
        cache_dir=spec.cache_dir,
    )


def training_split(config):
    """The pretraining images: in memory, or streamed (`data.stream`)."""
    config = as_run_config(config)
    spec = config.data
    if not spec.stream:
        return load_split(config, "train_split")
    return data.stream(
        spec.source, split=spec.train_split,
        image_size=spec.image_size, channels=spec.channels or 3,
        on_corrupt=spec.on_corrupt, max_examples=spec.max_examples)


def eval_arrays(image_data, size):
    """(float32 images in [0, 1] at `size` x `size`, int32 labels)."""
    images = image_data.images
    if images.shape[1:3] != (size, size):
        images = tf.image.resize(images, (size, size), antialias=True).numpy()
    images = np.clip(images.astype("float32") / 255.0, 0.0, 1.0)
    return images, image_data.labels.astype("int32")


def labelled_sets(config, size=None):
    """`((train images, labels), (test images, labels))` for evaluation.

    The training set is capped at `evaluation.max_train_examples`; both are
    at `size` (default: the run's crop size).
    """
    config = as_run_config(config)
    size = crop_size(config) if size is None else size
    cap = config.evaluation.max_train_examples
    train = eval_arrays(load_split(config, "train_split", cap), size)
    test = eval_arrays(load_split(config, "test_split"), size)
    return train, test
