"""Official SlimCLR checkpoints (PyTorch) into keras_slim models.

The official code (`mzhaoshuai/SlimCLR`, `models/backbones/s_resnet.py`)
stores a slimmable ResNet as full-width tensors: `conv1.weight` [64, 3, 7, 7],
blocks flattened as `features.{k}` (`conv{1,2,3}`, projection shortcut
`shortcut.0` / `shortcut.1`), and one private BatchNorm per width,
`bn.{i}` with `i` indexing the width list sorted largest first. Width `w`
uses `int(c * w)` channels of every layer, the stride sits on the 3x3
convolution, and convolutions pad symmetrically. Heads (`fc`): MoCo v2
`fc.0`-ReLU-`fc.2`; MoCo v3 `fc.0`-`fc.1`(BN)-ReLU-`fc.3`-`fc.4`(BN, no
affine) and `predictor.{0,1,3}`; SimCLR `fc.0`-`fc.1`-ReLU-`fc.3`-`fc.4`;
linear evaluation `fc.linears.{i}` (one probe per width).
"""

import re

import keras
import numpy as np

from keras_slim.convert._state import ConversionError
from keras_slim.convert._state import assign_batch_norm
from keras_slim.convert._state import assign_conv
from keras_slim.convert._state import assign_dense
from keras_slim.convert._state import read_state_dict
from keras_slim.convert._slimclr_layout import backbone_entries

__all__ = ["IMAGENET_NORMALIZATION", "load_slimclr", "load_slimclr_lincls",
           "inspect_slimclr"]

# torchvision's ImageNet statistics, which every SlimCLR script normalizes
# with (`dataset/dataloader.py`): converted backbones take images in [0, 1].
IMAGENET_NORMALIZATION = {"mean": [0.485, 0.456, 0.406],
                          "std": [0.229, 0.224, 0.225]}

_DEPTHS = {(3, 4, 6, 3): 50, (3, 4, 23, 3): 101, (3, 8, 36, 3): 152}
_ENCODERS = (  # (layout, online encoder prefix, momentum encoder prefix)
    ("mocov2", "encoder_q.", "encoder_k."),
    ("mocov3", "base_encoder.", "momentum_encoder."),
    ("simclr", "encoder_q.", None),
)


def inspect_slimclr(path):
    """What a SlimCLR checkpoint holds, without building a model.

    Returns:
        dict with `layout` (`"mocov2"`, `"mocov3"`, `"simclr"` or
        `"backbone"` for a linear-evaluation / supervised file), `widths`
        (largest first, relative to the largest), `base_width` (stem
        channels of the largest width), `depth`, `classes` (probe outputs,
        for a linear-evaluation file) and the file's `epoch` if saved.
    """
    state, meta = read_state_dict(path)
    layout, online, _ = _layout(state)
    encoder = state.scope(online)
    widths, base_width = _widths(encoder)
    info = {"layout": layout, "widths": widths, "base_width": base_width,
            "depth": _depth(encoder)}
    if encoder.has("fc.linears.0.weight"):
        info["classes"] = encoder.shape("fc.linears.0.weight")[0]
    if "epoch" in meta:
        info["epoch"] = meta["epoch"]
    return info


