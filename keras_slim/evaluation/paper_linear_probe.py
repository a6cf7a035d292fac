"""SlimCLR's linear evaluation protocol (`main_ssl_lincls.py`), all widths.

Unlike `linear_probe` (cached unaugmented features, Adam: fast on a CPU),
this is the protocol the paper's numbers come from: the frozen backbone
(BatchNorm in inference mode) runs on freshly augmented crops every epoch
(random resized crop, scale 0.08-1, and a horizontal flip), and the
switchable linear probe (one `Dense` per width) trains with SGD, momentum
0.9, no weight decay and a step schedule (the MoCo v2 script: rate 60,
x0.1 at epochs 60 and 80 of 100). Jointly (`--inplace_distill 1
--inplace_distill_mixed 1`): the largest width learns from the labels; every
other width from `(CE + soft CE to the largest width's detached softmax) / 2`;
the width losses are summed (`--slim_loss sum`).

The crops are TensorFlow's stateless image ops (`_tf_crops.py`) on either
backend, so on JAX this protocol needs TensorFlow installed; the probe's
step runs on the Keras backend.
"""

import importlib

import keras
import numpy as np
from keras import ops

from keras_slim import _backend
from keras_slim.evaluation import _inputs
from keras_slim.evaluation._compiled import float_batch
from keras_slim.evaluation._compiled import gradient_step
from keras_slim.evaluation.linear_probe_result import LinearProbeResult
from keras_slim.optimizers.coupled_sgd import CoupledSGD

__all__ = ["paper_linear_probe"]


