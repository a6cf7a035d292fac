"""tf.data pipelines over an `ImageData` (in memory) or `ImageFiles` (on
disk, decoded per batch): SSL view pairs and labeled evaluation batches."""

import numbers

import tensorflow as tf

from keras_slim.data import _convert
from keras_slim.data.image_data import ImageData
from keras_slim.data.image_files import ImageFiles

# Fold-in salts keep the permutation and augmentation seed streams apart.
_PERMUTATION_SALT = 1
_AUGMENTATION_SALT = 2


def steps_per_epoch(data, batch_size):
    """Full batches per epoch (the last partial batch is dropped)."""
    data = _check_data(data)
    batch_size = _check_batch_size(batch_size)
    steps = data.num_examples // batch_size
    if steps == 0:
        raise ValueError(
            f"batch_size={batch_size} is larger than the data set "
            f"({data.num_examples} examples of {data.name!r}): no full batch "
            f"exists. Use a smaller batch_size or more data."
        )
    return steps


def view_pairs(data, augmentation, batch_size, seed=0, start_step=0,
               steps=None):
    """A `tf.data.Dataset` of `(view1, view2)` batches for SSL pretraining.

    Batch `n` is a pure function of `(seed, n)`: its epoch is
    `n // steps_per_epoch`, whose example order is a stateless permutation
    seeded by `(seed, epoch)`; its augmentation seed is derived from
    `(seed, n)`. So `start_step=k` yields exactly batch `k` of a run started
    at 0, without computing the skipped batches: a killed run resumes where
    it stopped. Each epoch visits every example at most once (the last
    `num_examples % batch_size` of its permutation are dropped).

    Args:
        data: an `ImageData` or `ImageFiles`.
        augmentation: a `TwoViewAugmentation` (or any callable
            `(uint8 batch, seed [2]) -> (view1, view2)`).
        batch_size: int, examples per batch (drop remainder).
        seed: int, the run's seed.
        start_step: int >= 0, the first batch's index.
        steps: int or `None`: yield this many batches, or repeat forever.

    Returns:
        a dataset of float32 `(view1, view2)` pairs, each
        `(batch_size, h, w, C)`, prefetched. Without `steps` it is infinite:
        give `fit` its `steps_per_epoch` (`steps_per_epoch(data, batch)`).

    Example:

    ```python
    import keras
    from keras_slim.data import TwoViewAugmentation, load, steps_per_epoch
    from keras_slim.data import view_pairs

    data = load("digits", max_examples=64)
    augment = TwoViewAugmentation.from_preset("cifar", image_size=8)
    pairs = view_pairs(data, augment, batch_size=32)
    view1, view2 = next(iter(pairs))
    assert view1.shape == view2.shape == (32, 8, 8, 1)
    steps = steps_per_epoch(data, 32)  # for model.fit(pairs, steps_per_epoch=)
    assert steps == 2
    ```
    """
    _check_augmentation(
        augmentation, "a TwoViewAugmentation (or a callable (images, seed) "
        "-> (view1, view2))", " For a preset: "
        "TwoViewAugmentation.from_preset(name, image_size).")
    gather = _gatherer(_check_data(data))
    return _seeded_batches(
        data, batch_size, seed, start_step, steps,
        lambda indices, batch_seed: augmentation(gather(indices), batch_seed))


def labeled_training_batches(data, augmentation, batch_size, seed=0,
                             start_step=0, steps=None):
    """A `tf.data.Dataset` of augmented `(images, labels)` training batches.

    The supervised twin of `view_pairs`, with the same order and seeds:
    batch `n` is a pure function of `(seed, n)`, so a fine-tuning run
    resumes at `start_step` exactly (`keras-slim finetune`).

    Args:
        data: an `ImageData` or `ImageFiles`.
        augmentation: a `SupervisedAugmentation` (or any callable
            `((uint8 images, labels), seed [2]) -> (images, labels)`).
        batch_size, seed, start_step, steps: as `view_pairs`.

    Returns:
        a dataset of `(float32 (batch_size, h, w, C), int32 (batch_size,))`.

    Example:

    ```python
    from keras_slim.data import SupervisedAugmentation, load
    from keras_slim.data import labeled_training_batches

    data = load("digits", max_examples=64)
    augment = SupervisedAugmentation(image_size=8, crop_scale=(0.5, 1.0))
    images, labels = next(iter(labeled_training_batches(data, augment, 32)))
    assert images.shape == (32, 8, 8, 1) and labels.shape == (32,)
    ```
    """
    _check_augmentation(
        augmentation, "a SupervisedAugmentation (or a callable ((images, "
        "labels), seed) -> (images, labels))")
    gather = _gatherer(_check_data(data))
    labels = tf.constant(data.labels.astype("int32"))

    def make_batch(indices, batch_seed):
        return augmentation((gather(indices), tf.gather(labels, indices)),
                            batch_seed)

    return _seeded_batches(data, batch_size, seed, start_step, steps,
                           make_batch)


def _check_augmentation(augmentation, expected, hint=""):
    if not callable(augmentation):
        raise TypeError(f"`augmentation` must be {expected}, got "
                        f"{augmentation!r}.{hint}")