def load_slimclr(path, as_method=False, input_shape=(None, None, 3),
                 name="slimclr_resnet", **method_options):
    """A keras_slim model computing what an official SlimCLR checkpoint does.

    Reads the file safely (no torch needed; nothing in it is run), infers
    the depth and the width list from its tensors (never assumed) and copies
    every weight and every width's BatchNorm statistics.

    Args:
        path: an official SlimCLR checkpoint (`.pth.tar`): MoCo v2
            (`encoder_q`), MoCo v3 (`base_encoder`) or SimCLR, with or without
            the `module.` prefix; a linear-evaluation file works too (its
            backbone).
        as_method: False: the `SlimResNet` backbone. True: the
            `keras_slim.methods.SlimCLR` model (base inferred) with its
            projector, predictor, momentum key encoder and queue loaded,
            ready to `compile` and `fit`.
        input_shape: image shape of the backbone.
        name: the backbone's name.
        **method_options: with `as_method`, other `SlimCLR` arguments
            (`slow_start_steps`, `temperature`, ...; the heads' sizes, the
            queue size and the base come from the file).

    Returns:
        a `SlimResNet` (ImageNet stem, symmetric padding, ImageNet input
        normalization: it takes RGB images in [0, 1]), or a `SlimCLR`.

    Raises:
        ConversionError: not a SlimCLR ResNet layout (a message says what
            differs); `UnsafeCheckpointError` for a pickle that asks for code.

    Example:

    >>> backbone = keras_slim.convert.load_slimclr(
    ...     "slimclr-mocov2-ep800-eda810a6a9.pth.tar")
    >>> backbone.widths
    Widths([1.0, 0.75, 0.5, 0.25])
    >>> features = backbone(images, width=0.25)   # images in [0, 1]

    References:
        - [Zhao et al., Slimmable Networks for Contrastive Self-supervised
          Learning, IJCV 2024](https://arxiv.org/abs/2209.15525)
    """
    state, _ = read_state_dict(path)
    layout, online, momentum = _layout(state)
    if method_options and not as_method:
        raise TypeError(
            f"SlimCLR options {sorted(method_options)} need as_method=True.")
    if as_method and layout == "backbone":
        raise ConversionError(
            f"{path} is a linear-evaluation (or supervised) checkpoint: it has "
            f"no projection head or key encoder to build a SlimCLR model from. "
            f"Use load_slimclr_lincls(path), or pass the pretraining file."
        )
    backbone = _backbone(state.scope(online), input_shape, name)
    if not as_method:
        return backbone
    return _method(state, layout, online, momentum, backbone, method_options)


def load_slimclr_lincls(path, input_shape=(None, None, 3),
                        name="slimclr_resnet"):
    """Backbone and per-width linear classifiers of a SlimCLR lincls file.

    Args:
        path: an official linear-evaluation checkpoint
            (`slimclr-*-lincls-*.pth.tar`, switchable probe `fc.linears.{i}`).
        input_shape: image shape of the backbone.
        name: the backbone's name.

    Returns:
        `(backbone, {width: keras.layers.Dense})`: `Dense(classes)` built on
        the width's feature size; `classifier(backbone(x, width=w))` gives
        the official logits at width `w`.

    Example:

    >>> backbone, heads = keras_slim.convert.load_slimclr_lincls(
    ...     "slimclr-mocov2-ep800-lincls-35600f623f.pth.tar")
    >>> logits = heads[0.5](backbone(images, width=0.5))
    """
    state, _ = read_state_dict(path)
    if not state.has("fc.linears.0.weight"):
        raise ConversionError(
            f"{path} has no switchable linear probe ('fc.linears.0.weight'): "
            f"not a SlimCLR linear-evaluation checkpoint. For a pretraining "
            f"checkpoint use load_slimclr(path)."
        )
    backbone = _backbone(state, input_shape, name)
    classifiers = {}
    for i, width in enumerate(backbone.widths.values):
        features = backbone.feature_dim(width)
        weight = state.array(f"fc.linears.{i}.weight")
        if weight.ndim != 2 or weight.shape[1] != features:
            raise ConversionError(
                f"{path}: 'fc.linears.{i}.weight' has shape {weight.shape}; "
                f"width {width:g} has {features} features."
            )
        dense = keras.layers.Dense(weight.shape[0], name=f"probe_w{width:g}")
        dense.build((None, features))
        dense.set_weights([weight.T, state.array(f"fc.linears.{i}.bias",
                                                 (weight.shape[0],))])
        classifiers[width] = dense
    return backbone, classifiers


# ------------------------------------------------------------------ layout
def _layout(state):
    keys = set(state.keys())
    for layout, online, momentum in _ENCODERS:
        if f"{online}conv1.weight" not in keys:
            continue
        if momentum and f"{momentum}conv1.weight" not in keys:
            continue
        if layout == "simclr" and f"{online}fc.1.bn.0.running_mean" not in keys:
            continue
        return layout, online, momentum
    if "conv1.weight" in keys and any(k.startswith("features.") for k in keys):
        return "backbone", "", None
    sample = sorted(keys)[:6]
    if any(k.startswith(("layer1.", "encoder_q.layer1.")) for k in keys):
        hint = (" It has torchvision-style names (layer1...): a US3L or a "
                "plain ResNet checkpoint; use keras_slim.convert.load_us3l.")
    else:
        hint = ""
    raise ConversionError(
        f"{state.path} is not an official SlimCLR ResNet checkpoint: no "
        f"'encoder_q.conv1.weight', 'base_encoder.conv1.weight' or "
        f"'conv1.weight' with 'features.*' blocks (first keys: {sample}).{hint}"
    )