def paper_linear_probe(backbone, train_images, train_labels, test_images,
                       test_labels, widths=None, epochs=100, batch_size=256,
                       learning_rate=60.0, milestones=(60, 80),
                       momentum=0.9, joint=True, crop_scale=(0.08, 1.0),
                       seed=0, num_classes=None):
    """SlimCLR's switchable linear probe, trained as the paper does.

    Args:
        backbone: a `keras_slim.backbones.SlimBackbone` (unchanged: its
            BatchNorm runs in inference mode).
        train_images, train_labels: float images `(N, H, W, C)` in [0, 1] and
            int class ids.
        test_images, test_labels: the same for the evaluation (uncropped).
        widths: widths to probe (default: every width with statistics).
        epochs: passes over the (re-augmented) training images.
        batch_size: images per step.
        learning_rate: SGD's initial rate (official MoCo v2: 60; MoCo v3 and
            SimCLR scripts use 0.4 with a cosine: pass `milestones=None`).
        milestones: epochs at which the rate is multiplied by 0.1, or `None`
            for a cosine over the run.
        momentum: SGD momentum (no weight decay, as the official script).
        joint: the switchable probe's in-place distillation (official); False
            trains each width's probe on the labels alone.
        crop_scale: area range of the random resized crop.
        seed: seed of the batch order and of the crops.
        num_classes: int or `None` (1 + the largest label).

    Returns:
        `LinearProbeResult`: `{width: test top-1}`, `.classifiers`
        `{width: keras.layers.Dense}` on the raw features.

    Raises:
        ImportError: TensorFlow is not installed (its image ops make the
            crops, on either backend).

    Example:

    ```python
    from keras_slim.backbones import SlimResNet
    from keras_slim.data import load
    from keras_slim.evaluation import paper_linear_probe

    # Digits, 8x8 grey; one epoch of the paper's 100 (random crops, SGD with
    # learning rate 60, steps at epochs 60 and 80).
    digits = load("digits", "test", max_examples=8)
    x = digits.images / 255.0
    result = paper_linear_probe(
        SlimResNet(depth=10, base_width=8, widths=[1.0, 0.5],
                   input_shape=(8, 8, 1)),
        x, digits.labels, x, digits.labels, epochs=1, batch_size=8)
    assert sorted(result) == [0.5, 1.0]
    ```

    References:
        - [Zhao et al., Slimmable Networks for Contrastive Self-supervised
          Learning, IJCV 2024](https://arxiv.org/abs/2209.15525)
    """
    _inputs.check_backbone(backbone)
    widths = _inputs.resolve_widths(backbone, widths)
    epochs = _inputs.check_positive_int(epochs, "epochs")
    batch_size = _inputs.check_positive_int(batch_size, "batch_size")
    train_x, train_y = _arrays(train_images, train_labels, "train")
    test_x, test_y = _arrays(test_images, test_labels, "test")
    num_classes = _inputs.resolve_num_classes(
        num_classes, ("train_labels", train_y), ("test_labels", test_y))
    # The crops are TensorFlow's image ops, on either backend.
    _backend.require_tensorflow("paper_linear_probe (its random crops)")
    crops = importlib.import_module(
        "keras_slim.evaluation._tf_crops").crop_function(
            crop_scale, train_x.shape[1:3])
    heads = {w: _head(backbone, w, num_classes, seed + i)
             for i, w in enumerate(widths)}
    steps = max(1, len(train_x) // batch_size)
    optimizer = CoupledSGD(
        _rate(learning_rate, milestones, epochs, steps), momentum=momentum)
    variables = [v for w in widths for v in heads[w].trainable_variables]
    step = gradient_step(_loss_function(backbone, heads, widths, joint),
                         variables, optimizer, backbone.weights)
    rng = np.random.default_rng(seed)
    for epoch in range(epochs):
        order = rng.permutation(len(train_x))
        for i in range(steps):
            rows = order[i * batch_size:(i + 1) * batch_size]
            views = crops(train_x[rows], [seed, epoch * steps + i])
            step(float_batch(views), ops.convert_to_tensor(train_y[rows]))
    accuracies = {w: _top1(backbone, heads[w], w, test_x, test_y, batch_size)
                  for w in widths}
    return LinearProbeResult(accuracies, heads, num_classes, joint)


def _arrays(images, labels, split):
    images = np.asarray(images, np.float32)
    labels = np.asarray(labels).astype(np.int64).reshape(-1)
    if images.ndim != 4 or len(images) != len(labels):
        raise ValueError(
            f"{split} images must be (N, H, W, C) with one label each; got "
            f"{images.shape} images and {labels.shape} labels.")
    return images, labels


def _head(backbone, width, num_classes, seed):
    # PyTorch's default nn.Linear init (the official switchable probe keeps
    # it): weights and bias uniform in +-1/sqrt(fan_in); seeded.
    features = backbone.feature_dim(width)
    limit = 1.0 / np.sqrt(features)
    dense = keras.layers.Dense(
        num_classes, name=f"probe_w{width:g}",
        kernel_initializer=keras.initializers.RandomUniform(
            -limit, limit, seed=seed),
        bias_initializer=keras.initializers.RandomUniform(
            -limit, limit, seed=seed + 1000))
    dense.build((None, features))
    return dense


def _rate(learning_rate, milestones, epochs, steps):
    if milestones is None:
        return keras.optimizers.schedules.CosineDecay(
            learning_rate, epochs * steps)
    boundaries = [int(m) * steps for m in milestones]
    values = [learning_rate * 0.1 ** i for i in range(len(boundaries) + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        boundaries, values)


def _loss_function(backbone, heads, widths, joint):
    largest = widths[0]

    def loss_fn(constants, views, labels):
        total, soft = 0.0, None
        for width in widths:
            features = ops.stop_gradient(
                backbone(views, width=width, training=False))
            logits = heads[width](features)
            hard = keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True)
            if width == largest:
                soft = ops.stop_gradient(ops.softmax(logits))
                loss = ops.mean(hard)
            elif joint:
                distill = keras.losses.categorical_crossentropy(
                    soft, logits, from_logits=True)
                loss = ops.mean(0.5 * (hard + distill))
            else:
                loss = ops.mean(hard)
            total += loss
        return total

    return loss_fn


def _top1(backbone, head, width, images, labels, batch_size):
    correct = 0
    for start in range(0, len(images), batch_size):
        features = backbone(images[start:start + batch_size], width=width,
                            training=False)
        predicted = np.argmax(np.asarray(head(features)), axis=1)
        correct += int(np.sum(predicted == labels[start:start + batch_size]))
    return correct / len(images)
