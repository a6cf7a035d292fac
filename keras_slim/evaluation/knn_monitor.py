import inspect
import warnings

import keras

from keras_slim.evaluation import _inputs
from keras_slim.evaluation.calibration import calibrate_batch_norm
from keras_slim.evaluation.knn import evaluate_knn
from keras_slim.width import width_name

# How far up the call stack `on_train_begin` looks for the CallbackList
# that calls it (a subclass's `on_train_begin` calling super adds frames).
_MAX_FRAMES = 8


@keras.saving.register_keras_serializable(package="keras_slim")
class KNNMonitor(keras.callbacks.Callback):
    """Logs the kNN top-1 of every width at the end of chosen epochs.

    Every `every_n_epochs` epochs (after epochs `n, 2n, ...`, counted from 1)
    it runs `evaluate_knn` on the backbone and writes `w0.5/knn_top1` (one
    key per width) into the epoch's `logs`, so the values reach the progress
    bar, `History` (`history.history["w0.5/knn_top1"]`, one value per
    evaluated epoch), `TensorBoard` (`epoch_w0.5/knn_top1`), `CSVLogger`,
    `EarlyStopping(monitor=...)` and `ModelCheckpoint(monitor=...)`.

    Callback order: Keras passes one `logs` dict to the callbacks in list
    order, so a callback listed before the monitor would not see its values
    (fit appends its own `History` after your callbacks, but a `TensorBoard`
    listed first would miss them). The monitor therefore moves itself to the
    front of the running callback list when training begins; its values
    reach every other callback whatever the order you give. If Keras'
    internals ever change so that the list cannot be found, it warns and
    stays where it is: then list it first yourself.

    For a width range, `calibrate_bn=True` first re-calibrates the BatchNorm
    statistics of the evaluated widths on the train images (the weights moved
    since the last calibration).

    Args:
        train_images: the kNN bank's images `(N, H, W, C)` in [0, 1], or a
            `tf.data.Dataset` of `(images, labels)` batches (then
            `train_labels=None`).
        train_labels: int class ids `(N,)`, or `None` with a dataset.
        test_images: query images, same forms.
        test_labels: int class ids, or `None` with a dataset.
        every_n_epochs: int, evaluation period in epochs.
        widths: widths to evaluate (default: the width list, or a range's
            `stat_widths`).
        k: int, neighbours (capped at the bank size).
        temperature: float, vote weight `exp(cosine / temperature)`.
        batch_size: int, images per forward pass.
        backbone: the `SlimBackbone` to evaluate (default: `model.backbone`
            of the model being trained, e.g. a `SlimCLR`).
        calibrate_bn: bool, calibrate a width range's BatchNorm statistics
            on `train_images` before each evaluation (no effect for a width
            list). With False the widths must have been calibrated.
        calibration_batches: int or `None`, calibration batches per width
            (default: one pass over `train_images`).

    Attributes:
        results: dict `{epoch index (from 0): {width: top-1}}` of every
            evaluation so far.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_slim.backbones import SlimResNet
    from keras_slim.evaluation import KNNMonitor
    from keras_slim.tasks import SlimClassifier

    backbone = SlimResNet(depth=10, base_width=8, widths=[1.0, 0.5],
                          input_shape=(8, 8, 3))
    # Any model that trains the backbone; a SlimCLR recipe in practice.
    model = SlimClassifier(backbone, num_classes=2)
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    images = np.random.default_rng(0).random((8, 8, 8, 3), "float32")
    labels = np.arange(8) % 2
    monitor = KNNMonitor(images, labels, images[::-1], labels[::-1],
                         every_n_epochs=1, k=3, backbone=backbone)
    history = model.fit(images, labels, epochs=2, verbose=0,
                        callbacks=[monitor])
    assert len(history.history["w0.5/knn_top1"]) == 2  # one per epoch
    ```

    References:
        - [Wu et al., Unsupervised Feature Learning via Non-Parametric
          Instance Discrimination, CVPR 2018](https://arxiv.org/abs/1805.01978)
        - [Zhao et al., SlimCLR, IJCV 2024](https://arxiv.org/abs/2209.15525)
    """

    def __init__(self, train_images, train_labels, test_images, test_labels,
                 every_n_epochs=1, widths=None, k=200, temperature=0.1,
                 batch_size=256, backbone=None, calibrate_bn=True,
                 calibration_batches=None):
        super().__init__()
        self.train_images = _checked_images(train_images, "train_images")
        self.train_labels = _checked_labels(
            train_labels, self.train_images, "train_labels"
        )
        self.test_images = _checked_images(test_images, "test_images")
        self.test_labels = _checked_labels(
            test_labels, self.test_images, "test_labels"
        )
        self.every_n_epochs = _inputs.check_positive_int(
            every_n_epochs, "every_n_epochs"
        )
        self.widths = None if widths is None else list(
            [widths] if isinstance(widths, (int, float)) else widths
        )
        self.k = _inputs.check_positive_int(k, "k")
        self.temperature = _inputs.check_positive_float(
            temperature, "temperature"
        )
        self.batch_size = _inputs.check_positive_int(batch_size, "batch_size")
        if backbone is not None:
            _inputs.check_backbone(backbone)
        self.backbone = backbone
        self.calibrate_bn = bool(calibrate_bn)
        if calibration_batches is not None:
            _inputs.check_positive_int(
                calibration_batches, "calibration_batches"
            )
        self.calibration_batches = calibration_batches
        self.results = {}

    # ---------------------------------------------------------------- hooks
    def on_train_begin(self, logs=None):
        backbone = self._backbone()
        # Fail before the first epoch, not after it.
        _inputs.resolve_widths(backbone, self.widths)
        self._move_to_front()

    def on_epoch_end(self, epoch, logs=None):
        if (epoch + 1) % self.every_n_epochs:
            return
        accuracies = self.evaluate()
        self.results[epoch] = accuracies
        if logs is not None:
            for width, top1 in accuracies.items():
                logs[f"{width_name(width)}/knn_top1"] = top1

    def evaluate(self):
        """`{width: top-1}` of the backbone now (calibrating a range)."""
        self._sync_trained_weights()
        backbone = self._backbone()
        widths = _inputs.resolve_widths(backbone, self.widths)
        if self.calibrate_bn and backbone.widths.is_range:
            calibrate_batch_norm(
                backbone, self.train_images, widths=widths,
                num_batches=self.calibration_batches,
                batch_size=self.batch_size,
            )
        return evaluate_knn(
            backbone, self.train_images, self.train_labels, self.test_images,
            self.test_labels, widths=widths, k=self.k,
            temperature=self.temperature, batch_size=self.batch_size,
        )

    # ------------------------------------------------------------- helpers
    def _backbone(self):
        if self.backbone is not None:
            return self.backbone
        backbone = getattr(self.model, "backbone", None)
        if backbone is None:
            raise ValueError(
                f"KNNMonitor found no `backbone` attribute on the model "
                f"{getattr(self.model, 'name', self.model)!r}: pass "
                f"KNNMonitor(..., backbone=your_backbone)."
            )
        return _inputs.check_backbone(backbone, "model.backbone")

    def _sync_trained_weights(self):
        """Puts the weights `fit` is training into the model's variables.

        On JAX Keras's trainer holds the model's state as arrays during
        `fit` and writes them back at the end of each epoch, or on demand
        (`jax_state_sync`, which also makes it read the variables again
        before its next step, so a calibration is kept). Syncing here lets
        the monitor evaluate the current weights wherever it is called
        from. TensorFlow trains the variables themselves: nothing to do.
        """
        sync = getattr(self._model, "jax_state_sync", None)
        if sync is not None:
            sync()

    def _move_to_front(self):
        """Puts this monitor first in the CallbackList running it."""
        frame = inspect.currentframe()
        try:
            for _ in range(_MAX_FRAMES):
                frame = frame.f_back
                if frame is None:
                    break
                caller = frame.f_locals.get("self")
                if isinstance(caller, keras.callbacks.CallbackList) and any(
                    c is self for c in caller.callbacks
                ):
                    # A new list object: the loop now calling
                    # `on_train_begin` over the old one is not disturbed.
                    caller.callbacks = [self] + [
                        c for c in caller.callbacks if c is not self
                    ]
                    return
        finally:
            del frame
        warnings.warn(
            "KNNMonitor could not find the callback list running it, so "
            "callbacks listed before it will not see its `*/knn_top1` "
            "values. List the KNNMonitor first in `callbacks`.",
            stacklevel=2,
        )

    def get_config(self):
        return {
            "train_images": self.train_images,
            "train_labels": self.train_labels,
            "test_images": self.test_images,
            "test_labels": self.test_labels,
            "every_n_epochs": self.every_n_epochs,
            "widths": self.widths,
            "k": self.k,
            "temperature": self.temperature,
            "batch_size": self.batch_size,
            "backbone": self.backbone,
            "calibrate_bn": self.calibrate_bn,
            "calibration_batches": self.calibration_batches,
        }

    @classmethod
    def from_config(cls, config):
        return cls(**config)


def _checked_images(images, name):
    if _inputs.is_dataset(images):
        return images
    return _inputs.as_images(images, name)


def _checked_labels(labels, images, name):
    if labels is None:
        if not _inputs.is_dataset(images):
            raise ValueError(
                f"`{name}` is missing: pass integer class ids, or a dataset "
                f"of (images, labels) batches as the images."
            )
        return None
    count = None if _inputs.is_dataset(images) else len(images)
    return _inputs.as_labels(labels, name, count)