def _seeded_batches(data, batch_size, seed, start_step, steps, make_batch):
    """`make_batch(example indices, seed [2])` for each step from
    `start_step`: the order and the seeds of `view_pairs`."""
    per_epoch = steps_per_epoch(data, batch_size)
    start_step = _check_count("start_step", start_step, minimum=0)
    if steps is not None:
        steps = _check_count("steps", steps, minimum=1)
    seed = int(seed)
    indices = _index_batches(data.num_examples, batch_size, per_epoch, seed,
                             start_step, steps)
    base = tf.constant([seed, _AUGMENTATION_SALT], tf.int64)

    # Not converted by AutoGraph: the augmentations branch only on static
    # shapes and settings, and converting their source took ~3 s of every
    # run's start (2026-12-01).
    @tf.autograph.experimental.do_not_convert
    def make(step, batch_indices):
        batch_seed = tf.random.experimental.stateless_fold_in(base, step)
        return make_batch(batch_indices, batch_seed)

    return indices.map(make, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True).prefetch(tf.data.AUTOTUNE)


def _index_batches(num_examples, batch_size, per_epoch, seed, start_step,
                   steps):
    """Dataset of `(step, example indices (batch_size,))` from `start_step`.

    One permutation per epoch, reshaped into that epoch's batches; skipping
    into the first epoch only drops index rows, no images.
    """
    first_epoch = start_step // per_epoch
    base = tf.constant([seed, _PERMUTATION_SALT], tf.int64)

    def epoch_batches(epoch):
        order = _permutation(num_examples, base, epoch)
        rows = tf.reshape(order[:per_epoch * batch_size],
                          [per_epoch, batch_size])
        step_numbers = epoch * per_epoch + tf.range(per_epoch, dtype=tf.int64)
        return tf.data.Dataset.from_tensor_slices((step_numbers, rows))

    epochs = tf.data.Dataset.range(first_epoch, _last_epoch(
        start_step, steps, per_epoch))
    batches = epochs.flat_map(epoch_batches)
    batches = batches.skip(start_step - first_epoch * per_epoch)
    # The true length, for tf.data and Keras: infinite without `steps`
    # (then `fit` needs `steps_per_epoch`), else `steps` batches.
    if steps is None:
        return batches.apply(tf.data.experimental.assert_cardinality(
            tf.data.INFINITE_CARDINALITY))
    return batches.take(steps).apply(
        tf.data.experimental.assert_cardinality(steps))


def _last_epoch(start_step, steps, per_epoch):
    if steps is None:
        return 2**62  # as good as forever
    return (start_step + steps - 1) // per_epoch + 1


def _permutation(num_examples, base_seed, epoch):
    """The stateless example order of one epoch (int32 (num_examples,))."""
    epoch_seed = tf.random.experimental.stateless_fold_in(base_seed, epoch)
    keys = tf.random.stateless_uniform([num_examples], epoch_seed)
    return tf.argsort(keys, stable=True)


def labeled_batches(data, batch_size, image_size=None):
    """A `tf.data.Dataset` of `(images, labels)` for evaluation.

    No augmentation, the data set's order, the last partial batch kept.
    Images become float32 in [0, 1], resized whole (bilinear, antialiased)
    to `image_size`: give the training views' size
    (`augmentation.image_size`).

    Args:
        data: an `ImageData` or `ImageFiles`.
        batch_size: int.
        image_size: `None`, an int or `(height, width)`.

    Returns:
        a dataset of `(float32 (b, h, w, C), int32 (b,))`, prefetched.
    """
    data = _check_data(data)
    batch_size = _check_batch_size(batch_size)
    size = _convert.image_size_pair(image_size)
    gather = _gatherer(data)
    labels = tf.constant(data.labels)
    count = data.num_examples

    def batch_at(start):
        stop = tf.minimum(start + batch_size, count)
        batch = tf.cast(gather(tf.range(start, stop)), tf.float32) / 255.0
        if size is not None and tuple(data.image_shape[:2]) != size:
            batch = tf.clip_by_value(
                tf.image.resize(batch, size, antialias=True), 0.0, 1.0)
        return batch, labels[start:stop]

    starts = tf.data.Dataset.range(0, count, batch_size)
    return starts.map(batch_at, num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True).prefetch(tf.data.AUTOTUNE)


def _gatherer(data):
    """`indices -> uint8 images`: from memory, or decoded from the files."""
    if isinstance(data, ImageFiles):
        paths = tf.constant(data.paths)
        return lambda indices: data.decode_batch(tf.gather(paths, indices))
    images = tf.constant(data.images)
    return lambda indices: tf.gather(images, indices)


def _check_data(data):
    if not isinstance(data, (ImageData, ImageFiles)):
        raise TypeError(
            f"Expected an ImageData (from keras_slim.data.load) or an "
            f"ImageFiles (from keras_slim.data.stream), got "
            f"{type(data).__name__}. Wrap arrays with ImageData(images, "
            f"labels, class_names)."
        )
    return data


def _check_batch_size(batch_size):
    return _check_count("batch_size", batch_size, minimum=1)


def _check_count(name, value, minimum):
    if not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"`{name}` must be an int >= {minimum}, got "
                         f"{value!r}.")
    return int(value)

