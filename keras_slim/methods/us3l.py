import keras
from keras import ops

from keras_slim import losses
from keras_slim.layers import SlimConv2D
from keras_slim.methods._group_terms import group_terms
from keras_slim.methods._plan import Slot
from keras_slim.methods._plan import uniform_drawable
from keras_slim.methods._plan import uniform_draws
from keras_slim.methods._plan import width_grid
from keras_slim.methods._registry import base_class
from keras_slim.methods._registry import register_recipe
from keras_slim.methods.bases._base import cross_view_cosine
from keras_slim.methods.slim_ssl import SlimSSL
from keras_slim.width import width_name

_SAMPLING = ("uniform", "distinct")


@register_recipe
@keras.saving.register_keras_serializable(package="keras_slim")
class US3L(SlimSSL):
    """US3L: universally slimmable self-supervised learning.

    Trains any width of a range at once, guided by a temporally consistent
    teacher:

    * an EMA teacher (backbone + projector, momentum 0.99) runs at the full
      width on both views;
    * the full width trains with the base loss (the `base`, one of the
      `keras_slim.methods.bases` registered for US3L, e.g. `"simclr"`:
      SimCLR-momentum NT-Xent, tau 0.5; `"byol"`: online predictor, `-cos`;
      a base with stop-gradient targets instead of an EMA teacher, such as
      `"simsiam"`, brings its own targets; see each base's docstring);
    * each sub-width trains **only** by distillation,
      `-cos(q(f_w(view_s)), sg(teacher(view_t)))` across views, through an
      extra predictor `q` used only by sub-widths;
    * widths follow the sandwich rule, trained largest first: the largest,
      `num_widths - 2` random widths, the smallest (the official 3: one
      random width). `sampling="uniform"` (official `workers/ssl.py`) draws
      each uniformly from the phase's range, rounded to the nearest width of
      a `grid_step` grid below the largest (one compiled branch per grid
      width; a draw may repeat the smallest). `"distinct"` draws distinct
      grid widths strictly between them. (The official code duplicates the
      largest and smallest when more than 3 widths are asked for; keras_slim
      does not.) With `total_steps` the range widens in 4 equal phases (1.0
      only, then down to 0.75, 0.5, 0.25 of the range);
    * group regularization replaces weight decay (compile with
      `weight_decay=0`): as `losses/regularizers/GroupReg.py`, every weight
      of the online network and heads (not the teacher; the predictors not at
      the full width) in 8 output-channel groups, group `i` penalized by
      `lambda (1 - alpha_t i)` with alpha ramping 0 -> 0.05 over the first
      half of training, dense kernels by plain `lambda`, on every width pass
      (with `steps_per_epoch`, phases and ramp advance per epoch, as the
      official epoch-level schedule; without, per step);
    * the heads do not slice their hidden layers (projector fc-BN-ReLU-fc-BN-
      ReLU-fc, 3 layers, with the official biases before its BNs: they only
      matter to the group regularization); BatchNorm is the shared sliced
      `SlimBatchNormalization` of the range backbone. Calibrate its
      statistics (`keras_slim.evaluation`) before inference at a width.

    The losses are the official ones (`InfoNCEv2_distill.py`,
    `CosineSimilarity.py`): SimCLR-momentum is the mean of
    `nt_xent_v2(q1, sg(t2))` and `nt_xent_v2(q2, sg(t1))` (2N rows of online
    and teacher embeddings, per replica); BYOL and the sub-width distillation
    the mean of the two cross-view `-cos` terms. `legacy_losses=True` gives
    keras_slim's earlier forms (queries against teacher keys only, gathered
    over replicas; sums of `2 - 2 cos` and of `-cos`). The teacher's EMA
    update runs before the step's teacher views (official order).

    As the official loop, one optimizer update per width
    (`per_width_update=True`, the default; the momentum carries from width to
    width, the learning-rate schedule is read per batch, weights without a
    gradient are left alone by `CoupledSGD`). The official code sets the
    learning rate once per epoch: `keras-slim pretrain` does too
    (`train.learning_rate_per: auto`); for a hand-built optimizer pass
    `WarmupCosine(..., steps_per_epoch=...)`.

    Args:
        backbone: a `SlimBackbone` with a width range (or a list).
        base: a base registered for US3L
            (`keras_slim.methods.base_names("us3l")`).
        num_widths: widths trained per step (sandwich), >= 2.
        grid_step: spacing of the width grid random widths come from.
        sampling: `"uniform"` (official) or `"distinct"` (see above).
        total_steps: training length, for the 4-phase dynamic sampling and
            the group-regularization ramp; 0 disables both (full range,
            constant alpha 0.05).
        temperature: NT-Xent temperature of the `"simclr"` base.
        momentum: EMA momentum of the teacher.
        projection_dim: embedding size (default: the base's, the official
            CIFAR configs' `SSL.SETTING.DIM`: 256 for `"simclr"`, 2048 for
            `"byol"`).
        hidden_dim: hidden size of the heads (official 2048).
        group_lambda: strength of the group regularization (5e-5 for
            ResNet-18); 0 disables it.
        group_alpha: final alpha of the group regularization.
        projector_layers: dense layers of the projector (official 3).
        legacy_losses: bool, keras_slim's losses before 2026-12 (see above).
        group_regularize: `"all"` (official: every online weight) or
            `"convolutions"` (backbone convolution kernels only, keras_slim
            before 2026-12).
        projector_biases: bool, the official biases of the projector's
            hidden linear layers (False: none, keras_slim before 2026-12).
        steps_per_epoch: int, steps of one epoch: phases and the
            regularization ramp advance per epoch (official); 0 per step.
        seed, per_width_update, **kwargs: as in `SlimSSL`.

    Example:

    ```python
    import keras
    from keras_slim import Widths
    from keras_slim.backbones import SlimResNet
    from keras_slim.methods import US3L

    backbone = SlimResNet(depth=10, stem="cifar", base_width=4,
                          widths=Widths(min_width=0.25, max_width=1.0))
    model = US3L(backbone, base="simclr", total_steps=10000, grid_step=0.25,
                 hidden_dim=64, projection_dim=32)
    model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9))
    # Each step trains a sandwich of 3 widths: 1.0, 0.25 and one random
    # width of the grid.
    assert model.grid == (1.0, 0.75, 0.5, 0.25)
    config = model.get_config()
    assert config["num_widths"] == 3 and config["base"] == "simclr"
    # then `model.fit(view_pairs, epochs=400)`
    ```

    References:
        - [Cao, Sun, Zhou, Three Guidelines You Should Know for Universally
          Slimmable Self-Supervised Learning, CVPR 2023](https://arxiv.org/abs/2303.07126)
        - [Yu and Huang, Universally Slimmable Networks, ICCV 2019](https://arxiv.org/abs/1903.05134)
    """

    recipe_name = "us3l"
    default_base = "simclr"
    width_kind = "range"
    learning_rate_per = "epoch"  # workers/ssl.py adjust_learning_rate
    run_owned_options = SlimSSL.run_owned_options + (
        "total_steps", "steps_per_epoch")
    momentum_encoder_prefix = "teacher"
    # An EMA teacher for every base that has no stop-gradient target.
    ema_teacher = True
    config_keys = (
        "base", "num_widths", "grid_step", "total_steps", "temperature",
        "momentum", "projection_dim", "hidden_dim", "group_lambda",
        "group_alpha", "projector_layers", "legacy_losses",
        "group_regularize", "sampling", "projector_biases", "steps_per_epoch")

    def __init__(
        self, backbone, base="simclr",
        num_widths=3, grid_step=0.0625, total_steps=0,
        temperature=0.5, momentum=0.99,
        projection_dim=None, hidden_dim=2048,
        group_lambda=5e-5, group_alpha=0.05,
        projector_layers=3, legacy_losses=False, group_regularize="all",
        sampling="uniform", projector_biases=True, steps_per_epoch=0,
        seed=0, per_width_update=True, **kwargs,
    ):
        super().__init__(backbone, seed=seed,
                         per_width_update=per_width_update, **kwargs)
        base_cls = base_class(base, self.recipe_name)
        if int(num_widths) < 2:
            raise ValueError(
                f"`num_widths` must be >= 2 (largest and smallest), got "
                f"{num_widths}."
            )
        self.base = base
        self.num_widths = int(num_widths)
        self.grid_step = float(grid_step)
        if not 0 < grid_step < 1:
            raise ValueError(f"`grid_step` must be in (0, 1), got {grid_step}.")
        self.total_steps = int(total_steps)
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.projection_dim = int(
            projection_dim or base_cls.defaults("us3l")["projection_dim"])
        self.hidden_dim = int(hidden_dim)
        self.group_lambda = float(group_lambda)
        self.group_alpha = float(group_alpha)
        self.projector_layers = int(projector_layers)
        self.legacy_losses = bool(legacy_losses)
        if group_regularize not in ("all", "convolutions"):
            raise ValueError(
                f"`group_regularize` must be 'all' or 'convolutions', got "
                f"{group_regularize!r}.")
        self.group_regularize = group_regularize
        if sampling not in _SAMPLING:
            raise ValueError(
                f"US3L `sampling` must be one of {list(_SAMPLING)}, got "
                f"{sampling!r}.")
        self.sampling = sampling
        self.projector_biases = bool(projector_biases)
        self.steps_per_epoch = int(steps_per_epoch)
        if self.steps_per_epoch < 0:
            raise ValueError(f"`steps_per_epoch` must be >= 0, got "
                             f"{steps_per_epoch}.")
        widths = backbone.widths
        self.grid = (
            width_grid(widths.largest, widths.smallest, self.grid_step)
            if widths.is_range else tuple(widths.values)
        )
        interior = len(self.grid) - 2
        if self.sampling == "distinct" and self.num_widths - 2 > interior:
            raise ValueError(
                f"num_widths={self.num_widths} samples {self.num_widths - 2} "
                f"width(s) strictly between the largest and the smallest, but "
                f"the width grid {list(self.grid)} has {max(interior, 0)}. "
                f"Lower `grid_step` or `num_widths`."
            )
        self._phases = self._make_phases()
        self.base_method = base_cls(self)
        self._build_heads(backbone.feature_dim())
        self._build_trackers()

    # ------------------------------------------------------------ structure
    def _make_phases(self):
        largest, smallest = self.grid[0], self.grid[-1]
        teacher = Slot(width_name(largest), (largest,), is_teacher=True)
        draws = self.num_widths - 2

        def sandwich(lowest):
            slots = [teacher]
            slots += [
                Slot(f"wrand{i + 1}", self.grid, draw=i) for i in range(draws)
            ]
            return slots + [Slot("wmin", (lowest,))]

        if not self.total_steps:
            return [(0, sandwich(smallest))]
        phases = [(0, [teacher])]
        quarter = self.total_steps // 4
        if self.steps_per_epoch:  # official: EPOCHS // 4 epochs a phase
            epochs = self.total_steps // self.steps_per_epoch
            quarter = epochs // 4 * self.steps_per_epoch
        for p in (1, 2, 3):
            target = largest - p * (largest - smallest) / 3
            lowest = min(self.grid, key=lambda w: abs(w - target))
            phases.append((p * quarter, sandwich(lowest)))
        return phases

    def phases(self):
        return self._phases

    def draw_indices(self, slots, step):
        if self.sampling == "distinct":
            return super().draw_indices(slots, step)
        count = sum(1 for s in slots if not s.is_static)
        return uniform_draws(self.seed, step, self.grid, _lowest(slots),
                             count)

    def drawable_indices(self, slots):
        if self.sampling == "distinct":
            return super().drawable_indices(slots)
        return uniform_drawable(self.grid, _lowest(slots))

    @classmethod
    def config_problems(cls, config):
        problems = super().config_problems(config)
        if config.method.slow_start:
            problems.append(("method.slow_start", "us3l has its own dynamic "
                                                  "sampling phases; set 0"))
        return problems

    @classmethod
    def run_arguments(cls, total_steps, slow_start_steps, steps_per_epoch):
        # Official: phases and the regularization ramp move per epoch.
        return {"total_steps": total_steps, "steps_per_epoch": steps_per_epoch}

    def _build_heads(self, feature_dim):
        base = self.base_method
        self.make_head("projector", projector=True,
                       num_layers=self.projector_layers,
                       bias_before_norm=self._projector_biases(),
                       **base.projector_options())
        if base.uses_momentum_encoder():
            self.make_head("distill_predictor", projector=False)
        base.build(feature_dim)
        self._convs = self._backbone_convs()

    def head_options(self):
        # Official: BN after every hidden layer, hidden layers not sliced.
        return dict(batch_norm=True, slice_hidden=False)

    def _projector_biases(self):
        if not self.projector_biases:
            return False
        official = self.base_method.defaults("us3l")["projector_biases"]
        layers = self.projector_layers
        return [official[min(i, 2)] and i < layers - 1 for i in range(layers)]

    def _backbone_convs(self):
        return [layer for layer in self.backbone._flatten_layers()
                if isinstance(layer, SlimConv2D)]

    # ------------------------------------------------------------ the step
    def width_outputs(self, width, views, targets, teacher, training):
        base = self.base_method
        z1 = self.project(views[0], width, training)
        z2 = self.project(views[1], width, training)
        if width == self.grid[0]:
            return base.full_width_outputs(z1, z2, targets, width, training)
        distill = cross_view_cosine(*base.distill_pairs(
            z1, z2, targets, teacher, width, training))
        if not (self.legacy_losses and base.has_legacy_losses):
            distill = 0.5 * distill  # the official mean of the two views
        return {"ssl": ops.zeros_like(distill), "distill": distill,
                "embedding": z1, "teacher": ()}

    def regularization(self, width):
        if not self.group_lambda:
            return 0.0
        alpha = ops.convert_to_tensor(self.group_alpha, "float32")
        if self.total_steps:
            alpha = alpha * self._regularization_ramp()
        if self.group_regularize == "convolutions":
            terms = [(conv.kernel, True) for conv in self._convs]
        else:
            modules = [self.backbone, self.projector]
            if width != self.grid[0]:  # official: predictors skipped at 1.0
                modules += self.base_method.sub_width_heads()
            terms = group_terms(modules)
        return ops.sum(ops.stack([
            losses.group_regularization(tensor, self.group_lambda, alpha,
                                        binned=binned)
            for tensor, binned in terms
        ]))

    def _regularization_ramp(self):
        """0 -> 1 over the first half of training (GroupReg.cal_lambda)."""
        step = ops.cast(self.ssl_step, "float32")
        if not self.steps_per_epoch:
            half = max(self.total_steps // 2, 1)
            return ops.minimum(step / half, 1.0)
        half = self.total_steps // self.steps_per_epoch // 2
        if not half:
            return ops.ones(())
        epoch = ops.floor(step / self.steps_per_epoch)
        return ops.minimum(epoch / half, 1.0)

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # Saved before these options existed: the models of that time.
        config.setdefault("projector_biases", False)
        config.setdefault("sampling", "distinct")
        return super().from_config(config)


def _lowest(slots):
    """The smallest width of a phase: its smallest static slot."""
    return min(s.candidates[0] for s in slots if s.is_static)