def _widths(encoder):
    """(relative widths largest first, stem channels of the largest)."""
    sizes, i = [], 0
    while encoder.has(f"bn1.bn.{i}.weight") or encoder.has(
            f"bn1.bn.{i}.running_mean"):
        key = (f"bn1.bn.{i}.weight" if encoder.has(f"bn1.bn.{i}.weight")
               else f"bn1.bn.{i}.running_mean")
        sizes.append(encoder.shape(key)[0])
        i += 1
    if not sizes:
        raise ConversionError(
            f"{encoder.path} has no switchable stem BatchNorm "
            f"('{encoder.prefix}bn1.bn.0.*'): not a slimmable SlimCLR network."
        )
    if any(b >= a for a, b in zip(sizes, sizes[1:])):
        raise ConversionError(
            f"{encoder.path}: the stem BatchNorms have {sizes} channels; a "
            f"width list needs strictly decreasing sizes (largest first), so "
            f"these widths do not form a list."
        )
    stem = encoder.shape("conv1.weight")
    if stem[0] != sizes[0] or stem[1:] != (3, 7, 7):
        raise ConversionError(
            f"{encoder.path}: 'conv1.weight' has shape {stem}; the SlimCLR "
            f"ResNet stem is [{sizes[0]}, 3, 7, 7]."
        )
    return [s / sizes[0] for s in sizes], sizes[0]


def _block_indices(encoder):
    found = set()
    for key in encoder.keys():
        match = re.match(r"features\.(\d+)\.", key)
        if match:
            found.add(int(match.group(1)))
    count = len(found)
    if found != set(range(count)):
        raise ConversionError(
            f"{encoder.path}: blocks {sorted(found)} are not numbered 0.."
            f"{count - 1}: the file is incomplete."
        )
    return range(count)


def _depth(encoder):
    stages = []
    for k in _block_indices(encoder):
        if not encoder.has(f"features.{k}.conv3.weight"):
            raise ConversionError(
                f"{encoder.path}: block {k} has no 'conv3': SlimCLR's ResNet "
                f"uses bottleneck blocks (ResNet-50/101/152)."
            )
        if encoder.has(f"features.{k}.shortcut.0.weight"):
            stages.append(0)  # a projection shortcut opens every stage
        if not stages:
            raise ConversionError(
                f"{encoder.path}: the first block has no projection shortcut."
            )
        stages[-1] += 1
    depth = _DEPTHS.get(tuple(stages))
    if depth is None:
        raise ConversionError(
            f"{encoder.path}: blocks per stage {stages} match no ResNet "
            f"(50: [3, 4, 6, 3], 101: [3, 4, 23, 3], 152: [3, 8, 36, 3])."
        )
    return depth


def _backbone(encoder, input_shape, name):
    from keras_slim.backbones import SlimResNet

    widths, base_width = _widths(encoder)
    try:
        backbone = SlimResNet(
            widths=widths, depth=_depth(encoder), stem="imagenet",
            base_width=base_width, padding="symmetric",
            input_normalization=IMAGENET_NORMALIZATION,
            input_shape=input_shape, name=name,
        )
    except ValueError as err:
        raise ConversionError(
            f"{encoder.path}: its widths {widths} make no keras_slim width "
            f"list ({err})."
        ) from None
    _assign_backbone(backbone, encoder)
    return backbone


def _assign_backbone(backbone, encoder):
    """Copies an official encoder's tensors into a matching SlimResNet."""
    _check_channel_rounding(encoder, backbone)
    for key, layer, kind in backbone_entries(backbone):
        if kind == "conv":
            assign_conv(layer, encoder, f"{key}.weight")
        else:
            _assign_switchable(layer, encoder, key)


