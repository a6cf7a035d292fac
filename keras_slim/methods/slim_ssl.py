import importlib
import inspect

import keras
from keras import ops

from keras_slim import _backend
from keras_slim._eager_build import EagerOptimizerBuild
from keras_slim._stopped_fit import release_stopped_fit
from keras_slim.heads import SlimMLPHead
from keras_slim.methods._step_logs import METRICS
from keras_slim.methods._step_logs import nonfinite_message
from keras_slim.methods._per_batch_rate import PerBatchRateCompile
from keras_slim.methods._plan import distinct_draws
from keras_slim.methods._plan import distinct_drawable
from keras_slim.methods._registry import base_class


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimSSL(PerBatchRateCompile, EagerOptimizerBuild, keras.Model):
    """Base of the slimmable self-supervised recipes: one step, every width.

    `train_step` runs the step's width slots one after the other on the
    batch's two views: for each width it computes the recipe's
    self-supervised loss and distillation loss, takes their gradient and adds
    it to the step's sum, then applies **one** optimizer update (or one per
    width with `per_width_update=True`). Each width's gradient is taken before
    the next width runs (control dependencies), so the step's peak memory is
    about that of the largest width, not of all widths together.

    Losses are summed per example and divided by the global batch size, so
    the gradients are exact under any distribution strategy. Width sampling
    is stateless, seeded by `(seed, step)`, identical on every replica.

    Logged per slot and step: `w0.5/loss`, `w0.5/ssl_loss`,
    `w0.5/distill_loss`, `w0.5/accuracy` (contrastive top-1 where defined),
    `w0.5/grad_norm` (of this replica's gradient contribution: the true norm
    on one device), `w0.5/embedding_std` (std of normalized embeddings, a
    collapse signal: about `1/sqrt(dim)` when healthy, 0 when collapsed),
    and the total `loss`.

    Subclasses (the recipes) define `phases()`, `width_outputs()` and
    optionally `step_targets()`, `combine()`, `regularization()`,
    `after_update()`. A recipe registers itself
    (`keras_slim.methods.register_recipe`) and declares what the config and
    the builders read: `recipe_name`, `default_base` (its bases are those
    registered for it), `width_kind` (`"list"` or `"range"`),
    `learning_rate_per`, `run_owned_options`, and `run_arguments()`.

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

    # What the registry reads (see the class docstring).
    recipe_name = None
    default_base = None
    width_kind = "list"
    learning_rate_per = "batch"
    # Constructor arguments a pretraining run sets from other config values.
    run_owned_options = ("backbone", "base", "seed")
    # Attribute prefix of a base's momentum encoder (`key_backbone`).
    momentum_encoder_prefix = "key"
    # The recipe's own constructor arguments `get_config` returns.
    config_keys = ()

    # ------------------------------------------------------------ registry
    @classmethod
    def options(cls):
        """The recipe's constructor arguments and their defaults."""
        options = {}
        for klass in reversed(cls.__mro__):
            if klass.__module__.startswith("keras_slim"):
                params = inspect.signature(klass.__init__).parameters
                options.update({
                    name: p.default for name, p in params.items()
                    if name not in ("self", "kwargs")})
        return options

    @classmethod
    def config_problems(cls, config):
        """`[(key path, message)]`: what the recipe refuses in a
        `keras_slim.config.RunConfig` whose keys are each valid."""
        is_range = isinstance(config.backbone.widths, dict)
        if cls.width_kind == "range" and not is_range:
            return [("backbone.widths", f"{cls.recipe_name} trains a width "
                                        f"range: use {{min: 0.25, max: 1.0}}")]
        if cls.width_kind == "list" and is_range:
            return [("backbone.widths", f"{cls.recipe_name} trains a width "
                                        f"list, e.g. [1.0, 0.5, 0.25]")]
        return []

    @classmethod
    def run_arguments(cls, total_steps, slow_start_steps, steps_per_epoch):
        """Constructor arguments a run sets from its length."""
        return {}

    @classmethod
    def from_run_config(cls, backbone, config, total_steps, slow_start_steps,
                        steps_per_epoch):
        """The recipe of a `keras_slim.config.RunConfig` around `backbone`."""
        spec = config.method
        options = dict(spec.options)
        options["seed"] = config.seed
        base = spec.base or cls.default_base
        for key, value in base_class(base, cls.recipe_name).run_options(
                total_steps).items():
            options.setdefault(key, value)
        options.update(cls.run_arguments(total_steps, slow_start_steps,
                                         steps_per_epoch))
        return cls(backbone, base=base, **options)

    def __init__(self, backbone, seed=0, per_width_update=False, **kwargs):
        super().__init__(**kwargs)
        self.backbone = backbone
        self.seed = int(seed)
        self.per_width_update = bool(per_width_update)
        # int32 on JAX, whose default configuration has no int64.
        self.ssl_step = keras.Variable(
            0, dtype="int64" if _backend.is_tensorflow() else "int32",
            trainable=False, name="ssl_step",
            aggregation="only_first_replica",
        )
        self._trackers = {}
        self._frozen_ids = set()

    # ------------------------------------------------------------ recipe API
    def phases(self):
        """`[(first_step, [Slot, ...]), ...]`, first_step ascending from 0."""
        raise NotImplementedError

    def step_targets(self, views, training):
        """Stop-gradient tensors shared by all widths of a step (EMA keys):
        the base method's."""
        return self.base_method.step_targets(views, training)

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
        self.base_method.before_targets()

    def after_update(self, views, targets):
        """State updates after the optimizer step (EMA encoders, queues)."""
        self.base_method.after_update(views, targets)

    def head_options(self):
        """`SlimMLPHead` arguments of every head of the recipe's style."""
        return {}

    def make_head(self, name, projector, **options):
        """A `SlimMLPHead` attribute `name` of the recipe's style
        (`head_options`, then `options`); a projector's input follows the
        backbone's features, a predictor's is the embedding."""
        widths = self.backbone.widths
        feature_dim = self.backbone.feature_dim()
        slice_input = projector and (
            self.backbone.feature_dim(widths.smallest) != feature_dim)
        head = SlimMLPHead(
            self.hidden_dim, self.projection_dim, widths=widths,
            slice_input=slice_input, synchronized=self.backbone.synchronized,
            name=name, **self.head_options(), **options,
        )
        head.build((None, feature_dim if projector else self.projection_dim))
        setattr(self, name, head)
        return head

    def freeze_from_gradients(self, layer):
        """Excludes `layer`'s variables (an EMA encoder) from the gradients."""
        self._frozen_ids.update(id(v) for v in layer.trainable_variables)

    # ------------------------------------------------------------ the model
    def call(self, inputs, width=None, training=False):
        """Backbone features at `width` (default: the largest)."""
        return self.backbone(inputs, width=width, training=training)

    def project(self, images, width, training):
        """The online projector's embedding of `images` at `width`."""
        features = self.backbone(images, width=width, training=training)
        return self.projector(features, width=width, training=training)

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
            for metric in METRICS:
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
        if getattr(self, "optimizer", None) is None:  # Keras says compiled
            raise RuntimeError(f"{self.name} has no optimizer (never "
                               f"compiled, or loaded uncompiled): call "
                               f"compile() before fit().")
        kwargs = _backend.without_dataset_shuffle(args, kwargs)
        steps = _step_module()
        extra = steps.fit_callbacks(self)
        if extra:
            kwargs["callbacks"] = list(kwargs.get("callbacks") or []) + extra
        try:
            return super().fit(*args, **kwargs)
        except steps.STEP_ERROR as error:
            message = nonfinite_message(
                error, int(ops.convert_to_numpy(self.ssl_step)))
            if message is None:
                raise
            release_stopped_fit(error)  # its data iterator: see the module
            raise FloatingPointError(message) from None

    # ------------------------------------------------------------ the step
    # On TensorFlow Keras calls `train_step(data)`; on JAX
    # `train_step(state, data)` (state: the variables' arrays).
    def train_step(self, *args):
        *state, data = args
        return _step_module().train_step(self, *state, self._unpack_views(data))

    def test_step(self, *args):
        *state, data = args
        return _step_module().test_step(self, *state,
                                        self._unpack_views(data))

    def predict_step(self, *args):
        *state, data = args
        if isinstance(data, (tuple, list)):
            data = data[0]
        if state:
            return _step_module().predict_step(self, *state, data)
        return self(data, training=False)

    def draw_indices(self, slots, step):
        """Candidate indices of the random slots' widths at `step`: grid
        widths strictly inside the phase, distinct, largest first (as
        `sandwich_draws`)."""
        return distinct_draws(self.seed, step, slots)

    def drawable_indices(self, slots):
        """The candidate indices `draw_indices(slots, step)` can return at
        some step (the skip aside): the compiled step traces only these.
        Override it with `draw_indices` (else every candidate is traced)."""
        return distinct_drawable(slots)

    def sampled_widths(self, step):
        """The widths training step `step` runs, in the order it runs them.

        Args:
            step: int, the step (`ssl_step`, counting from 0).

        Returns:
            list of floats (a random slot with no width to draw is left out).
        """
        return list(self.slot_widths(step).values())

    def slot_widths(self, step):
        """`{slot name: width}` of the slots training step `step` runs, in
        the order it runs them (a random slot with no width to draw is left
        out)."""
        step = int(step)
        slots = [s for start, s in self.phases() if step >= start][-1]
        draws = None
        if any(not s.is_static for s in slots):
            draws = self.draw_indices(
                slots, ops.convert_to_tensor(step, self.ssl_step.dtype))
            draws = [int(i) for i in ops.convert_to_numpy(draws)]
        widths = {}
        for slot in slots:
            if slot.is_static:
                widths[slot.name] = float(slot.candidates[0])
            elif draws[slot.draw] < len(slot.candidates):
                widths[slot.name] = float(slot.candidates[draws[slot.draw]])
        return widths

    def record(self, values):
        """Updates the metrics with a step's values; returns the logs."""
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
        config["backbone"] = keras.saving.serialize_keras_object(
            self.backbone)
        # Every constructor argument is stored under its own name.
        for key in ("seed", "per_width_update") + self.config_keys:
            config[key] = getattr(self, key)
        return config

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        config["backbone"] = keras.saving.deserialize_keras_object(
            config["backbone"]
        )
        return cls(**config)


# The backend's step module: `_tf_step` or `_jax_step`.
_STEP_MODULES = {"tensorflow": "_tf_step", "jax": "_jax_step"}


def _step_module():
    return importlib.import_module(
        f"keras_slim.methods.{_STEP_MODULES[_backend.name()]}")
