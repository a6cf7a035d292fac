"""Where each SlimResNet weight lives in the official SlimCLR layout.

One walk over the network serves both directions: loading a checkpoint
(`slimclr.py`) and writing keras_slim weights back in the official layout
(`slimclr_state_dict`), so the two cannot disagree.
"""

import numpy as np
from keras import ops

__all__ = ["backbone_entries", "slimclr_state_dict"]


def backbone_entries(backbone):
    """`(official key, layer, kind)` of every convolution and BatchNorm.

    `kind` is `"conv"` (a `SlimConv2D`, key of `<key>.weight`) or
    `"switchable"` (a `SwitchableBatchNormalization`, keys `<key>.bn.<i>.*`).
    """
    yield "conv1", backbone.stem_conv, "conv"
    yield "bn1", backbone.stem_norm, "switchable"
    for k, block in enumerate(backbone.blocks):
        for j, (conv, norm) in enumerate(zip(block.convs, block.norms)):
            yield f"features.{k}.conv{j + 1}", conv, "conv"
            yield f"features.{k}.bn{j + 1}", norm, "switchable"
        if block.shortcut_conv is not None:
            yield f"features.{k}.shortcut.0", block.shortcut_conv, "conv"
            yield f"features.{k}.shortcut.1", block.shortcut_norm, "switchable"


def slimclr_state_dict(model):
    """keras_slim weights as the official SlimCLR code names them.

    The inverse of `load_slimclr`: a `SlimResNet` gives the backbone keys
    (`conv1.weight`, `features.{k}...`, `bn.{i}` largest width first); a
    `SlimCLR` model gives the full pretraining state (MoCo v2: `encoder_q.*`
    with the head `fc.*`, `encoder_k.*`, `queue` [dim, K], `queue_ptr`;
    MoCo v3: `base_encoder.*`, `momentum_encoder.*`, `predictor.*`; SimCLR:
    `encoder_q.*`). Convolutions become OIHW, dense kernels `[out, in]`.
    A BatchNorm fed by a biased linear layer in the official head gets that
    bias as 0 and the equivalent moving mean. No `num_batches_tracked`.

    Returns:
        dict of official key (no `module.` prefix) -> float32 numpy array.
    """
    backbone = getattr(model, "backbone", model)
    if backbone is model:
        return _backbone_state(backbone, "")
    base = model.base
    online = "base_encoder." if base == "mocov3" else "encoder_q."
    state = _backbone_state(model.backbone, online)
    state.update(_head_state(model.projector, online + "fc.", base))
    if base == "mocov3":
        state.update(_head_state(model.predictor, "predictor.", "predictor"))
    if base in ("mocov2", "mocov3"):
        key = "momentum_encoder." if base == "mocov3" else "encoder_k."
        state.update(_backbone_state(model.key_backbone, key))
        state.update(_head_state(model.key_projector, key + "fc.", base))
    if base == "mocov2":
        state["queue"] = _numpy(model.queue).T.copy()
        state["queue_ptr"] = np.array([int(model.queue_pointer)], np.int64)
    return state


def _numpy(value):
    return np.asarray(ops.convert_to_numpy(value), np.float32)


def _backbone_state(backbone, prefix):
    state = {}
    for key, layer, kind in backbone_entries(backbone):
        if kind == "conv":
            state[f"{prefix}{key}.weight"] = _numpy(
                layer.kernel).transpose(3, 2, 0, 1).copy()
        else:
            state.update(_switchable_state(layer, f"{prefix}{key}"))
    return state


def _switchable_state(switchable, key):
    state = {}
    for i, norm in enumerate(switchable.norms):
        name = f"{key}.bn.{i}"
        if norm.scale:
            state[f"{name}.weight"] = _numpy(norm.gamma)
        if norm.center:
            state[f"{name}.bias"] = _numpy(norm.beta)
        state[f"{name}.running_mean"] = _numpy(norm.moving_mean)
        state[f"{name}.running_var"] = _numpy(norm.moving_variance)
    return state


# Official head indices: (dense, norm after it or None) per layer.
_HEADS = {
    "mocov2": (("0", None), ("2", None)),
    "mocov3": (("0", "1"), ("3", "4")),
    "simclr": (("0", "1"), ("3", "4")),
    "predictor": (("0", "1"), ("3", None)),
}


def _head_state(head, prefix, kind):
    state = {}
    for (dense_index, norm_index), dense, norm in zip(
            _HEADS[kind], head.dense_layers, head.norms):
        state[f"{prefix}{dense_index}.weight"] = _numpy(dense.kernel).T.copy()
        if dense.use_bias:
            state[f"{prefix}{dense_index}.bias"] = _numpy(dense.bias)
        elif kind == "simclr" and dense_index == "0":
            state[f"{prefix}0.bias"] = np.zeros(dense.units, np.float32)
        if norm_index is not None:
            state.update(_switchable_state(norm, f"{prefix}{norm_index}"))
    return state
