"""MoCo v2 as a base: momentum keys of one view against a queue."""

from keras_slim import losses
from keras_slim.methods._momentum import KeyQueue
from keras_slim.methods._registry import register_base
from keras_slim.methods.bases._base import Contrast
from keras_slim.methods.bases._base import SSLBase

# SlimCLR's released MoCo v2 script (RESEARCH.md): tau 0.2, T 5, the head's
# hidden size the backbone's feature size (s_resnet.py `mocov2_slim`: None).
_SLIMCLR = dict(temperature=0.2, distill_temperature=5.0, projection_dim=128,
                hidden=None, momentum=0.999)


@register_base
class MoCoV2(SSLBase):
    """MoCo v2: queries of view 1 at every width, keys of view 2 from a
    momentum encoder at the full width, a queue of `queue_size` full-width
    keys of earlier steps as negatives.

    Head `Dense(f w) - ReLU - Dense(128)` (no BN). The logits
    `l_w = [q_w . k, q_w . queue]` are raw cosines (`models/s_moco.py`
    `InfoNCE`, "without temperature"); the loss is `CE(l_w / tau, 0)`. The key
    encoder runs with Shuffle-BN (`shuffle_bn`, `key_bn_splits`); the queue
    takes the step's keys after the update.

    References:
        - [Chen et al., Improved Baselines with Momentum Contrastive
          Learning (MoCo v2)](https://arxiv.org/abs/2003.04297)
    """

    name = "mocov2"
    recipes = {"slimclr": _SLIMCLR, "dspnet": _SLIMCLR}
    momentum_encoder = True

    def build_state(self):
        model = self.model
        self.queue = KeyQueue(model, model.queue_size, model.projection_dim,
                              seed=model.seed)

    def step_targets(self, views, training):
        return {"key": self.momentum_keys(views[1], training,
                                          shuffle=self.model.shuffle_bn)}

    def embeddings(self, width, views, training):
        return (self.model.project(views[0], width, training),)

    def contrast(self, embeddings, targets):
        model = self.model
        (q,) = embeddings
        cosines = losses.moco_logits(q, targets["key"], model.queue, 1.0)
        logits = cosines / model.temperature
        distilled = cosines if model.distill_on_cosines else logits
        return Contrast([(logits, None, distilled)], 1.0, 1.0, q)

    def after_update(self, views, targets):
        self.queue.enqueue(targets["key"])
