import keras
import tensorflow as tf
from keras import ops

from keras_slim import losses
from keras_slim.methods._per_batch_rate import PerBatchRate
from keras_slim.methods._plan import sandwich_draws

_NONFINITE = "Non-finite loss at width"
_METRICS = ("loss", "ssl_loss", "distill_loss", "accuracy", "grad_norm",
            "embedding_std")


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimSSL(keras.Model):
    """Base of the slimmable self-supervised recipes: one step, every width.

    `train_step` runs the step's width slots one after the other on the
    batch's two views: for each width it computes the recipe's
    self-supervised loss and distillation loss, takes their gradient and adds
    it to the step's sum, then applies **one** optimizer update (or one per
    width with `per_width_update=True`). Each width's gradient is taken before
    the next width runs (control dependencies), so the step's peak memory is
    about that of the largest width, not of all widths together.

    Losses are summed per example and divided by the global batch size, so
    the gradients are exact under any `tf.distribute` strategy. Width sampling
    is stateless, seeded by `(seed, step)`, identical on every replica.

    Logged per slot and step: `w0.5/loss`, `w0.5/ssl_loss`,
    `w0.5/distill_loss`, `w0.5/accuracy` (contrastive top-1 where defined),
    `w0.5/grad_norm` (of this replica's gradient contribution: the true norm
    on one device), `w0.5/embedding_std` (std of normalized embeddings, a
    collapse signal: about `1/sqrt(dim)` when healthy, 0 when collapsed),
    and the total `loss`.

    Subclasses (the recipes) define `phases()`, `width_outputs()` and
    optionally `step_targets()`, `combine()`, `regularization()`,
    `after_update()`.

    Args:
        backbone: a `keras_slim.backbones.SlimBackbone`.
        seed: int, seed of the width sampling.
        per_width_update: bool, apply the optimizer after each width instead
            of once per step (US3L's official loop). A learning-rate schedule
            is then read at the training step (batches), as the official
            loop sets the rate, not at the optimizer's update count.
        **kwargs: base `keras.Model` arguments.

    References:
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
        - [Zhao et al., SlimCLR, IJCV 2024](https://arxiv.org/abs/2209.15525)
    """

    def __init__(self, backbone, seed=0, per_width_update=False, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.seed = int(seed)
        self.per_width_update = bool(per_width_update)
        self.ssl_step = keras.Variable(
            0, dtype="int64", trainable=False, name="ssl_step",
            aggregation="only_first_replica",
        )
        self._trackers = {}
        self._frozen_ids = set()

    # ------------------------------------------------------------ recipe API
    def phases(self):
        """`[(first_step, [Slot, ...]), ...]`, first_step ascending from 0."""
        raise NotImplementedError

    def step_targets(self, views, training):
        """Stop-gradient tensors shared by all widths of a step (EMA keys)."""
        return {}

    def width_outputs(self, width, views, targets, teacher, training):
        """Outputs at one width: a dict with per-example `ssl`, optional
        per-example `distill` and `accuracy`, an `embedding`, and `teacher`
        (what the teacher slot hands to the other widths)."""
        raise NotImplementedError

    def combine(self, slot, ssl, distill):
        """The slot's loss from its (scalar) SSL and distillation losses."""
        return slot.weight * (ssl + distill)

    def regularization(self, width):
        """An extra scalar loss at `width` (US3L's group regularization)."""
        return 0.0

    def before_targets(self):
        """State updates before the step's targets (MoCo's EMA encoder)."""

    def after_update(self, views, targets):
        """State updates after the optimizer step (EMA encoders, queues)."""

    def freeze_from_gradients(self, layer):
        """Excludes `layer`'s variables (an EMA encoder) from the gradients."""
        self._frozen_ids.update(id(v) for v in layer.trainable_variables)

    # ------------------------------------------------------------ the model
    def call(self, inputs, width=None, training=False):
        """Backbone features at `width` (default: the largest)."""
        return self.backbone(inputs, width=width, training=training)

    @property
    def trainable_weights(self):
        """Trained by the optimizer: everything but the EMA encoders.

        EMA encoders stay `trainable` layers (so their BatchNorms run in
        training mode, as MoCo's key encoder does) but are updated by
        `after_update`, never by gradients.
        """
        return [
            v for v in super().trainable_weights
            if id(v) not in self._frozen_ids
        ]

    @property
    def online_variables(self):
        return self.trainable_variables

    def slot_names(self):
        names = []
        for _, slots in self.phases():
            for slot in slots:
                if slot.name not in names:
                    names.append(slot.name)
        return names

    def _build_trackers(self):
        self._trackers = {"loss": keras.metrics.Mean(name="loss")}
        for name in self.slot_names():
            for metric in _METRICS:
                key = f"{name}/{metric}"
                self._trackers[key] = keras.metrics.Mean(name=key)
        # Recipes create every weight in their constructor.
        self.built = True

    @property
    def metrics(self):
        return list(self._trackers.values())

    def fit(self, *args, **kwargs):
        """`keras.Model.fit`; a non-finite loss stops it naming width and step.

        Raises:
            FloatingPointError: a width's loss became NaN or Inf. The weights
                are those before the failing step.
        """
        try:
            return super().fit(*args, **kwargs)
        except tf.errors.InvalidArgumentError as error:
            if _NONFINITE not in str(error):
                raise
            detail = str(error).split(_NONFINITE, 1)[1].split(";")[0]
            raise FloatingPointError(
                f"{_NONFINITE}{detail} at training step "
                f"{int(self.ssl_step.numpy())} (counted from 0; the weights "
                f"are those before it): lower the learning rate, "
                f"check the inputs for NaN/Inf, or use mixed precision with "
                f"loss scaling."
            ) from None

    def compile(self, optimizer="rmsprop", **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        rate = getattr(self.optimizer, "_learning_rate", None)
        if (self.per_width_update and isinstance(
                rate, keras.optimizers.schedules.LearningRateSchedule)
                and not isinstance(rate, PerBatchRate)):
            self.optimizer._learning_rate = PerBatchRate(rate, self.ssl_step)

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        """Builds the optimizer before the first step, without a data batch.

        Keras 3.15 builds a model under a strategy by reducing a distributed
        batch to one example batch (`strategy.reduce("MEAN", batch)`), which
        fails under `MultiWorkerMirroredStrategy` (keras issue 20585). A
        recipe creates all its weights in its constructor and compiles no
        loss or metric, so the optimizer is all that is left to build.
        """
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)

    # ------------------------------------------------------------ the step
    def train_step(self, data):
        views = self._unpack_views(data)
        self.before_targets()
        targets = self.step_targets(views, training=True)
        grads, values = self._run_phases(views, targets, training=True)
        if not self.per_width_update:
            self._apply(grads)
        # Ordered after the gradients (which depend on the loss checks), so a
        # failed step is not counted.
        with tf.control_dependencies([g for g in grads if g is not None]):
            self.after_update(views, targets)
            self.ssl_step.assign_add(1)
        return _multi_worker_safe(self._record(values))

    def test_step(self, data):
        views = self._unpack_views(data)
        targets = self.step_targets(views, training=False)
        _, values = self._run_phases(views, targets, training=False)
        return _multi_worker_safe(self._record(values))

    def predict_step(self, data):
        if isinstance(data, (tuple, list)):
            data = data[0]
        return self(data, training=False)

    def _run_phases(self, views, targets, training):
        phases = self.phases()
        step = ops.convert_to_tensor(self.ssl_step)
        if len(phases) == 1:
            return self._run_slots(phases[0][1], views, targets, step,
                                   training, dense=False)
        phase = tf.add_n([
            tf.cast(step >= start, tf.int32) for start, _ in phases[1:]
        ])
        branches = [
            (lambda slots=slots: self._run_slots(
                slots, views, targets, step, training, dense=True))
            for _, slots in phases
        ]
        return tf.switch_case(phase, branches)

    def _run_slots(self, slots, views, targets, step, training, dense):
        variables = self.online_variables
        total = [None] * len(variables)
        values = self._empty_values()
        teacher = None
        random_slots = [s for s in slots if not s.is_static]
        draws = None
        if random_slots:
            dense = True
            draws = self.draw_indices(slots, step)
        for slot in slots:
            views = self._after(views, total)
            if slot.is_static:
                grads, slot_values, out = self._run_width(
                    slot, slot.candidates[0], views, targets, teacher,
                    training, dense,
                )
                if slot.is_teacher:
                    teacher = tf.nest.map_structure(
                        tf.stop_gradient, out["teacher"]
                    )
            else:
                grads, slot_values = self._run_random(
                    slot, draws[slot.draw], views, targets, teacher, training
                )
            total = [_add(t, g) for t, g in zip(total, grads)]
            values.update(slot_values)
        values["loss"] = tf.add_n([
            values[f"{n}/loss"] * values[f"{n}/active"]
            for n in self.slot_names()
        ])
        if dense:
            total = [
                tf.zeros_like(v) if g is None else g
                for g, v in zip(total, variables)
            ]
        return total, values

    def draw_indices(self, slots, step):
        """Candidate indices of the random slots' widths at `step`.

        Default: distinct grid widths strictly between the slots' largest and
        smallest (`sandwich_draws`), largest first.
        """
        random_slots = [s for s in slots if not s.is_static]
        grid = random_slots[0].candidates
        return sandwich_draws(self.seed, step, len(grid),
                              self._valid_count(slots, grid),
                              len(random_slots))

    def sampled_widths(self, step):
        """The widths training step `step` runs, in the order it runs them.

        Args:
            step: int, the step (`ssl_step`, counting from 0).

        Returns:
            list of floats (a random slot with no width to draw is left out).
        """
        step = int(step)
        slots = [s for start, s in self.phases() if step >= start][-1]
        draws = None
        if any(not s.is_static for s in slots):
            draws = self.draw_indices(slots, tf.constant(step, tf.int64))
            draws = [int(i) for i in ops.convert_to_numpy(draws)]
        widths = []
        for slot in slots:
            if slot.is_static:
                widths.append(float(slot.candidates[0]))
            elif draws[slot.draw] < len(slot.candidates):
                widths.append(float(slot.candidates[draws[slot.draw]]))
        return widths

    def _valid_count(self, slots, grid):
        smallest = min(min(s.candidates) for s in slots if s.is_static)
        return sum(1 for w in grid if w >= smallest - 1e-9)

    def _run_random(self, slot, index, views, targets, teacher, training):
        variables = self.online_variables

        def branch(width):
            def run():
                grads, values, _ = self._run_width(
                    slot, width, views, targets, teacher, training,
                    dense=True,
                )
                return grads, values
            return run

        def skip():
            values = {k: tf.zeros(()) for k in self._slot_keys(slot.name)}
            return [tf.zeros_like(v) for v in variables], values

        branches = [branch(w) for w in slot.candidates] + [skip]
        return tf.switch_case(index, branches)

    def _slot_keys(self, name):
        return [f"{name}/{m}" for m in _METRICS] + [f"{name}/active"]

    def _empty_values(self):
        values = {}
        for name in self.slot_names():
            for key in self._slot_keys(name):
                values[key] = tf.zeros(())
        return values

    def _run_width(self, slot, width, views, targets, teacher, training,
                   dense):
        variables = self.online_variables
        with tf.GradientTape() as tape:
            out = self.width_outputs(width, views, targets, teacher, training)
            ssl = self._global_mean(out["ssl"])
            distill = 0.0
            if out.get("distill") is not None:
                distill = self._global_mean(out["distill"])
            # Computed once per width: US3L's assembles every full kernel.
            penalty = tf.cast(self.regularization(width), tf.float32)
            loss = self.combine(slot, ssl, distill) + penalty
            # The gradient, hence the update, depends on the check: a
            # non-finite loss stops the step before any weight changes.
            loss = tf.debugging.check_numerics(
                tf.cast(loss, tf.float32),
                f"{_NONFINITE} {width:g} ({slot.name}); lower the learning "
                f"rate or check the inputs for NaN/Inf.",
            )
            scaled = self._scale(loss)
        grads = [None] * len(variables)
        if training:
            grads = tape.gradient(scaled, variables)
            if self.per_width_update:
                self._apply(grads)
        if dense:
            grads = [
                tf.zeros_like(v) if g is None else g
                for g, v in zip(grads, variables)
            ]
        name = slot.name
        accuracy = out.get("accuracy")
        # Logged values are this replica's means; Keras averages the metrics
        # over replicas, which gives the global means (the gradient above
        # uses the global-batch scaling instead).
        ssl_mean = tf.reduce_mean(tf.cast(out["ssl"], tf.float32))
        distill_mean = tf.zeros(())
        if out.get("distill") is not None:
            distill_mean = tf.reduce_mean(tf.cast(out["distill"], tf.float32))
        logged_loss = self.combine(slot, ssl_mean, distill_mean) + penalty
        values = {
            f"{name}/loss": logged_loss,
            f"{name}/ssl_loss": ssl_mean,
            f"{name}/distill_loss": distill_mean,
            f"{name}/accuracy": (
                tf.zeros(()) if accuracy is None
                else tf.reduce_mean(tf.cast(accuracy, tf.float32))
            ),
            f"{name}/grad_norm": self._grad_norm(grads),
            f"{name}/embedding_std": losses.embedding_std(out["embedding"]),
            f"{name}/active": tf.ones(()),
        }
        return grads, values, out

    def _after(self, views, grads):
        """Orders the next width after the previous width's gradients."""
        done = [g for g in grads if g is not None]
        if not done:
            return views
        with tf.control_dependencies(done):
            return tuple(tf.identity(v) for v in views)

    def _global_mean(self, per_example):
        per_example = tf.cast(per_example, tf.float32)
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        count = tf.cast(tf.shape(per_example)[0] * replicas, tf.float32)
        return tf.reduce_sum(per_example) / count

    def _scale(self, loss):
        if hasattr(self.optimizer, "scale_loss"):
            return self.optimizer.scale_loss(loss)
        return loss

    def _grad_norm(self, grads):
        present = [tf.cast(g, tf.float32) for g in grads if g is not None]
        if not present:
            return tf.zeros(())
        norm = tf.linalg.global_norm(present)
        scale = getattr(self.optimizer, "scale_loss", None)
        if scale is not None:
            norm = norm / tf.cast(self.optimizer.scale_loss(1.0), tf.float32)
        return norm

    def _apply(self, grads):
        pairs = [
            (g, v) for g, v in zip(grads, self.online_variables)
            if g is not None
        ]
        self.optimizer.apply([g for g, _ in pairs], [v for _, v in pairs])

    def _record(self, values):
        for key, tracker in self._trackers.items():
            if key == "loss":
                tracker.update_state(values["loss"])
                continue
            name = key.rsplit("/", 1)[0]
            tracker.update_state(
                values[key], sample_weight=values[f"{name}/active"]
            )
        return {key: t.result() for key, t in self._trackers.items()}

    def _unpack_views(self, data):
        if isinstance(data, dict) or not isinstance(data, (tuple, list)):
            raise ValueError(
                f"{type(self).__name__} trains on a dataset of view pairs: "
                f"each element a tuple (view1, view2) of image batches. Got "
                f"an element of type {type(data).__name__}. Build it with "
                f"keras_slim.data or `dataset.map(lambda x: (aug(x), aug(x)))`."
            )
        # `train_on_batch(pair)` arrives as (pair, None, None).
        data = tuple(d for d in data if d is not None)
        if len(data) == 1 and isinstance(data[0], (tuple, list)):
            data = data[0]
        if len(data) != 2:
            raise ValueError(
                f"{type(self).__name__} expects (view1, view2) pairs, got a "
                f"tuple of {len(data)} elements."
            )
        first, second = data
        for name, view in (("view1", first), ("view2", second)):
            if len(view.shape) != 4:
                raise ValueError(
                    f"{name} must be a batch of images (batch, height, width, "
                    f"channels), got shape {tuple(view.shape)}."
                )
        if tuple(first.shape[1:]) != tuple(second.shape[1:]):
            raise ValueError(
                f"The two views must have the same image shape, got "
                f"{tuple(first.shape)} and {tuple(second.shape)}. Crop both "
                f"to one size in the augmentation."
            )
        return first, second

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "backbone": keras.saving.serialize_keras_object(self.backbone),
                "seed": self.seed,
                "per_width_update": self.per_width_update,
            }
        )
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(
            config["backbone"]
        )
        return cls(**config)


def _multi_worker_safe(logs):
    """Logs that Keras 3.15 can reduce under MultiWorkerMirroredStrategy.

    There Keras reduces each log with `strategy.reduce("MEAN", v, axis=0)`,
    which fails on scalars (keras issue 20585); a one-element vector reduces
    to the same mean.
    """
    strategy = tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        return {k: tf.reshape(v, [1]) for k, v in logs.items()}
    return logs


def _add(total, grad):
    if grad is None:
        return total
    if total is None:
        return grad
    return total + grad
