"""SimSiam as a base: a predictor against stop-gradient projections."""

from keras_slim import losses
from keras_slim.methods._registry import register_base
from keras_slim.methods.bases._base import SSLBase


@register_base
class SimSiam(SSLBase):
    """SimSiam: no momentum encoder; each view's prediction matches the
    other view's detached projection, `-cos(p, sg(z))` averaged over the two
    directions (US3L's `utils/ssl_algorithms/simsiam.py`). Projector
    fc-BN-ReLU-fc-BN-ReLU-fc-BN(no affine), predictor fc-BN-ReLU-fc,
    embedding 2048. In US3L each sub-width's predictions (through the same
    predictor) distill the full width's detached projections.

    References:
        - [Chen and He, Exploring Simple Siamese Representation Learning,
          CVPR 2021](https://arxiv.org/abs/2011.10566)
    """

    name = "simsiam"
    recipes = {"us3l": dict(
        projection_dim=2048, projector_biases=(True, False, False),
        projector=dict(output_batch_norm=True, output_bn_affine=False))}
    has_legacy_losses = False

    def uses_momentum_encoder(self):
        return False  # stop-gradient targets instead of an EMA teacher

    def build_heads(self):
        self.model.make_head("predictor", projector=False)

    def full_width_outputs(self, z1, z2, targets, width, training):
        predictor = self.model.predictor
        p1 = predictor(z1, width=width, training=training)
        p2 = predictor(z2, width=width, training=training)
        ssl = 0.5 * (losses.negative_cosine(p2, z1)
                     + losses.negative_cosine(p1, z2))
        return {"ssl": ssl, "embedding": z1, "teacher": (z1, z2)}

    def distill_pairs(self, z1, z2, targets, teacher, width, training):
        # The full width's detached projections are the targets.
        predictor = self.model.predictor
        return (predictor(z1, width=width, training=training),
                predictor(z2, width=width, training=training),
                teacher[0], teacher[1])

    def sub_width_heads(self):
        return [self.model.predictor]
