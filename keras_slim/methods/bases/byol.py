"""BYOL as a base: an online predictor against an EMA teacher's views."""

from keras_slim import losses
from keras_slim.methods._registry import register_base
from keras_slim.methods.bases._base import SSLBase
from keras_slim.methods.bases._base import cross_view_cosine


@register_base
class BYOL(SSLBase):
    """BYOL: the full width's predictions of each view match the EMA
    teacher's embedding of the other, `-cos` averaged over the two
    directions (`CosineSimilarity.py`); `legacy_losses=True` sums
    `2 - 2 cos` (keras_slim before 2026-12). Embedding 2048
    (`us_resnet18_byol_cifar.yaml`).

    References:
        - [Grill et al., Bootstrap Your Own Latent, NeurIPS 2020](https://arxiv.org/abs/2006.07733)
    """

    name = "byol"
    recipes = {"us3l": dict(projection_dim=2048,
                            projector_biases=(True, False, False))}
    momentum_encoder = True

    def build_heads(self):
        self.model.make_head("predictor", projector=False)

    def full_width_outputs(self, z1, z2, targets, width, training):
        model = self.model
        p1 = model.predictor(z1, width=width, training=training)
        p2 = model.predictor(z2, width=width, training=training)
        t1, t2 = targets["key1"], targets["key2"]
        if model.legacy_losses:
            ssl = losses.byol_loss(p1, t2) + losses.byol_loss(p2, t1)
        else:
            ssl = 0.5 * cross_view_cosine(p1, p2, t1, t2)
        return {"ssl": ssl, "embedding": z1, "teacher": ()}

    def sub_width_heads(self):
        return [self.model.distill_predictor, self.model.predictor]
