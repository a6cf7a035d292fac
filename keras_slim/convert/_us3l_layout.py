"""Where a US3L checkpoint keeps its ResNet, what the ResNet is, and how its
tensors map onto a `SlimResNet` (see `keras_slim/convert/us3l.py`)."""

import re

import numpy as np
from keras import ops

from keras_slim.convert._state import ConversionError
from keras_slim.convert._state import assign_conv
from keras_slim.width import make_divisible


_DEPTHS = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}


# Where the official scripts put the backbone (utils/train.py
# load_ssl_checkpoint strips the same prefixes); "" is a bare backbone.
_PREFIXES = ("encoder_q.", "encoder.", "")


_STEMS = {3: "cifar", 7: "imagenet"}


_BN_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


_ARCH = re.compile(r"^(?:us_)?(cifar_)?resnet(\d+)(?:_v2)?$")


def assign_backbone(backbone, encoder):
    for key, conv, norm in torch_layers(backbone):
        assign_conv(conv, encoder, f"{key[0]}.weight")
        assign_affine(norm, encoder, key[1])


# ------------------------------------------------------------------ layout
def locate(state):
    """The prefix of the backbone's tensors, or a ConversionError."""
    keys = set(state.keys())
    for prefix in _PREFIXES:
        if f"{prefix}conv1.weight" in keys and (
                f"{prefix}layer1.0.conv1.weight" in keys):
            return prefix
    sample = sorted(keys)[:6]
    raise ConversionError(
        f"{state.path} is not a US3L ResNet checkpoint: no 'conv1.weight' "
        f"with 'layer1.0.*' blocks at 'encoder_q.', 'encoder.' or the top "
        f"level (first keys: {sample}).{_hint(keys)}"
    )


def _hint(keys):
    def has(pattern):
        return any(re.match(pattern, k) for k in keys)

    if has(r"(encoder_q\.|base_encoder\.)?features\.\d+\.conv1\.weight$") \
            and has(r".*bn1\.bn\.0\.(weight|running_mean)$"):
        return (" It has SlimCLR's layout (blocks 'features.{k}', one "
                "BatchNorm per width 'bn.{i}'): use "
                "keras_slim.convert.load_slimclr(path).")
    if has(r"(encoder_q\.|encoder\.)?features\.0\.0\.weight$"):
        return (" It looks like a MobileNetV2 ('features.0.0.weight', e.g. "
                "US3L's us_mobilenetv2): load_us3l converts ResNets only.")
    if has(r".*layer1\.0\.conv1\.weight$"):
        return (" Its ResNet sits under another prefix than the ones US3L "
                "writes ('encoder_q.', 'encoder.').")
    return ""


