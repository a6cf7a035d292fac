import keras
import tensorflow as tf

from keras_slim import losses
from keras_slim.heads import SlimMLPHead
from keras_slim.methods._momentum import KeyQueue
from keras_slim.methods._momentum import clone_layer
from keras_slim.methods._momentum import cosine_momentum
from keras_slim.methods._momentum import ema_update
from keras_slim.methods._plan import static_slots
from keras_slim.methods._shuffle_bn import shuffled_keys
from keras_slim.methods.slim_ssl import SlimSSL

# Paper defaults per base method (SlimCLR's released scripts, RESEARCH.md).
# hidden: the heads' full-width hidden size; None is the backbone's feature
# size (MoCo v2's head, s_resnet.py `mocov2_slim`), else params.py's fixed
# --simclr_mlp_dim 2048 / --moco_mlp_dim 4096.
_BASES = {
    "mocov2": dict(temperature=0.2, distill_temperature=5.0,
                   projection_dim=128, hidden=None, momentum=0.999),
    "simclr": dict(temperature=0.1, distill_temperature=5.0,
                   projection_dim=128, hidden=2048, momentum=None),
    "mocov3": dict(temperature=1.0, distill_temperature=1.0,
                   projection_dim=256, hidden=4096, momentum=0.99),
}


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimCLR(SlimSSL):
    """SlimCLR: contrastive pretraining of a slimmable network, all widths.

    Every width of a fixed list trains on every step with the base method's
    contrastive loss; each sub-width also distills the detached full-width
    contrastive logits of the same step (online distillation, temperature
    `distill_temperature`):

        L = l_max * L_nce(1.0) + sum_{w<1} l_w * [(1 - a) L_nce(w) + a KD(w)]

    with `KD(w) = -sum softmax(sg(l_1.0)/T) log softmax(l_w/T) T^2`, the
    largest width weighted more (`width_weights`, default
    `[1 + sum(other widths), 1, ..., 1]`, i.e. `[2.5, 1, 1, 1]` for
    `[1.0, 0.75, 0.5, 0.25]`), and a *slow start*: only the full width trains
    for the first `slow_start_steps` steps, with weight 1 (pair it with
    `keras_slim.optimizers.SlimStartCosine`, the official learning rate).

    As the official code (`models/s_moco.py`, `s_mocov3.py`,
    `models/distiller/KD.py`) computes it:

    * MoCo v2 distills the *raw cosine* logits `l_w = [q_w . k, q_w . queue]`
      (before the contrastive temperature) at temperature T=5; the
      contrastive loss uses `l_w / tau`. `distill_on_cosines=False` distills
      `l_w / tau` instead (keras_slim before 2026-12: an effective
      temperature `tau * T`).
    * MoCo v3 adds the two directions' losses (`loss1 + loss2`, each
      `2 tau CE` plus its own `a KD`): a sum, not a mean.
    * During slow start the full width's loss has weight 1;
      `reweight_during_slow_start=True` applies `width_weights[0]` then too
      (keras_slim before 2026-12).
    * The momentum encoder is updated (EMA of the online weights, MoCo v3 at
      the step's cosine momentum) *before* the step's keys are computed,
      then the queue takes the step's keys after the update.

    Bases (`base`):

    * `"mocov2"`: queries at every width, keys from a momentum encoder at the
      full width, a queue of `queue_size` full-width keys; head
      `Dense(f w) - ReLU - Dense(128)`; tau 0.2, T 5, momentum 0.999.
    * `"simclr"`: NT-Xent with negatives from every replica; head
      `Dense(2048 w) - BN - ReLU - Dense(128) - BN`; tau 0.1, T 5.
    * `"mocov3"`: symmetric, projector `Dense(4096 w) - BN - ReLU -
      Dense(256) - BN(no affine)`, predictor `Dense(4096 w) - BN - ReLU -
      Dense(256)`,
      keys from a momentum encoder (momentum 0.99 -> 1, cosine over
      `momentum_total_steps`), negatives from every replica; tau 1.0, T 1.

    `f` is the backbone's full feature size; the SimCLR and MoCo v3 hidden
    sizes are the official fixed 2048 and 4096 (`params.py`; `f` and `2 f`
    for ResNet-50, larger than a small backbone's); every BN is switchable.

    Small-model options (Shi et al., AAAI 2022): a wider head
    (`hidden_dim=2 * f`), `temperature=0.1`, and the `small` augmentation
    preset of `keras_slim.data`.

    Args:
        backbone: a `SlimBackbone` with a fixed width list.
        base: `"mocov2"`, `"mocov3"` or `"simclr"`.
        temperature: contrastive temperature (default: the base's).
        distill_temperature: distillation temperature T (default: base's).
        distill_weight: `a`, the share of distillation in a sub-width's loss.
        width_weights: loss weight per width, largest first.
        slow_start_steps: steps during which only the full width trains.
        projection_dim: embedding size (default: base's, 128 or 256).
        hidden_dim: hidden size of the heads at full width (default: `f` for
            MoCo v2, 2048 for SimCLR, 4096 for MoCo v3, as officially).
        queue_size: MoCo v2 queue length (a multiple of the global batch).
        momentum: EMA momentum of the key encoder (default: base's).
        momentum_total_steps: MoCo v3's cosine momentum schedule length
            (0 keeps the momentum constant).
        distill_on_cosines: bool, distill the raw cosine logits (official
            MoCo v2 and SimCLR); False distills the temperature-scaled ones.
            MoCo v3's temperature is 1: both are the same there.
        reweight_during_slow_start: bool, weight the full width by
            `width_weights[0]` during slow start too (official: 1).
        shuffle_bn: bool, MoCo v2's Shuffle-BN of the key encoder (official):
            the key images are permuted across replicas before encoding and
            the keys put back after, so no replica's BatchNorm statistics
            tell which examples share it. A no-op on one device with
            `key_bn_splits=1` and with synchronized BatchNorm.
        key_bn_splits: int, encode each replica's keys in this many
            separately normalized chunks: the official one-GPU emulation of
            Shuffle-BN (`visualize/cifar_moco.py`'s SplitBatchNorm, 8).
        seed: int, seed of any sampling.
        per_width_update: bool, one optimizer update per width.
        **kwargs: base `keras.Model` arguments.

    Example:

    >>> backbone = keras_slim.backbones.SlimResNet(
    ...     widths=[1.0, 0.5, 0.25], base_width=16)
    >>> model = keras_slim.methods.SlimCLR(backbone, base="mocov2",
    ...                                    queue_size=4096)
    >>> model.compile(optimizer=keras.optimizers.SGD(0.06, momentum=0.9))
    >>> model.fit(view_pairs, epochs=100)  # dataset of (view1, view2)
    >>> model.backbone.subnetwork(0.25)    # the trained quarter width

    References:
        - [Zhao et al., Slimmable Networks for Contrastive Self-supervised
          Learning, IJCV 2024](https://arxiv.org/abs/2209.15525)
        - [Chen et al., Improved Baselines with Momentum Contrastive
          Learning (MoCo v2)](https://arxiv.org/abs/2003.04297)
        - [Chen et al., An Empirical Study of Training Self-Supervised
          Vision Transformers (MoCo v3)](https://arxiv.org/abs/2104.02057)
        - [Chen et al., SimCLR, ICML 2020](https://arxiv.org/abs/2002.05709)
        - [Shi et al., Efficient Self-supervised Learning of Small Models
          (AAAI 2022)](https://arxiv.org/abs/2107.14762)
    """

    def __init__(
        self,
        backbone,
        base="mocov2",
        temperature=None,
        distill_temperature=None,
        distill_weight=0.5,
        width_weights=None,
        slow_start_steps=0,
        projection_dim=None,
        hidden_dim=None,
        queue_size=65536,
        momentum=None,
        momentum_total_steps=0,
        distill_on_cosines=True,
        reweight_during_slow_start=False,
        shuffle_bn=True,
        key_bn_splits=1,
        seed=0,
        per_width_update=False,
        **kwargs,
    ):
        super().__init__(backbone, seed=seed,
                         per_width_update=per_width_update, **kwargs)
        if base not in _BASES:
            raise ValueError(
                f"SlimCLR `base` must be one of {sorted(_BASES)}, got {base!r}."
            )
        widths = backbone.widths
        if widths.is_range:
            raise ValueError(
                "SlimCLR trains a fixed width list; this backbone has a width "
                "range. Use keras_slim.methods.US3L for a range, or build the "
                "backbone with a list such as [1.0, 0.75, 0.5, 0.25]."
            )
        defaults = _BASES[base]
        self.base = base
        self.temperature = float(temperature or defaults["temperature"])
        self.distill_temperature = float(
            distill_temperature or defaults["distill_temperature"]
        )
        if not 0.0 <= distill_weight <= 1.0:
            raise ValueError(
                f"`distill_weight` must be in [0, 1], got {distill_weight}."
            )
        self.distill_weight = float(distill_weight)
        values = widths.values
        if width_weights is None:
            width_weights = [1.0 + sum(values[1:])] + [1.0] * (len(values) - 1)
        if len(width_weights) != len(values):
            raise ValueError(
                f"`width_weights` needs one weight per width {list(values)}, "
                f"got {list(width_weights)}."
            )
        self.width_weights = [float(w) for w in width_weights]
        if int(slow_start_steps) < 0:
            raise ValueError(
                f"`slow_start_steps` must be >= 0, got {slow_start_steps}."
            )
        self.slow_start_steps = int(slow_start_steps)
        self.projection_dim = int(projection_dim or defaults["projection_dim"])
        feature_dim = backbone.feature_dim()
        self.hidden_dim = int(hidden_dim or defaults["hidden"] or feature_dim)
        self.queue_size = int(queue_size)
        self.momentum = float(
            momentum if momentum is not None else (defaults["momentum"] or 0.0)
        )
        self.momentum_total_steps = int(momentum_total_steps)
        self.distill_on_cosines = bool(distill_on_cosines)
        self.reweight_during_slow_start = bool(reweight_during_slow_start)
        self.shuffle_bn = bool(shuffle_bn)
        self.key_bn_splits = int(key_bn_splits)
        if self.key_bn_splits < 1:
            raise ValueError(
                f"`key_bn_splits` must be >= 1, got {key_bn_splits}.")
        self._slots = static_slots(values, self.width_weights)
        full_weight = (self.width_weights[0] if self.reweight_during_slow_start
                       else 1.0)
        self._slow_start_slots = static_slots(values[:1], [full_weight])
        self._build_heads(feature_dim)
        self._build_trackers()

    # ------------------------------------------------------------ structure
    def _build_heads(self, feature_dim):
        widths = self.backbone.widths
        slice_input = self.backbone.feature_dim(widths.smallest) != feature_dim
        common = dict(widths=widths, slice_input=slice_input,
                      synchronized=self.backbone.synchronized)
        if self.base == "mocov2":
            self.projector = SlimMLPHead(
                self.hidden_dim, self.projection_dim, name="projector",
                **common,
            )
        elif self.base == "simclr":
            self.projector = SlimMLPHead(
                self.hidden_dim, self.projection_dim, batch_norm=True,
                output_batch_norm=True, name="projector", **common,
            )
        else:
            self.projector = SlimMLPHead(
                self.hidden_dim, self.projection_dim, batch_norm=True,
                output_batch_norm=True, output_bn_affine=False,
                use_bias=False, name="projector", **common,
            )
            self.predictor = SlimMLPHead(
                self.hidden_dim, self.projection_dim, batch_norm=True,
                widths=widths, slice_input=False, use_bias=False,
                synchronized=self.backbone.synchronized, name="predictor",
            )
        self.projector.build((None, feature_dim))
        if self.base == "mocov3":
            self.predictor.build((None, self.projection_dim))
        if self.base in ("mocov2", "mocov3"):
            self.key_backbone = clone_layer(self.backbone, "key_backbone")
            self.key_projector = clone_layer(
                self.projector, "key_projector", (None, feature_dim)
            )
            self.freeze_from_gradients(self.key_backbone)
            self.freeze_from_gradients(self.key_projector)
        if self.base == "mocov2":
            self._queue = KeyQueue(
                self, self.queue_size, self.projection_dim, seed=self.seed
            )

    def phases(self):
        if self.slow_start_steps:
            return [(0, self._slow_start_slots),
                    (self.slow_start_steps, self._slots)]
        return [(0, self._slots)]

    def combine(self, slot, ssl, distill):
        if slot.is_teacher:
            return slot.weight * ssl
        a = self.distill_weight
        return slot.weight * ((1.0 - a) * ssl + a * distill)

    # ------------------------------------------------------------ the step
    def _keys(self, images, training, shuffle=False):
        largest = self.backbone.widths.largest

        def encode(batch):
            features = self.key_backbone(batch, width=largest,
                                         training=training)
            return self.key_projector(features, width=largest,
                                      training=training)

        if shuffle and training:
            keys = shuffled_keys(encode, images, self.seed, self.ssl_step,
                                 self.key_bn_splits)
        else:
            keys = encode(images)
        return tf.stop_gradient(tf.cast(keys, tf.float32))

    def step_targets(self, views, training):
        if self.base == "mocov2":
            return {"key": self._keys(views[1], training, self.shuffle_bn)}
        if self.base == "mocov3":
            return {
                "key1": self._keys(views[0], training),
                "key2": self._keys(views[1], training),
            }
        return {}

    def _embed(self, images, width, training):
        features = self.backbone(images, width=width, training=training)
        z = self.projector(features, width=width, training=training)
        if self.base == "mocov3":
            z = self.predictor(z, width=width, training=training)
        return z

    def width_outputs(self, width, views, targets, teacher, training):
        if self.base == "mocov2":
            embeddings = (self._embed(views[0], width, training),)
        else:
            embeddings = (self._embed(views[0], width, training),
                          self._embed(views[1], width, training))
        return self.embedding_outputs(embeddings, targets, teacher)

    def embedding_outputs(self, embeddings, targets, teacher):
        """Per-example losses of one width from its projected embeddings.

        Args:
            embeddings: `(q,)` (MoCo v2: the first view's queries) or
                `(z1, z2)` (both views), unnormalized.
            targets: `step_targets()` (the momentum encoder's keys).
            teacher: the full width's `"teacher"` output, or None at the
                full width.

        Returns:
            the `width_outputs` dict.
        """
        T = self.distill_temperature
        if self.base == "mocov2":
            (q,) = embeddings
            cosines = losses.moco_logits(q, targets["key"], self.queue, 1.0)
            logits = cosines / self.temperature
            distilled = cosines if self.distill_on_cosines else logits
            out = {
                "ssl": losses.contrastive_loss(logits),
                "accuracy": losses.contrastive_accuracy(logits),
                "embedding": q,
                "teacher": distilled,
            }
            if teacher is not None:
                out["distill"] = self._distill(distilled, teacher)
            return out
        z1, z2 = embeddings
        if self.base == "simclr":
            ra, rb, labels = losses.simclr_logits(z1, z2, 1.0)
            la, lb = ra / self.temperature, rb / self.temperature
            # The mean over the 2N augmented samples, as the official loss.
            scale = scale_kd = 0.5
            da, db = (ra, rb) if self.distill_on_cosines else (la, lb)
        else:
            la, labels = losses.key_logits(z1, targets["key2"],
                                           self.temperature)
            lb, _ = losses.key_logits(z2, targets["key1"], self.temperature)
            # Official MoCo v3: loss1 + loss2, each 2 tau CE + its own a KD.
            scale, scale_kd = 2.0 * self.temperature, 1.0
            da, db = la, lb
        out = {
            "ssl": scale * (losses.contrastive_loss(la, labels)
                            + losses.contrastive_loss(lb, labels)),
            "accuracy": 0.5 * (losses.contrastive_accuracy(la, labels)
                               + losses.contrastive_accuracy(lb, labels)),
            "embedding": z1,
            "teacher": (da, db),
        }
        if teacher is not None:
            out["distill"] = scale_kd * (self._distill(da, teacher[0])
                                         + self._distill(db, teacher[1]))
        return out

    def _distill(self, student, teacher):
        # models/distiller/KD.py kd_distill_loss_v2: the cross-entropy
        # -T^2 sum p_t log p_s (the KL plus the teacher's entropy).
        return losses.distillation_loss(student, teacher,
                                        self.distill_temperature,
                                        form="cross_entropy")

    def before_targets(self):
        """The momentum update, before this step's keys (official MoCo)."""
        if self.base == "simclr":
            return
        momentum = self.momentum
        if self.base == "mocov3":
            momentum = cosine_momentum(
                self.momentum, self.ssl_step, self.momentum_total_steps
            )
        ema_update(
            self.key_backbone.trainable_variables + (
                self.key_projector.trainable_variables),
            self.backbone.trainable_variables + (
                self.projector.trainable_variables),
            momentum,
        )

    def after_update(self, views, targets):
        if self.base == "mocov2":
            self._queue.enqueue(targets["key"])

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "base": self.base,
                "temperature": self.temperature,
                "distill_temperature": self.distill_temperature,
                "distill_weight": self.distill_weight,
                "width_weights": self.width_weights,
                "slow_start_steps": self.slow_start_steps,
                "projection_dim": self.projection_dim,
                "hidden_dim": self.hidden_dim,
                "queue_size": self.queue_size,
                "momentum": self.momentum,
                "momentum_total_steps": self.momentum_total_steps,
                "distill_on_cosines": self.distill_on_cosines,
                "reweight_during_slow_start": self.reweight_during_slow_start,
                "shuffle_bn": self.shuffle_bn,
                "key_bn_splits": self.key_bn_splits,
            }
        )
        return config

