"""What a SlimCLR checkpoint's ResNet is, and its tensors into a `SlimResNet`
(see `keras_slim/convert/slimclr.py` for the official layout)."""

import re

from keras_slim.backbones import SlimResNet
from keras_slim.convert._slimclr_layout import backbone_entries
from keras_slim.convert._state import ConversionError
from keras_slim.convert._state import assign_batch_norm
from keras_slim.convert._state import assign_conv


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


def encoder_layout(state):
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


def encoder_widths(encoder):
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


def encoder_depth(encoder):
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


def build_backbone(encoder, input_shape, name):
    widths, base_width = encoder_widths(encoder)
    try:
        backbone = SlimResNet(
            widths=widths, depth=encoder_depth(encoder), stem="imagenet",
            base_width=base_width, padding="symmetric",
            input_normalization=IMAGENET_NORMALIZATION,
            input_shape=input_shape, name=name,
        )
    except ValueError as err:
        raise ConversionError(
            f"{encoder.path}: its widths {widths} make no keras_slim width "
            f"list ({err})."
        ) from None
    assign_backbone(backbone, encoder)
    return backbone


def assign_backbone(backbone, encoder):
    """Copies an official encoder's tensors into a matching SlimResNet."""
    _check_channel_rounding(encoder, backbone)
    for key, layer, kind in backbone_entries(backbone):
        if kind == "conv":
            assign_conv(layer, encoder, f"{key}.weight")
        else:
            assign_switchable(layer, encoder, key)


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


def assign_switchable(switchable, state, key, bias_before=None):
    for i, norm in enumerate(switchable.norms):
        extra = None
        if bias_before is not None:
            extra = bias_before[: norm.moving_mean.shape[0]]
        assign_batch_norm(norm, state, f"{key}.bn.{i}", bias_before=extra)