def describe(encoder, meta):
    """Depth, stem, base width and block kind, inferred from the tensors."""
    keys = set(encoder.keys())
    where = f"{encoder.path}"
    if encoder.has("bn1.bn.0.weight"):
        raise ConversionError(
            f"{where} has switchable BatchNorms ('{encoder.prefix}bn1.bn.0."
            f"*', one per width of a fixed list: US3L's s_* slimmable "
            f"networks): load_us3l converts universally slimmable networks, "
            f"whose BatchNorms share one affine ('bn1.weight')."
        )
    stem = encoder.shape("conv1.weight")
    if len(stem) != 4 or stem[1] != 3 or stem[2] != stem[3] or (
            stem[2] not in _STEMS):
        raise ConversionError(
            f"{where}: '{encoder.prefix}conv1.weight' has shape {stem}; a "
            f"US3L ResNet stem is [C, 3, 3, 3] (CIFAR) or [C, 3, 7, 7] "
            f"(ImageNet)."
        )
    base_width = stem[0]
    blocks = {}
    for key in keys:
        match = re.match(r"layer(\d+)\.(\d+)\.", key)
        if match:
            blocks.setdefault(int(match.group(1)), set()).add(
                int(match.group(2)))
    if sorted(blocks) != [1, 2, 3, 4]:
        raise ConversionError(
            f"{where} has the stages {sorted(blocks)} ('{encoder.prefix}"
            f"layer*'); a ResNet has layer1..layer4. The file is incomplete "
            f"or of another architecture."
        )
    counts = []
    for stage in (1, 2, 3, 4):
        found = blocks[stage]
        if found != set(range(len(found))):
            raise ConversionError(
                f"{where}: the blocks of layer{stage} are numbered "
                f"{sorted(found)}, not 0..{len(found) - 1}: the file is "
                f"incomplete."
            )
        counts.append(len(found))
    bottleneck = encoder.has("layer1.0.conv3.weight")
    for stage, count in zip((1, 2, 3, 4), counts):
        for i in range(count):
            if encoder.has(f"layer{stage}.{i}.conv3.weight") != bottleneck:
                raise ConversionError(
                    f"{where}: block layer{stage}.{i} "
                    f"{'lacks' if bottleneck else 'has'} a 'conv3' unlike "
                    f"layer1.0: basic and bottleneck blocks mixed."
                )
    depth = _DEPTHS.get((tuple(counts), bottleneck))
    if depth is None:
        kind = "bottleneck" if bottleneck else "basic"
        known = ", ".join(f"{d}: {list(c)} {'bottleneck' if b else 'basic'}"
                          for (c, b), d in _DEPTHS.items())
        raise ConversionError(
            f"{where}: {counts} {kind} blocks per stage match no ResNet "
            f"({known})."
        )
    first = encoder.shape("layer1.0.conv1.weight")
    if first[:2] != (base_width, base_width):
        raise ConversionError(
            f"{where}: 'layer1.0.conv1.weight' has shape {first}; with "
            f"{base_width} stem channels a US3L ResNet has [{base_width}, "
            f"{base_width}, k, k] there (wide or grouped bottlenecks, "
            f"width_per_group != 64 or groups > 1, are not supported)."
        )
    info = {"depth": depth, "stem": _STEMS[stem[2]], "base_width": base_width,
            "bottleneck": bottleneck,
            "running_statistics": encoder.has("bn1.running_mean")}
    _check_arch(encoder, meta, info)
    return info


def _check_arch(encoder, meta, info):
    """The file's `arch` (the config's MODEL.ARCH), where it names a ResNet,
    agrees with the tensors."""
    arch = meta.get("arch")
    match = _ARCH.match(arch) if isinstance(arch, str) else None
    if match is None:
        return
    stem = "cifar" if match.group(1) else "imagenet"
    if int(match.group(2)) != info["depth"] or stem != info["stem"]:
        raise ConversionError(
            f"{encoder.path} says arch={arch!r}, but its tensors are a "
            f"ResNet-{info['depth']} with the {info['stem']} stem: the file "
            f"is inconsistent."
        )


def _us3l_channels(channels, width):
    """Channels the official USConv2d / USBatchNorm2d keep at `width`
    (`make_divisible(c * w, 8, min_value=1)`; slicing stops at `c`)."""
    return min(channels, make_divisible(channels * width, 8, min_value=1))


def check_rounding(encoder, info, widths):
    """keras_slim keeps the official channel counts at every range width.

    Both round `c * w` to the nearest multiple of 8, adding 8 where that
    loses more than 10%; they differ only below `c * w = 4`, where US3L's
    `min_value=1` gives 1 or 9 channels and keras_slim 8 (both capped at
    `c`). That needs a layer of more than 8 channels at `c * w < 4`, or of
    more than 1 at `c * w <= 10 / 9`.
    """
    base = info["base_width"]
    counts = {base * 2 ** s for s in range(4)}
    if info["bottleneck"]:
        counts |= {4 * c for c in counts}
    lo = widths.min_width
    for c in sorted(counts):
        if c * lo < 4 and (c > 8 or (c > 1 and c * lo <= 10 / 9)):
            raise ConversionError(
                f"{encoder.path}: at width {lo:g} a layer of {c} channels "
                f"keeps {_us3l_channels(c, lo)} in US3L "
                f"(make_divisible(c * w, 8, min_value=1)) but "
                f"{widths.channels(c, lo)} in keras_slim. Use a min_width of "
                f"at least {4 / c if c > 8 else 10 / (9 * c):.4g}."
            )


