import functools
import operator

import keras

from keras_slim import losses
from keras_slim.methods._plan import static_slots
from keras_slim.methods._registry import base_class
from keras_slim.methods._registry import register_recipe
from keras_slim.methods.slim_ssl import SlimSSL


@register_recipe
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

    ```python
    import keras
    import numpy as np
    import tensorflow as tf
    from keras_slim.backbones import SlimResNet
    from keras_slim.methods import SlimCLR

    backbone = SlimResNet(depth=10, stem="cifar", base_width=4,
                          widths=[1.0, 0.5])
    model = SlimCLR(backbone, base="mocov2", queue_size=16)
    # run_eagerly: one step runs faster than it traces; drop it for training.
    model.compile(optimizer=keras.optimizers.SGD(0.06, momentum=0.9),
                  run_eagerly=True)
    images = np.random.rand(8, 16, 16, 3).astype("float32")
    # A dataset of (view 1, view 2) batches; here the second is a flip.
    view_pairs = tf.data.Dataset.from_tensor_slices(
        (images, np.flip(images, axis=2))).batch(8)
    logs = model.fit(view_pairs, epochs=1, verbose=0).history
    assert {"loss", "w1/ssl_loss", "w0.5/distill_loss"} <= set(logs)
    half = model.backbone.subnetwork(0.5)  # the trained half width
    assert half(images).shape == (8, 16)
    ```

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

    recipe_name = "slimclr"
    default_base = "mocov2"
    width_kind = "list"
    run_owned_options = SlimSSL.run_owned_options + (
        "slow_start_steps", "momentum_total_steps")
    momentum_encoder_prefix = "key"
    config_keys = (
        "base", "temperature", "distill_temperature", "distill_weight",
        "width_weights", "slow_start_steps", "projection_dim", "hidden_dim",
        "queue_size", "momentum", "momentum_total_steps",
        "distill_on_cosines", "reweight_during_slow_start", "shuffle_bn",
        "key_bn_splits")

    def __init__(
        self, backbone, base="mocov2",
        temperature=None, distill_temperature=None, distill_weight=0.5,
        width_weights=None, slow_start_steps=0,
        projection_dim=None, hidden_dim=None, queue_size=65536,
        momentum=None, momentum_total_steps=0,
        distill_on_cosines=True, reweight_during_slow_start=False,
        shuffle_bn=True, key_bn_splits=1,
        seed=0, per_width_update=False, **kwargs,
    ):
        super().__init__(backbone, seed=seed,
                         per_width_update=per_width_update, **kwargs)
        base_cls = base_class(base, self.recipe_name)
        widths = backbone.widths
        if widths.is_range:
            raise ValueError(
                "SlimCLR trains a fixed width list; this backbone has a width "
                "range. Use keras_slim.methods.US3L for a range, or build the "
                "backbone with a list such as [1.0, 0.75, 0.5, 0.25]."
            )
        defaults = base_cls.defaults(self.recipe_name)
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
        self.base_method = base_cls(self)
        self.make_head("projector", projector=True,
                       **self.base_method.projector_options())
        self.base_method.build(feature_dim)
        self._build_trackers()

    # ------------------------------------------------------------ structure
    @classmethod
    def run_arguments(cls, total_steps, slow_start_steps, steps_per_epoch):
        return {"slow_start_steps": slow_start_steps}

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
    def width_outputs(self, width, views, targets, teacher, training):
        embeddings = self.base_method.embeddings(width, views, training)
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
        contrast = self.base_method.contrast(embeddings, targets)
        logits = [(lg, y) for lg, y, _ in contrast.terms]
        distilled = tuple(d for _, _, d in contrast.terms)
        out = {
            "ssl": contrast.ssl_scale * _sum(
                [losses.contrastive_loss(lg, y) for lg, y in logits]),
            "accuracy": _mean(
                [losses.contrastive_accuracy(lg, y) for lg, y in logits]),
            "embedding": contrast.embedding,
            "teacher": distilled,
        }
        if teacher is not None:
            out["distill"] = contrast.distill_scale * _sum(
                [self._distill(d, t) for d, t in zip(distilled, teacher)])
        return out

    def _distill(self, student, teacher):
        # models/distiller/KD.py kd_distill_loss_v2: the cross-entropy
        # -T^2 sum p_t log p_s (the KL plus the teacher's entropy).
        return losses.distillation_loss(student, teacher,
                                        self.distill_temperature,
                                        form="cross_entropy")


def _sum(values):
    return functools.reduce(operator.add, values)


def _mean(values):
    # One term: itself; two: 0.5 * (a + b), as the official mean.
    if len(values) == 1:
        return values[0]
    return _sum(values) * (1.0 / len(values))
