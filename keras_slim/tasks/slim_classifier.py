import keras
from keras import ops

from keras_slim import _backend
from keras_slim._eager_build import EagerOptimizerBuild
from keras_slim._stopped_fit import release_stopped_fit
from keras_slim._width_view import WidthView
from keras_slim.evaluation.calibration import calibrate_batch_norm
from keras_slim.evaluation.calibration import require_calibrated
from keras_slim.layers import SlimDense
from keras_slim.tasks import _sandwich
from keras_slim.tasks import _tf_step
from keras_slim.tasks._checks import check_head_matches
from keras_slim.tasks._checks import int_at_least
from keras_slim.width import width_name


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimClassifier(EagerOptimizerBuild, keras.Model):
    """A slimmable backbone and classifier: one `fit` fine-tunes every width.

    Each training step runs, on one batch of `(images, labels)`, the widths of
    the backbone's list (all of them) or of its range (the *sandwich rule*:
    the largest, `num_random_widths` widths drawn from the range, the
    smallest), largest first, and applies **one** optimizer update with the
    sum of their gradients:

    * the largest width learns from the labels: cross-entropy, with
      `label_smoothing`;
    * every other width learns from the labels too (a width list: the
      slimmable networks' recipe, the default of SlimCLR's supervised
      `main_slim.py`, `inplace_distill=0`), or by *in-place distillation*
      (a width range: US-Nets' recipe): cross-entropy against the largest
      width's softmax of the same step, detached. `inplace_distillation`
      chooses either for both kinds.

    Measured (BENCHMARKS.md 9, CIFAR-10, fine-tuning a SlimCLR-pretrained
    SlimResNet-18 for 10 epochs): with in-place distillation on a width list
    the largest width's loss rises above chance in the first epochs (the
    untrained head teaches the sub-widths, whose gradients move the shared
    weights) and top-1 ends 10-14 points below labels at every width.

    The classifier head is a `SlimDense` on the backbone's pooled features
    with a fixed-size output (`num_classes` logits at every width). Losses are
    summed over the examples and divided by the global batch size, so the
    gradients are exact under a `tf.distribute` strategy (two mirrored
    replicas take the one-device step, `tests/tasks/
    test_finetune_distributed.py`). A range's drawn widths run inside
    `tf.switch_case`, where synchronized BatchNorm cannot all-reduce: on
    several replicas such a backbone trains with `num_random_widths=0`.

    Logged per width: `w0.5/loss` and `w0.5/top1` (top-1 against the labels,
    distilled widths included), and the total `loss`; a range's sampled widths
    log as `wmax`, `wrand1`, ..., `wmin`. `evaluate` reports the same per
    width of the list, or per `stat_widths` of a range (calibrate first).

    Args:
        backbone: a `keras_slim.backbones.SlimBackbone` (pretrained or not).
        num_classes: int >= 2, the number of classes.
        inplace_distillation: `None` (the default: True for a width range,
            False for a list, as the official codes), or a bool: sub-widths
            learn from the largest width's detached predictions (True) or
            from the labels (False).
        label_smoothing: float in [0, 1), smoothing of the largest width's
            (and, without distillation, every width's) one-hot targets.
        num_random_widths: int >= 0, for a width range: widths drawn per step
            between the largest and the smallest (US-Nets: 2).
        grid_step: float > 0, for a width range: random widths are drawn
            from the range's widths every `grid_step` (static shapes: each
            grid width is one traced branch).
        seed: int, seed of the width draws (stateless, one per step).
        **kwargs: base `keras.Model` arguments.

    Example:

    ```python
    import numpy as np
    import keras
    from keras_slim.backbones import SlimResNet
    from keras_slim.tasks import SlimClassifier

    backbone = SlimResNet(depth=10, widths=[1.0, 0.5], base_width=8,
                          stem="cifar", input_shape=(16, 16, 3))
    classifier = SlimClassifier(backbone, num_classes=3)
    classifier.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    x = np.random.default_rng(0).random((8, 16, 16, 3), "float32")
    y = np.arange(8) % 3
    history = classifier.fit(x, y, batch_size=4, epochs=1, verbose=0)
    assert "w0.5/top1" in history.history
    logits = classifier.predict(x, width=0.5, verbose=0)
    assert logits.shape == (8, 3)
    ```

    References:
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
        - [Yu & Huang, Universally Slimmable Networks and Improved Training
          Techniques, ICCV 2019](https://arxiv.org/abs/1903.05134)
    """

    def __init__(self, backbone, num_classes, inplace_distillation=None,
                 label_smoothing=0.0, num_random_widths=2, grid_step=0.05,
                 seed=0, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.num_classes = int_at_least("num_classes", num_classes, 2)
        self.inplace_distillation = (None if inplace_distillation is None
                                     else bool(inplace_distillation))
        if not 0.0 <= float(label_smoothing) < 1.0:
            raise ValueError(f"`label_smoothing` must be in [0, 1), got "
                             f"{label_smoothing!r}.")
        self.label_smoothing = float(label_smoothing)
        self.num_random_widths = int_at_least(
            "num_random_widths", num_random_widths, 0)
        self.grid_step = float(grid_step)
        self.seed = int(seed)
        self.plan = _sandwich.plan(backbone.widths, self.num_random_widths,
                                   self.grid_step)
        self.step_counter = keras.Variable(
            0, dtype="int64", trainable=False, name="step_counter",
            aggregation="only_first_replica")
        backbone.build((None, *backbone.image_shape))
        features = backbone.feature_dim()
        # A backbone whose features keep their size at every width (e.g.
        # MobileNetV2's last 1280 channels) feeds the whole head input.
        sliced = backbone.feature_dim(backbone.widths.smallest) != features
        self.head = SlimDense(self.num_classes, widths=backbone.widths,
                              slice_input=sliced, slice_output=False,
                              input_channels=features, name="classifier")
        self.head.build((None, features))
        check_head_matches(backbone, self.head, self.plan)
        # Every metric made here, not in the first traced step: a variable
        # created inside a replica's step fails under tf.distribute.
        names = [slot.name for slot in self.plan.slots] + [
            width_name(w) for w in self._evaluation_widths()]
        self._trackers = {"loss": keras.metrics.Mean(name="loss")}
        for name in dict.fromkeys(names):
            for key in (f"{name}/loss", f"{name}/top1"):
                self._trackers[key] = keras.metrics.Mean(name=key)
        # Untracked: a view refers back to this model (no tracking cycle).
        self.__dict__["_width_views"] = {}
        self.built = True

    @property
    def distills(self):
        """Whether the sub-widths learn by in-place distillation."""
        if self.inplace_distillation is None:
            return self.backbone.widths.is_range
        return self.inplace_distillation

    # ------------------------------------------------------------ inference
    def call(self, inputs, width=None, training=False):
        """Logits at `width` (default: the largest)."""
        features = self.backbone(inputs, width=width, training=training)
        return ops.cast(self.head(features, width=width), "float32")

    def at_width(self, width):
        """A Keras model computing the logits at `width`, sharing weights.

        Each width has its own model, so its own compiled `predict_function`:
        switching widths never reuses a stale trace.
        """
        width = self.backbone.widths.validate(width)
        if width not in self._width_views:
            self._width_views[width] = WidthView(self, width)
        return self._width_views[width]

    def predict(self, x, width=None, **kwargs):
        """Logits at `width` (default: the largest), as `keras.Model.predict`.

        Raises:
            ValueError: `width` is not one of the backbone's widths, or is an
                uncalibrated width of a range (call `calibrate` first).
        """
        view = self.at_width(width)
        require_calibrated(self.backbone, [view.width])
        return view.predict(x, **kwargs)

    def calibrate(self, images, widths=None, **kwargs):
        """BatchNorm calibration of a width range (a no-op for a list).

        The arguments are those of
        `keras_slim.evaluation.calibrate_batch_norm`: training images,
        `widths` (default: the range's `stat_widths`), `num_batches`, ...
        """
        return calibrate_batch_norm(self.backbone, images, widths=widths,
                                    **kwargs)

    def subnetwork(self, width=None, input_shape=None, name=None):
        """A plain Keras model of standard layers: images to logits at `width`.

        The backbone's `subnetwork(width)` followed by a `Dense` holding the
        head's slice: what `keras_slim.export` converts to a per-width
        classifier file.
        """
        width = self.backbone.widths.validate(width)
        features = self.backbone.subnetwork(width, input_shape=input_shape)
        dense = self.head.to_keras_layer(width, name="logits")
        return keras.Model(features.input, dense(features.output),
                           name=name or f"{self.name}_{width_name(width)}")

    # ------------------------------------------------------------ training
    def train_step(self, data):
        images, labels = self._unpack(data)
        targets = self._hard_targets(labels, self.label_smoothing)
        return self._record(_tf_step.train_step(self, images, targets),
                            labels)

    def test_step(self, data):
        images, labels = self._unpack(data)
        targets = self._hard_targets(labels, 0.0)
        logs = {}
        for width in self._evaluation_widths():
            logits = self(images, width=width, training=False)
            logs[width_name(width)] = (self.mean_loss(targets, logits),
                                       logits)
        return self._record(logs, labels)

    def predict_step(self, data):
        if isinstance(data, (tuple, list)):
            data = data[0]
        return self(data, training=False)

    def evaluate(self, *args, **kwargs):
        """`keras.Model.evaluate` at every width (a range: its stat widths).

        Raises:
            ValueError: an uncalibrated range, or a label that is not an
                integer class index in `[0, num_classes)`.
        """
        require_calibrated(self.backbone, self._evaluation_widths())
        return self._naming_bad_labels(super().evaluate, *args, **kwargs)

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`; a label out of range stops it with a ValueError.

        Raises:
            ValueError: a label is not an integer class index in
                `[0, num_classes)`.
        """
        kwargs = _backend.without_dataset_shuffle(args, kwargs)
        return self._naming_bad_labels(super().fit, *args, **kwargs)

    def _naming_bad_labels(self, run, *args, **kwargs):
        try:
            return run(*args, **kwargs)
        except _tf_step.STEP_ERROR as error:
            if _tf_step.BAD_LABEL not in str(error):
                raise
            release_stopped_fit(error)  # its data iterator: see the module
            raise ValueError(
                f"A label is not a class index in [0, {self.num_classes}) "
                f"(num_classes={self.num_classes}). Check the label column, "
                f"or build the classifier with the data's class count."
            ) from None

    def mean_loss(self, targets, logits):
        """Cross-entropy summed over examples / the global batch size."""
        per_example = -ops.sum(targets * ops.log_softmax(logits), axis=-1)
        return _tf_step.global_mean(per_example)

    def _hard_targets(self, labels, smoothing):
        if keras.backend.is_float_dtype(labels.dtype):
            targets = ops.cast(labels, "float32")
        else:
            targets = _tf_step.checked_one_hot(labels, self.num_classes)
        if smoothing:
            targets = targets * (1.0 - smoothing) + smoothing / self.num_classes
        return targets

    def _unpack(self, data):
        if not isinstance(data, (tuple, list)) or len(data) < 2 \
                or data[1] is None:
            raise ValueError(
                "SlimClassifier trains on (images, labels) batches: call "
                "fit(images, labels) or fit on a dataset of (images, labels)."
            )
        images, labels = data[0], data[1]
        if len(labels.shape) == 2 and labels.shape[-1] == 1:
            labels = ops.squeeze(labels, axis=-1)
        if len(labels.shape) == 2 and labels.shape[-1] != self.num_classes:
            raise ValueError(
                f"One-hot labels must have num_classes={self.num_classes} "
                f"columns, got shape {tuple(labels.shape)}: the classifier "
                f"was built for another class count.")
        if len(labels.shape) == 2 and not keras.backend.is_float_dtype(labels.dtype):
            raise ValueError(
                f"Labels of shape {tuple(labels.shape)} must be float one-hot "
                f"rows, or give integer class indices of shape (batch,).")
        if len(labels.shape) not in (1, 2):
            raise ValueError(
                f"Labels must be class indices (batch,) or one-hot rows "
                f"(batch, {self.num_classes}), got shape "
                f"{tuple(labels.shape)}.")
        return images, labels

    def _evaluation_widths(self):
        widths = self.backbone.widths
        return list(widths.stat_widths if widths.is_range else widths)

    def _record(self, logs, labels):
        """Updates and returns the step's metrics: total, per-width loss, top-1."""
        if keras.backend.is_float_dtype(labels.dtype):
            labels = ops.argmax(labels, axis=-1)
        labels = ops.cast(labels, "int32")
        total = ops.sum(ops.stack([loss for loss, _ in logs.values()]))
        values = {"loss": _tf_step.replica_mean(total)}
        for name, (loss, logits) in logs.items():
            values[f"{name}/loss"] = _tf_step.replica_mean(loss)
            values[f"{name}/top1"] = ops.cast(
                ops.argmax(logits, axis=-1) == labels, "float32")
        results = {}
        for key, value in values.items():
            tracker = self._metric(key)
            tracker.update_state(value)
            results[key] = tracker.result()
        return results

    def _metric(self, key):
        return self._trackers[key]

    @property
    def metrics(self):
        return list(self._trackers.values())

    # ------------------------------------------------------------ config
    def get_config(self):
        config = super().get_config()
        config.update({
            "backbone": keras.saving.serialize_keras_object(self.backbone),
            "num_classes": self.num_classes,
            "inplace_distillation": self.inplace_distillation,
            "label_smoothing": self.label_smoothing,
            "num_random_widths": self.num_random_widths,
            "grid_step": self.grid_step,
            "seed": self.seed,
        })
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(
            config["backbone"])
        return cls(**config)

