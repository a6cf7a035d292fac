"""`SSLBase`: one self-supervised base method inside a slimmable recipe."""

import dataclasses

from keras import ops

from keras_slim import losses
from keras_slim.methods._momentum import clone_layer
from keras_slim.methods._momentum import ema_update
from keras_slim.methods._shuffle_bn import shuffled_keys


@dataclasses.dataclass(frozen=True)
class Contrast:
    """A base's contrastive terms at one width (what `SlimCLR` trains on).

    Attributes:
        terms: `[(logits, labels, distilled), ...]`, one per direction:
            the temperature-scaled logits, their labels (None: column 0),
            and the logits the sub-widths distill.
        ssl_scale: factor of the sum of the terms' cross-entropies.
        distill_scale: factor of the sum of the terms' distillations.
        embedding: the embedding whose spread is logged.
    """

    terms: list
    ssl_scale: float
    distill_scale: float
    embedding: object


class SSLBase:
    """A base method's heads, targets, per-width losses and state updates.

    A recipe (`SlimCLR`, `US3L`, `DSPNet`) owns the widths, their weights and
    how sub-widths learn; its base owns what the self-supervised method
    itself adds: the heads past the projector, the targets shared by every
    width of a step (a momentum encoder's keys, a queue, a stop-gradient),
    the base loss, and the state updates around the optimizer step (the EMA,
    the queue). A base is a plain object bound to one recipe instance; the
    layers and variables it builds are attributes of the recipe (`predictor`,
    `key_backbone`, `queue`, ...), so saved models keep their weight paths.

    Subclasses set `name`, `recipes` (recipe name -> that recipe's defaults
    for this base) and override the hooks of the recipes they serve:

    * every recipe: `projector_options`, `build`, `step_targets`,
      `momentum`, `after_update`;
    * `SlimCLR`: `embeddings` and `contrast`;
    * `US3L`: `full_width_outputs`, `distill_pairs`, `sub_width_heads`.

    Args:
        model: the recipe instance (a `SlimSSL`).
    """

    name = None
    recipes = {}
    # Whether the base trains against a momentum (EMA) encoder of the online
    # network (MoCo, BYOL); `uses_momentum_encoder` may also follow the
    # recipe (US3L's EMA teacher).
    momentum_encoder = False
    # US3L's `legacy_losses` sums its terms (keras_slim before 2026-12);
    # False for a base that had no legacy form.
    has_legacy_losses = True

    def __init__(self, model):
        self.model = model

    @classmethod
    def defaults(cls, recipe):
        """This base's default options in `recipe`."""
        return dict(cls.recipes[recipe])

    @classmethod
    def run_options(cls, total_steps):
        """Options a pretraining run sets from its length (e.g. a schedule)."""
        return {}

    def uses_momentum_encoder(self):
        return self.momentum_encoder or getattr(self.model, "ema_teacher",
                                                False)

    # ------------------------------------------------------------ structure
    def projector_options(self):
        """Keyword arguments of the projector `SlimMLPHead` for this base in
        its recipe (the `projector` entry of its `recipes` defaults)."""
        return dict(self.recipes[self.model.recipe_name].get("projector", {}))

    def build(self, feature_dim):
        """Builds the heads past the projector, the momentum encoder and any
        state on the recipe (after the recipe built its projector)."""
        self.build_heads()
        if self.uses_momentum_encoder():
            self.build_momentum_encoder(feature_dim)
        self.build_state()

    def build_heads(self):
        """Heads past the projector (a predictor)."""

    def build_state(self):
        """Non-trainable state (MoCo's queue)."""

    def build_momentum_encoder(self, feature_dim):
        """EMA copies of the backbone and projector, named by the recipe
        (`key_backbone` in SlimCLR, `teacher_backbone` in US3L)."""
        model = self.model
        prefix = model.momentum_encoder_prefix
        backbone = clone_layer(model.backbone, f"{prefix}_backbone")
        setattr(model, f"{prefix}_backbone", backbone)
        projector = clone_layer(model.projector, f"{prefix}_projector",
                                (None, feature_dim))
        setattr(model, f"{prefix}_projector", projector)
        model.freeze_from_gradients(backbone)
        model.freeze_from_gradients(projector)
        self.momentum_backbone = backbone
        self.momentum_projector = projector

    # ------------------------------------------------------------ the step
    def momentum(self):
        """The EMA momentum of this step (constant unless a schedule)."""
        return self.model.momentum

    def before_targets(self):
        """The momentum update, before this step's targets (official)."""
        if not self.uses_momentum_encoder():
            return
        model = self.model
        ema_update(
            self.momentum_backbone.trainable_variables
            + self.momentum_projector.trainable_variables,
            model.backbone.trainable_variables
            + model.projector.trainable_variables,
            self.momentum(),
        )

    def momentum_keys(self, images, training, shuffle=False):
        """The momentum encoder's full-width embeddings of `images`."""
        largest = self.model.backbone.widths.largest

        def encode(batch):
            features = self.momentum_backbone(batch, width=largest,
                                              training=training)
            return self.momentum_projector(features, width=largest,
                                           training=training)

        model = self.model
        if shuffle and training:
            keys = shuffled_keys(encode, images, model.seed, model.ssl_step,
                                 model.key_bn_splits)
        else:
            keys = encode(images)
        return ops.stop_gradient(ops.cast(keys, "float32"))

    def step_targets(self, views, training):
        """Stop-gradient tensors shared by every width of the step: the
        momentum encoder's keys of both views when there is one."""
        if not self.uses_momentum_encoder():
            return {}
        return {"key1": self.momentum_keys(views[0], training),
                "key2": self.momentum_keys(views[1], training)}

    def after_update(self, views, targets):
        """State updates after the optimizer step (MoCo's queue)."""

    # ------------------------------------------------------------ SlimCLR
    def embeddings(self, width, views, training):
        """The online embeddings `contrast` compares: both views'."""
        return tuple(self.model.project(v, width, training) for v in views)

    # ------------------------------------------------------------ US3L
    def distill_pairs(self, z1, z2, targets, teacher, width, training):
        """`(p1, p2, t1, t2)`: US3L's sub-width predictions of each view and
        the detached targets they match across views (`-cos(p1, t2)`,
        `-cos(p2, t1)`): by default the EMA teacher's, through US3L's
        `distill_predictor`."""
        head = self.model.distill_predictor
        return (head(z1, width=width, training=training),
                head(z2, width=width, training=training),
                targets["key1"], targets["key2"])

    def sub_width_heads(self):
        """Heads US3L's group regularization adds below the full width."""
        return [self.model.distill_predictor]


def cross_view_cosine(p1, p2, t1, t2):
    """`-cos(p1, t2) - cos(p2, t1)` per example: the two cross-view terms."""
    return losses.negative_cosine(p1, t2) + losses.negative_cosine(p2, t1)