def _check_channel_rounding(encoder, backbone):
    """Every width's channel counts in the file equal the Keras ones.

    The official code keeps `int(c * w)` channels; keras_slim rounds to the
    nearest: they agree for the released widths, and a file where they
    differ fails here rather than converting into a wrong network.
    """
    for i, width in enumerate(backbone.widths.values):
        for key, norm in _switchable_norms(backbone):
            expected = norm.channels_at(width)
            found = encoder.shape(f"{key}.bn.{i}.running_mean")[0]
            if found != expected:
                raise ConversionError(
                    f"{encoder.path}: '{encoder.prefix}{key}.bn.{i}' has "
                    f"{found} channels at width {width:g}; keras_slim's "
                    f"rounding gives {expected}. This width list cannot be "
                    f"represented exactly."
                )


def _switchable_norms(backbone):
    for key, layer, kind in backbone_entries(backbone):
        if kind == "switchable":
            yield key, layer


def _assign_switchable(switchable, state, key, bias_before=None):
    for i, norm in enumerate(switchable.norms):
        extra = None
        if bias_before is not None:
            extra = bias_before[: norm.moving_mean.shape[0]]
        assign_batch_norm(norm, state, f"{key}.bn.{i}", bias_before=extra)


# ------------------------------------------------------------------ heads
def _method(state, layout, online, momentum, backbone, method_options):
    from keras_slim.methods import SlimCLR

    encoder = state.scope(online)
    options = {"base": layout}
    if layout == "mocov2":
        options["hidden_dim"] = encoder.shape("fc.0.weight")[0]
        options["projection_dim"] = encoder.shape("fc.2.weight")[0]
        queue_shape = state.shape("queue")
        if len(queue_shape) != 2 or queue_shape[0] != options["projection_dim"]:
            raise ConversionError(
                f"{state.path}: 'queue' has shape {queue_shape}; MoCo v2 "
                f"keeps [{options['projection_dim']}, K]."
            )
        options["queue_size"] = queue_shape[1]
    else:
        options["hidden_dim"] = encoder.shape("fc.0.weight")[0]
        options["projection_dim"] = encoder.shape("fc.3.weight")[0]
    if layout == "mocov3":
        hidden = state.shape("predictor.0.weight")[0]
        if hidden != options["hidden_dim"]:
            raise ConversionError(
                f"{state.path}: the predictor's hidden size ({hidden}) differs "
                f"from the projector's ({options['hidden_dim']}); keras_slim's "
                f"SlimCLR uses one hidden size for both."
            )
    clash = sorted(set(options) & set(method_options))
    if clash:
        raise ConversionError(
            f"{clash} come from the checkpoint {state.path}; do not pass "
            f"them.")
    model = SlimCLR(backbone, **options, **method_options)
    _assign_head(model.projector, encoder, layout)
    if layout == "mocov3":
        _assign_predictor(model.predictor, state)
    if momentum is not None:
        key_state = state.scope(momentum)
        _check_same_widths(encoder, key_state)
        _assign_backbone(model.key_backbone, key_state)
        _assign_head(model.key_projector, key_state, layout)
    if layout == "mocov2":
        model.queue.assign(state.array("queue").T)
        model.queue_pointer.assign(int(np.asarray(state.array("queue_ptr"))
                                       .reshape(-1)[0]))
    return model


def _check_same_widths(encoder, key_state):
    if _widths(encoder) != _widths(key_state):
        raise ConversionError(
            f"{encoder.path}: the key encoder's widths differ from the "
            f"query encoder's."
        )


def _assign_head(head, state, layout):
    first, second = head.dense_layers
    if layout == "mocov2":
        assign_dense(first, state, "fc.0")
        assign_dense(second, state, "fc.2")
        return
    has_bias = state.has("fc.0.bias")
    assign_dense(first, state, "fc.0", bias=False)
    bias = state.array("fc.0.bias") if has_bias else None
    _assign_switchable(head.norms[0], state, "fc.1", bias_before=bias)
    assign_dense(second, state, "fc.3", bias=False)
    bias = state.array("fc.3.bias") if state.has("fc.3.bias") else None
    _assign_switchable(head.norms[1], state, "fc.4", bias_before=bias)


def _assign_predictor(head, state):
    first, second = head.dense_layers
    assign_dense(first, state, "predictor.0", bias=False)
    _assign_switchable(head.norms[0], state, "predictor.1")
    assign_dense(second, state, "predictor.3")
