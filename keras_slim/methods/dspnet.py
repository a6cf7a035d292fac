import keras

from keras_slim import losses
from keras_slim.methods._registry import register_recipe
from keras_slim.methods.slim_clr import SlimCLR


@register_recipe
@keras.saving.register_keras_serializable(package="keras_slim")
class DSPNet(SlimCLR):
    """DSPNet: discriminative SSL at full width, distilled into sub-widths.

    The paper's code is not public, so this is keras_slim's reading of its
    stated method (one run, a discriminative self-supervised objective for
    the full network, knowledge distillation from the full network to every
    sub-network), built on MoCo v2:

    * the full width trains with MoCo v2's InfoNCE (momentum key encoder,
      queue of full-width keys);
    * each sub-width trains **only** by distillation, with two terms:
      the KL between its contrastive logits and the detached full-width
      logits of the same step (temperature `distill_temperature`), and
      `feature_weight` times a feature distillation
      `-cos(q_w, sg(k))`, pulling the sub-width embedding of view 1 to the
      momentum encoder's embedding of view 2 (the full network's key).

    Sub-widths thus never see the contrastive targets directly; compare
    `SlimCLR`, where they also train with their own InfoNCE.

    Args:
        backbone: a `SlimBackbone` with a fixed width list.
        feature_weight: weight of the feature distillation term.
        **kwargs: `SlimCLR` arguments except `base` and `distill_weight`
            (MoCo v2 and 1.0 here).

    Example:

    ```python
    import keras
    import numpy as np
    from keras_slim.backbones import SlimResNet
    from keras_slim.methods import DSPNet

    backbone = SlimResNet(depth=10, stem="cifar", base_width=4,
                          widths=[1.0, 0.5, 0.25])
    model = DSPNet(backbone, queue_size=64, feature_weight=0.5)
    model.compile(optimizer=keras.optimizers.SGD(0.06, momentum=0.9))
    # MoCo v2 at full width; the sub-widths learn by distillation alone.
    assert model.base == "mocov2" and model.distill_weight == 1.0
    assert model.get_config()["feature_weight"] == 0.5
    # then `model.fit(view_pairs, epochs=...)` as with `SlimCLR`
    quarter = model.backbone.subnetwork(0.25)
    assert quarter(np.zeros((2, 16, 16, 3))).shape == (2, 8)
    ```

    References:
        - [Wang et al., DSPNet: Towards Slimmable Pretrained Networks based
          on Discriminative Self-supervised Learning](https://arxiv.org/abs/2207.06075)
    """

    recipe_name = "dspnet"
    config_keys = tuple(
        k for k in SlimCLR.config_keys if k not in ("base", "distill_weight")
    ) + ("feature_weight",)

    def __init__(self, backbone, feature_weight=1.0, **kwargs):
        kwargs.pop("base", None)
        kwargs.pop("distill_weight", None)
        self.feature_weight = float(feature_weight)
        super().__init__(backbone, base="mocov2", distill_weight=1.0, **kwargs)

    def width_outputs(self, width, views, targets, teacher, training):
        out = super().width_outputs(width, views, targets, teacher, training)
        if teacher is not None:
            feature = losses.negative_cosine(out["embedding"], targets["key"])
            out["distill"] = out["distill"] + self.feature_weight * feature
        return out
