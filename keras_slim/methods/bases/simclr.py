"""SimCLR as a base: NT-Xent between two views (or against an EMA teacher)."""

from keras_slim import losses
from keras_slim.methods._registry import register_base
from keras_slim.methods.bases._base import Contrast
from keras_slim.methods.bases._base import SSLBase


@register_base
class SimCLR(SSLBase):
    """SimCLR: NT-Xent between the two views' embeddings.

    In `SlimCLR`: the two online views of a width against each other, with
    negatives from every replica; head `Dense(2048 w) - BN - ReLU -
    Dense(128) - BN`; tau 0.1, T 5; the loss the mean over the 2N augmented
    samples (as the official one).

    In `US3L` (SimCLR-momentum, `InfoNCEv2_distill.py` `nt_xentv2`): the full
    width's views against the EMA teacher's, one 2N x (2N - 1) NT-Xent per
    replica and direction, averaged; embedding 256.
    `legacy_losses=True`: queries against teacher keys only, gathered over
    replicas (keras_slim before 2026-12).

    References:
        - [Chen et al., SimCLR, ICML 2020](https://arxiv.org/abs/2002.05709)
    """

    name = "simclr"
    recipes = {
        # params.py's fixed --simclr_mlp_dim 2048.
        "slimclr": dict(temperature=0.1, distill_temperature=5.0,
                        projection_dim=128, hidden=2048, momentum=None,
                        projector=dict(batch_norm=True,
                                       output_batch_norm=True)),
        # SSL.SETTING.DIM of us_resnet18_simclr_featdistill_cifar.yaml; the
        # biases of its projector's hidden linear layers.
        "us3l": dict(projection_dim=256, projector_biases=(True, True, False)),
    }

    def contrast(self, embeddings, targets):
        z1, z2 = embeddings
        tau = self.model.temperature
        ra, rb, labels = losses.simclr_logits(z1, z2, 1.0)
        la, lb = ra / tau, rb / tau
        da, db = (ra, rb) if self.model.distill_on_cosines else (la, lb)
        # The mean over the 2N augmented samples, as the official loss.
        return Contrast([(la, labels, da), (lb, labels, db)], 0.5, 0.5, z1)

    def full_width_outputs(self, z1, z2, targets, width, training):
        model = self.model
        t1, t2, tau = targets["key1"], targets["key2"], model.temperature
        if not model.legacy_losses:
            ssl = 0.5 * (losses.nt_xent_v2(z1, t2, tau)
                         + losses.nt_xent_v2(z2, t1, tau))
            return {"ssl": ssl, "embedding": z1, "teacher": ()}
        la, labels = losses.key_logits(z1, t2, tau)
        lb, _ = losses.key_logits(z2, t1, tau)
        ssl = 0.5 * (losses.contrastive_loss(la, labels)
                     + losses.contrastive_loss(lb, labels))
        accuracy = 0.5 * (losses.contrastive_accuracy(la, labels)
                          + losses.contrastive_accuracy(lb, labels))
        return {"ssl": ssl, "accuracy": accuracy, "embedding": z1,
                "teacher": ()}
