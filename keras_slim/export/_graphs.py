"""The Keras model and the SavedModels exported for each width."""

import contextlib
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from keras_slim.export.conversion import INPUT_NAME


def width_model(backbone, width, image_shape, classifier=None):
    """The plain Keras network of one width, with the classifier if given.

    Outputs `{"features": ...}` or `{"features": ..., "logits": ...}`.
    """
    network = backbone.subnetwork(width, input_shape=image_shape)
    images = keras.Input(shape=image_shape, name=INPUT_NAME)
    features = network(images)
    outputs = {"features": features}
    if classifier is not None:
        outputs["logits"] = classifier(features)
    return keras.Model(images, outputs, name=network.name)


def serving_function(model, image_shape):
    """`model` in inference mode as a concrete function of a batch of images
    of `image_shape`: traced here, once; every export file of the width
    (its SavedModel, its frozen graphs, the reference outputs) reuses it."""
    spec = tf.TensorSpec([None, *image_shape], tf.float32, name=INPUT_NAME)

    @tf.function(input_signature=[spec])
    def serve(images):
        return dict(model(images, training=False))

    return serve.get_concrete_function()


def serving_outputs(serve, images, batch_size=64):
    """`{name: array}` of a serving function on `images`, in batches."""
    parts = [serve(tf.constant(images[start:start + batch_size]))
             for start in range(0, len(images), batch_size)]
    return {name: np.concatenate([p[name].numpy() for p in parts])
            for name in parts[0]}


def save_width_model(model, serve, path):
    """A SavedModel (variables kept) with `serve` (see `serving_function`)
    as its one `serving_default` signature."""
    module = tf.Module()
    module.model = model
    with atomic_directory(path) as tmp:
        tf.saved_model.save(module, tmp,
                            signatures={"serving_default": serve})


def save_bundle(servings, path):
    """One SavedModel with a signature per key, weights as constants.

    `servings` maps each signature key to a `serving_function` (traced
    already: an export traces each width once for all its files).

    Constants, not variables: from a SavedModel of a `tf.Module` the
    converter keeps variables as run-time resources (READ_VARIABLE ops),
    which stops BatchNorm folding, breaks int8 calibration and gave NaN
    outputs. This is the SavedModel the converter reads.
    """
    from tensorflow.python.framework.convert_to_constants import (
        convert_variables_to_constants_v2)

    signatures = {}
    for key, serve in servings.items():
        frozen = convert_variables_to_constants_v2(serve)
        names = sorted(serve.structured_outputs.keys())
        [spec] = serve.structured_input_signature[0]
        signatures[key] = _frozen_signature(frozen, names, spec)
    tf.saved_model.save(tf.Module(), path, signatures=signatures)


def _frozen_signature(frozen, names, spec):
    @tf.function(input_signature=[spec])
    def serve(images):
        # A frozen function returns its outputs flattened, keys sorted.
        return dict(zip(names, tf.nest.flatten(frozen(images))))
    return serve.get_concrete_function()


@contextlib.contextmanager
def atomic_directory(path):
    """Write a folder under a temporary name, then put it at `path`.

    A previous folder at `path` is replaced only once the new one is
    complete; a failure leaves it as it was.
    """
    parent = os.path.dirname(os.path.abspath(path))
    os.makedirs(parent, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.",
                           suffix=".partial", dir=parent)
    try:
        yield tmp
        if os.path.exists(path):
            old = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.",
                                   suffix=".old", dir=parent)
            os.replace(path, os.path.join(old, "x"))
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
