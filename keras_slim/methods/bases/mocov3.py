"""MoCo v3 as a base: symmetric, a predictor, momentum keys of both views."""

from keras_slim import losses
from keras_slim.methods._momentum import cosine_momentum
from keras_slim.methods._registry import register_base
from keras_slim.methods.bases._base import Contrast
from keras_slim.methods.bases._base import SSLBase


@register_base
class MoCoV3(SSLBase):
    """MoCo v3: each view's predictions against the other view's momentum
    keys, negatives from every replica.

    Projector `Dense(4096 w) - BN - ReLU - Dense(256) - BN(no affine)`,
    predictor `Dense(4096 w) - BN - ReLU - Dense(256)` (no biases); the
    momentum rises 0.99 -> 1 on a cosine over `momentum_total_steps` (a run
    sets it to its length). The two directions' losses add
    (`s_mocov3.py`: `loss1 + loss2`, each `2 tau CE`).

    References:
        - [Chen et al., An Empirical Study of Training Self-Supervised
          Vision Transformers (MoCo v3)](https://arxiv.org/abs/2104.02057)
    """

    name = "mocov3"
    recipes = {"slimclr": dict(
        temperature=1.0, distill_temperature=1.0, projection_dim=256,
        hidden=4096, momentum=0.99,
        projector=dict(batch_norm=True, output_batch_norm=True,
                       output_bn_affine=False, use_bias=False))}
    momentum_encoder = True

    @classmethod
    def run_options(cls, total_steps):
        return {"momentum_total_steps": total_steps}

    def build_heads(self):
        self.model.make_head("predictor", projector=False, batch_norm=True,
                             use_bias=False)

    def momentum(self):
        model = self.model
        return cosine_momentum(model.momentum, model.ssl_step,
                               model.momentum_total_steps)

    def embeddings(self, width, views, training):
        model = self.model
        return tuple(
            model.predictor(model.project(v, width, training), width=width,
                            training=training)
            for v in views)

    def contrast(self, embeddings, targets):
        z1, z2 = embeddings
        tau = self.model.temperature
        la, labels = losses.key_logits(z1, targets["key2"], tau)
        lb, _ = losses.key_logits(z2, targets["key1"], tau)
        # Official MoCo v3: loss1 + loss2, each 2 tau CE + its own a KD.
        return Contrast([(la, labels, la), (lb, labels, lb)], 2.0 * tau, 1.0,
                        z1)
