import keras
import tensorflow as tf

from keras_slim import losses
from keras_slim.heads import SlimMLPHead
from keras_slim.layers import SlimConv2D
from keras_slim.methods._momentum import clone_layer
from keras_slim.methods._group_terms import group_terms
from keras_slim.methods._momentum import ema_update
from keras_slim.methods._plan import Slot
from keras_slim.methods._plan import uniform_draws
from keras_slim.methods._plan import width_grid
from keras_slim.methods.slim_ssl import SlimSSL
from keras_slim.width import width_name

_BASES = ("simclr", "byol", "simsiam")
_SAMPLING = ("uniform", "distinct")
# SSL.SETTING.DIM of configs/cifar/us_resnet18_{simclr_featdistill,byol,
# simsiam}_cifar.yaml.
_PROJECTION_DIMS = {"simclr": 256, "byol": 2048, "simsiam": 2048}
# Which hidden linear layers of the official projectors have a bias (their
# first is the ResNet's `fc`, a biased nn.Linear; a BN follows each).
_PROJECTOR_BIASES = {"simclr": (True, True, False),
                     "byol": (True, False, False),
                     "simsiam": (True, False, False)}


@keras.saving.register_keras_serializable(package="keras_slim")
class US3L(SlimSSL):
    """US3L: universally slimmable self-supervised learning.

    Trains any width of a range at once, guided by a temporally consistent
    teacher:

    * an EMA teacher (backbone + projector, momentum 0.99) runs at the full
      width on both views;
    * the full width trains with the base loss against the teacher's views:
      `"simclr"` (SimCLR-momentum NT-Xent, tau 0.5) or `"byol"` (online
      predictor, `-cos`); or, with no EMA teacher, `"simsiam"` (the official
      `utils/ssl_algorithms/simsiam.py`: projector fc-BN-ReLU-fc-BN-ReLU-fc-
      BN(no affine), predictor fc-BN-ReLU-fc, `-cos(p, sg(z))` across views;
      each sub-width's predictions distill the full width's detached
      projections, through the same predictor);
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
        base: `"simclr"`, `"byol"` or `"simsiam"`.
        num_widths: widths trained per step (sandwich), >= 2.
        grid_step: spacing of the width grid random widths come from.
        sampling: `"uniform"` (official) or `"distinct"` (see above).
        total_steps: training length, for the 4-phase dynamic sampling and
            the group-regularization ramp; 0 disables both (full range,
            constant alpha 0.05).
        temperature: NT-Xent temperature of the `"simclr"` base.
        momentum: EMA momentum of the teacher.
        projection_dim: embedding size (default: the official CIFAR configs'
            `SSL.SETTING.DIM`, 256 for `"simclr"`, 2048 for `"byol"` and
            `"simsiam"`).
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

    >>> backbone = keras_slim.backbones.SlimResNet(
    ...     widths=keras_slim.Widths(min_width=0.25, max_width=1.0),
    ...     base_width=16)
    >>> model = keras_slim.methods.US3L(backbone, base="simclr",
    ...                                 total_steps=10000)
    >>> model.compile(optimizer=keras.optimizers.SGD(0.5, momentum=0.9))
    >>> model.fit(view_pairs, epochs=400)

    References:
        - [Cao, Sun, Zhou, Three Guidelines You Should Know for Universally
          Slimmable Self-Supervised Learning, CVPR 2023](https://arxiv.org/abs/2303.07126)
        - [Yu and Huang, Universally Slimmable Networks, ICCV 2019](https://arxiv.org/abs/1903.05134)
    """

    def __init__(
        self,
        backbone,
        base="simclr",
        num_widths=3,
        grid_step=0.0625,
        total_steps=0,
        temperature=0.5,
        momentum=0.99,
        projection_dim=None,
        hidden_dim=2048,
        group_lambda=5e-5,
        group_alpha=0.05,
        projector_layers=3,
        legacy_losses=False,
        group_regularize="all",
        sampling="uniform",
        projector_biases=True,
        steps_per_epoch=0,
        seed=0,
        per_width_update=True,
        **kwargs,
    ):
        super().__init__(backbone, seed=seed,
                         per_width_update=per_width_update, **kwargs)
        if base not in _BASES:
            raise ValueError(
                f"US3L `base` must be one of {list(_BASES)}, got {base!r}."
            )
        if int(num_widths) < 2:
            raise ValueError(
                f"`num_widths` must be >= 2 (largest and smallest), got "
                f"{num_widths}."
            )
        if not 0 < grid_step < 1:
            raise ValueError(f"`grid_step` must be in (0, 1), got {grid_step}.")
        self.base = base
        self.num_widths = int(num_widths)
        self.grid_step = float(grid_step)
        self.total_steps = int(total_steps)
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.projection_dim = int(projection_dim or _PROJECTION_DIMS[base])
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
        lowest = min(s.candidates[0] for s in slots if s.is_static)
        count = sum(1 for s in slots if not s.is_static)
        return uniform_draws(self.seed, step, self.grid, lowest, count)

    def _build_heads(self, feature_dim):
        widths = self.backbone.widths
        slice_input = self.backbone.feature_dim(widths.smallest) != feature_dim
        head = dict(widths=widths, batch_norm=True, slice_hidden=False,
                    synchronized=self.backbone.synchronized)
        simsiam = self.base == "simsiam"
        self.projector = SlimMLPHead(
            self.hidden_dim, self.projection_dim, slice_input=slice_input,
            num_layers=self.projector_layers, output_batch_norm=simsiam,
            output_bn_affine=not simsiam, name="projector",
            bias_before_norm=self._projector_biases(), **head,
        )
        self.projector.build((None, feature_dim))
        if simsiam:
            self.predictor = SlimMLPHead(
                self.hidden_dim, self.projection_dim, slice_input=False,
                name="predictor", **head,
            )
            self.predictor.build((None, self.projection_dim))
            self._convs = self._backbone_convs()
            return
        self.distill_predictor = SlimMLPHead(
            self.hidden_dim, self.projection_dim, slice_input=False,
            name="distill_predictor", **head,
        )
        self.distill_predictor.build((None, self.projection_dim))
        if self.base == "byol":
            self.predictor = SlimMLPHead(
                self.hidden_dim, self.projection_dim, slice_input=False,
                name="predictor", **head,
            )
            self.predictor.build((None, self.projection_dim))
        self.teacher_backbone = clone_layer(self.backbone, "teacher_backbone")
        self.teacher_projector = clone_layer(
            self.projector, "teacher_projector", (None, feature_dim)
        )
        self.freeze_from_gradients(self.teacher_backbone)
        self.freeze_from_gradients(self.teacher_projector)
        self._convs = self._backbone_convs()

    def _projector_biases(self):
        if not self.projector_biases:
            return False
        official = _PROJECTOR_BIASES[self.base]
        layers = self.projector_layers
        return [official[min(i, 2)] and i < layers - 1 for i in range(layers)]

    def _backbone_convs(self):
        return [layer for layer in self.backbone._flatten_layers()
                if isinstance(layer, SlimConv2D)]

    # ------------------------------------------------------------ the step
    def step_targets(self, views, training):
        if self.base == "simsiam":
            return {}
        largest = self.grid[0]

        def teach(images):
            features = self.teacher_backbone(
                images, width=largest, training=training
            )
            z = self.teacher_projector(features, width=largest,
                                       training=training)
            return tf.stop_gradient(tf.cast(z, tf.float32))

        return {"t1": teach(views[0]), "t2": teach(views[1])}

    def width_outputs(self, width, views, targets, teacher, training):
        z1 = self._project(views[0], width, training)
        z2 = self._project(views[1], width, training)
        if self.base == "simsiam":
            return self._simsiam_outputs(width, z1, z2, teacher, training)
        t1, t2 = targets["t1"], targets["t2"]
        if width == self.grid[0]:
            return self._base_outputs(z1, z2, t1, t2, training)
        p1 = self.distill_predictor(z1, width=width, training=training)
        p2 = self.distill_predictor(z2, width=width, training=training)
        distill = losses.negative_cosine(p1, t2) + losses.negative_cosine(
            p2, t1
        )
        if not self.legacy_losses:
            distill = 0.5 * distill  # the official mean of the two views
        return {"ssl": tf.zeros_like(distill), "distill": distill,
                "embedding": z1, "teacher": ()}

    def _simsiam_outputs(self, width, z1, z2, teacher, training):
        p1 = self.predictor(z1, width=width, training=training)
        p2 = self.predictor(z2, width=width, training=training)
        if width == self.grid[0]:
            ssl = 0.5 * (losses.negative_cosine(p2, z1)
                         + losses.negative_cosine(p1, z2))
            return {"ssl": ssl, "embedding": z1, "teacher": (z1, z2)}
        # The full width's detached projections are the targets.
        distill = 0.5 * (losses.negative_cosine(p2, teacher[0])
                         + losses.negative_cosine(p1, teacher[1]))
        return {"ssl": tf.zeros_like(distill), "distill": distill,
                "embedding": z1, "teacher": ()}

    def _project(self, images, width, training):
        features = self.backbone(images, width=width, training=training)
        return self.projector(features, width=width, training=training)

    def _base_outputs(self, z1, z2, t1, t2, training):
        if self.base == "byol":
            width = self.grid[0]
            p1 = self.predictor(z1, width=width, training=training)
            p2 = self.predictor(z2, width=width, training=training)
            if self.legacy_losses:
                ssl = losses.byol_loss(p1, t2) + losses.byol_loss(p2, t1)
            else:
                ssl = 0.5 * (losses.negative_cosine(p1, t2)
                             + losses.negative_cosine(p2, t1))
            return {"ssl": ssl, "embedding": z1, "teacher": ()}
        if not self.legacy_losses:
            ssl = 0.5 * (losses.nt_xent_v2(z1, t2, self.temperature)
                         + losses.nt_xent_v2(z2, t1, self.temperature))
            return {"ssl": ssl, "embedding": z1, "teacher": ()}
        la, labels = losses.key_logits(z1, t2, self.temperature)
        lb, _ = losses.key_logits(z2, t1, self.temperature)
        ssl = 0.5 * (losses.contrastive_loss(la, labels)
                     + losses.contrastive_loss(lb, labels))
        accuracy = 0.5 * (losses.contrastive_accuracy(la, labels)
                          + losses.contrastive_accuracy(lb, labels))
        return {"ssl": ssl, "accuracy": accuracy, "embedding": z1,
                "teacher": ()}

    def regularization(self, width):
        if not self.group_lambda:
            return 0.0
        alpha = tf.constant(self.group_alpha, tf.float32)
        if self.total_steps:
            alpha = alpha * self._regularization_ramp()
        if self.group_regularize == "convolutions":
            terms = [(conv.kernel, True) for conv in self._convs]
        else:
            modules = [self.backbone, self.projector]
            if width != self.grid[0]:  # official: predictors skipped at 1.0
                if self.base != "simsiam":
                    modules.append(self.distill_predictor)
                if self.base in ("byol", "simsiam"):
                    modules.append(self.predictor)
            terms = group_terms(modules)
        return tf.add_n([
            losses.group_regularization(tensor, self.group_lambda, alpha,
                                        binned=binned)
            for tensor, binned in terms
        ])

    def _regularization_ramp(self):
        """0 -> 1 over the first half of training (GroupReg.cal_lambda)."""
        step = tf.cast(self.ssl_step, tf.float32)
        if not self.steps_per_epoch:
            half = max(self.total_steps // 2, 1)
            return tf.minimum(step / half, 1.0)
        half = self.total_steps // self.steps_per_epoch // 2
        if not half:
            return tf.ones(())
        epoch = tf.floor(step / self.steps_per_epoch)
        return tf.minimum(epoch / half, 1.0)

    def before_targets(self):
        if self.base == "simsiam":  # no momentum teacher
            return
        ema_update(
            self.teacher_backbone.trainable_variables
            + self.teacher_projector.trainable_variables,
            self.backbone.trainable_variables
            + self.projector.trainable_variables,
            self.momentum,
        )

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "base": self.base,
                "num_widths": self.num_widths,
                "grid_step": self.grid_step,
                "total_steps": self.total_steps,
                "temperature": self.temperature,
                "momentum": self.momentum,
                "projection_dim": self.projection_dim,
                "hidden_dim": self.hidden_dim,
                "group_lambda": self.group_lambda,
                "group_alpha": self.group_alpha,
                "projector_layers": self.projector_layers,
                "legacy_losses": self.legacy_losses,
                "group_regularize": self.group_regularize,
                "sampling": self.sampling,
                "projector_biases": self.projector_biases,
                "steps_per_epoch": self.steps_per_epoch,
            }
        )
        return config


    @classmethod
    def from_config(cls, config):
        config = dict(config)
        # Saved before these options existed: the models of that time.
        config.setdefault("projector_biases", False)
        config.setdefault("sampling", "distinct")
        return super().from_config(config)