def torch_layers(backbone):
    """((torch conv key, torch BN key), SlimConv2D, SlimBatchNormalization)."""
    yield ("conv1", "bn1"), backbone.stem_conv, backbone.stem_norm
    counts = {}
    for block in backbone.blocks:
        stage = int(re.search(r"stage(\d+)_", block.name).group(1))
        index = counts.get(stage, 0)
        counts[stage] = index + 1
        prefix = f"layer{stage}.{index}."
        for j, (conv, norm) in enumerate(zip(block.convs, block.norms)):
            yield ((f"{prefix}conv{j + 1}", f"{prefix}bn{j + 1}"), conv, norm)
        if block.shortcut_conv is not None:
            yield ((f"{prefix}downsample.0", f"{prefix}downsample.1"),
                   block.shortcut_conv, block.shortcut_norm)


def check_unused(encoder, backbone):
    """Every backbone tensor of the file has a Keras place, and back."""
    expected = set()
    for (conv, norm), _, _ in torch_layers(backbone):
        expected.add(f"{conv}.weight")
        expected |= {f"{norm}.weight", f"{norm}.bias"}
        expected |= {f"{norm}.{b}" for b in _BN_BUFFERS}
    found = {k for k in encoder.keys() if not k.startswith("fc.")}
    extra = sorted(found - expected)
    if extra:
        masks = [k for k in extra if k.rsplit(".", 1)[-1] in (
            "mask", "w_mask", "b_mask", "sort_indices")]
        why = (" They are pruning masks (US3L's usprune / *_v2 variants), "
               "which keras_slim does not model." if masks else
               " The file is of another architecture than the ResNet "
               "inferred.")
        raise ConversionError(
            f"{encoder.path} has {len(extra)} tensors no layer of the "
            f"inferred ResNet-{backbone.depth} takes: "
            f"{[encoder.prefix + k for k in extra[:5]]}.{why}"
        )


def assign_affine(norm, state, key):
    """A USBatchNorm2d's shared affine into a SlimBatchNormalization."""
    channels = norm.gamma.shape[0]
    norm.gamma.assign(state.array(f"{key}.weight", (channels,)))
    norm.beta.assign(state.array(f"{key}.bias", (channels,)))


def assign_statistics(norm, state, key, width):
    """The file's running statistics, sliced to `width`, as that width's."""
    channels = norm.gamma.shape[0]
    i = norm.widths.stat_index(width)
    kept = norm.channels_at(width)
    mean = state.array(f"{key}.running_mean", (channels,))
    variance = state.array(f"{key}.running_var", (channels,))
    norm.moving_means[i].assign(mean[:kept])
    norm.moving_variances[i].assign(variance[:kept])
    norm.calibration_counts[i].assign(1.0)


def us3l_state_dict(backbone):
    """A width-range `SlimResNet`'s weights as the official US3L code names
    them (torchvision's names, no prefix): the inverse of `load_us3l`.

    Convolutions become OIHW; each BatchNorm gives its shared affine
    (`weight`, `bias`) and no running statistics, as a US3L network trained
    with `track_running_stats=False` saves it.

    Returns:
        dict of official key -> float32 numpy array.
    """
    state = {}
    for (conv_key, norm_key), conv, norm in torch_layers(backbone):
        kernel = np.asarray(ops.convert_to_numpy(conv.kernel), np.float32)
        state[f"{conv_key}.weight"] = kernel.transpose(3, 2, 0, 1).copy()
        state[f"{norm_key}.weight"] = np.asarray(
            ops.convert_to_numpy(norm.gamma), np.float32)
        state[f"{norm_key}.bias"] = np.asarray(
            ops.convert_to_numpy(norm.beta), np.float32)
    return state
