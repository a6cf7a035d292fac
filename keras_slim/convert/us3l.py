"""Official US3L checkpoints (PyTorch) into a width-range SlimResNet.

The official code (`megvii-research/US3L-CVPR2023`) trains universally
slimmable ResNets: `models/OFA/us_cifar_resnet.py` (3x3 stride-1 stem, no
max-pool, `F.avg_pool2d(out, 4)`: a global pool for 32x32 images only) and
`models/OFA/us_resnet.py` (torchvision's 7x7 stride-2 stem and max-pool,
global average pool). Tensors have torchvision's names (`conv1`, `bn1`,
`layer{1..4}.{i}.conv{1,2[,3]}` / `bn{1,2[,3]}`, projection shortcut
`downsample.0` / `downsample.1`, stride on the 3x3 convolution, symmetric
padding). Width `w` keeps the leading `make_divisible(c * w, 8,
min_value=1)` channels of every layer but the image input, and every
BatchNorm is one `USBatchNorm2d` whose affine is sliced the same way; it is
built with `track_running_stats=False` (normalizing with the batch
statistics, always) unless a script asks for statistics
(`bn_track_stats=True`: SimSiam, linear evaluation, `workers/calibrate.py`),
which are then one full-size buffer sliced at every width.

The self-supervised wrappers (`utils/ssl_algorithms/*.py`) put the backbone
at `encoder_q.` (its `fc` replaced by the projection MLP), the momentum
encoder at `encoder_k.`, and the scripts save `{"epoch", "arch",
"state_dict", "optimizer"}` with DistributedDataParallel's `module.` prefix;
linear evaluation (`workers/linear.py`) saves the bare backbone and its
classifier `fc`.
"""

import re

from keras_slim.convert._state import ConversionError
from keras_slim.convert._state import assign_conv
from keras_slim.convert._state import read_state_dict
from keras_slim.convert.slimclr import IMAGENET_NORMALIZATION
from keras_slim.width import make_divisible

__all__ = ["CIFAR_NORMALIZATION", "inspect_us3l", "load_us3l"]

# The official loaders' transforms.Normalize: CIFAR in datasets/__init__.py
# (build_ssl_transform), workers/linear.py and workers/slimmable.py; the
# ImageNet-stem networks (ImageNet, transfer datasets) use ImageNet's.
CIFAR_NORMALIZATION = {"mean": [0.4914, 0.4822, 0.4465],
                       "std": [0.2023, 0.1994, 0.2010]}

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


def inspect_us3l(path):
    """What a US3L ResNet checkpoint holds, without building a model.

    Returns:
        dict with `prefix` (where the backbone sits: `"encoder_q."`,
        `"encoder."` or `""`), `depth`, `stem` (`"cifar"` or `"imagenet"`),
        `base_width` (stem channels at width 1.0), `bottleneck`,
        `running_statistics` (whether its BatchNorms saved statistics),
        `momentum_encoder` (whether `encoder_k.` is in the file), and the
        file's `arch` and `epoch` where saved.
    """
    state, meta = read_state_dict(path)
    prefix = _locate(state)
    info = _describe(state.scope(prefix), meta)
    info["prefix"] = prefix
    info["momentum_encoder"] = prefix == "encoder_q." and state.has(
        "encoder_k.conv1.weight")
    for key in ("arch", "epoch"):
        if key in meta:
            info[key] = meta[key]
    return info


def load_us3l(path, min_width=0.25, max_width=1.0, input_shape=(None, None, 3),
              name="us3l_resnet", stat_widths=None,
              input_normalization="auto", statistics_width=None,
              calibration_images=None, calibration_batch_size=256,
              as_method=False, **method_options):
    """A width-range `SlimResNet` (or `US3L` recipe) from a US3L checkpoint.

    Reads the file safely (no torch needed; nothing in it is run), infers the
    depth (basic or bottleneck blocks, blocks per stage), the stem (CIFAR
    3x3 or ImageNet 7x7, from `conv1`'s kernel) and the base width from its
    tensors, and copies every convolution and every BatchNorm's shared
    affine (gamma, beta) into a `SlimResNet` over the width range
    `[min_width, max_width]` (channels `make_divisible(c * w, 8)`, like the
    official `USConv2d` / `USBatchNorm2d`). The projection head or
    classifier (`fc.*`), the momentum encoder (`encoder_k.*`) and the
    predictor are not part of the backbone and are ignored.

    In training mode (`backbone(x, width=w, training=True)`) the converted
    network normalizes with the batch statistics, as US3L always does:
    those features equal the official ones at every width of the range.
    Inference mode needs per-width statistics, which a US3L pretraining file
    does not have (its BatchNorms keep none): **calibrate them per width**
    on training images first, as the official evaluation does
    (`workers/calibrate.py`; `workers/linear.py` `bn_calibrate`), with
    `keras_slim.evaluation.calibrate_batch_norm(backbone, train_images)`,
    or here with `calibration_images=`. Only the range's `stat_widths` keep
    statistics; add widths with `stat_widths=` here or
    `keras_slim.evaluation.with_stat_widths(backbone, widths)` later.

    Args:
        path: a US3L checkpoint (`.pth.tar`): a pretraining file (backbone at
            `encoder_q.`, e.g. SimCLR, SimCLR_Momentum, BYOL, MoCo, SimSiam),
            a calibration file (`workers/calibrate.py`) or a
            linear-evaluation file (bare backbone), with or without the
            `module.` prefix.
        min_width: float, the smallest width of the range (US3L trains
            `[0.25, 1.0]`, `MODEL.OFA.WIDTH_MULT_RANGE`).
        max_width: float, must be 1.0: the file holds the full network.
        input_shape: image shape of the backbone.
        name: the backbone's name.
        stat_widths: widths that keep BatchNorm statistics (default: 8
            evenly spaced widths of the range, see `keras_slim.Widths`).
        input_normalization: `"auto"` (US3L's loaders: CIFAR's statistics
            for the CIFAR stem, ImageNet's for the ImageNet stem, so the
            backbone takes RGB images in [0, 1]), `None` (the backbone takes
            images already normalized) or a `{"mean", "std"}` dict.
        statistics_width: `None`, or the width whose BatchNorm statistics the
            file holds (a linear-evaluation or `checkpoint_width_{w}` file of
            `workers/calibrate.py`, calibrated at `MODEL.OFA.WIDTH_MULT`):
            their leading channels become that width's statistics (added to
            `stat_widths` if needed), so it runs in inference mode as the
            official evaluation does. Statistics saved by a training run
            over many widths (SimSiam) mix all widths: calibrate instead.
        calibration_images: `None`, or training images `(N, H, W, 3)` in
            [0, 1] (numpy or a `tf.data.Dataset`): calibrates every stat
            width (but `statistics_width`) right away with
            `calibrate_batch_norm`.
        calibration_batch_size: images per calibration batch.
        as_method: False: the backbone. True: a pretraining file as the
            whole `keras_slim.methods.US3L` recipe, to continue training or
            to compare steps with the official code: the online backbone,
            the projector, the predictors and the EMA teacher, the base
            (`"simclr"` for SimCLR_Momentum, `"byol"`, `"simsiam"`) and the
            head sizes read from the file. The heads' BatchNorm running
            statistics are not kept (keras_slim's range BNs train on batch
            statistics; calibrate for inference).
        **method_options: with `as_method`, other `US3L` arguments
            (`num_widths`, `temperature`, `momentum`, `group_lambda`,
            `total_steps`, ...; the official CIFAR values are the defaults).

    Returns:
        a `SlimResNet` over the width range (symmetric padding like PyTorch,
        global average pooling: the official CIFAR network's
        `F.avg_pool2d(out, 4)` is the same for 32x32 images, the size it is
        trained and evaluated at). A linear-evaluation file's classifier
        `fc` is not converted: at width `w` it reads the first
        `backbone.feature_dim(w)` features, so `fc.weight[:, :d]` and
        `fc.bias` make a `keras.layers.Dense` on them.

    Raises:
        ConversionError: not a US3L ResNet (a SlimCLR file, another
            architecture, an incomplete file, channel counts keras_slim
            rounds differently at `min_width`): the message says what
            differs. `CheckpointFormatError`: not a PyTorch checkpoint, or
            truncated. `UnsafeCheckpointError`: a pickle that asks for code.

    Example:

    >>> backbone = keras_slim.convert.load_us3l("checkpoint.pth.tar")
    >>> backbone.widths
    Widths(min_width=0.25, max_width=1, divisor=8)
    >>> z = backbone(images, width=0.3, training=True)  # batch statistics
    >>> backbone = keras_slim.evaluation.with_stat_widths(backbone, [0.3])
    >>> keras_slim.evaluation.calibrate_batch_norm(backbone, train_images)
    >>> features = backbone.predict(test_images, width=0.3)
    >>> model = keras_slim.convert.load_us3l("checkpoint.pth.tar",
    ...                                      as_method=True, total_steps=1000)
    >>> model.base  # read from the file (SimCLR_Momentum)
    'simclr'
    >>> widths = model.sampled_widths(999)  # [1.0, a drawn width, 0.25]

    References:
        - [Cao et al., Three Guidelines You Should Know for Universally
          Slimmable Self-Supervised Learning, CVPR 2023](https://arxiv.org/abs/2303.07126)
        - [Yu and Huang, Universally Slimmable Networks and Improved
          Training Techniques, ICCV 2019](https://arxiv.org/abs/1903.05134)
    """
    from keras_slim.backbones import SlimResNet
    from keras_slim.width import Widths

    state, meta = read_state_dict(path)
    prefix = _locate(state)
    encoder = state.scope(prefix)
    info = _describe(encoder, meta)
    if method_options and not as_method:
        raise TypeError(
            f"US3L options {sorted(method_options)} need as_method=True.")
    if as_method and prefix != "encoder_q.":
        raise ConversionError(
            f"{path} holds a bare backbone (at {prefix or 'the top level'!r}"
            f"), not a US3L pretraining file with 'encoder_q.': use "
            f"as_method=False.")
    if float(max_width) != 1.0:
        raise ValueError(
            f"`max_width` must be 1.0: {path} holds the full network, which "
            f"keras_slim's range backbones run at width 1.0. Run it at "
            f"narrower widths with `backbone(x, width=...)`, got "
            f"max_width={max_width}."
        )
    if statistics_width is not None and not info["running_statistics"]:
        raise ConversionError(
            f"{path} has no BatchNorm statistics ('{encoder.prefix}"
            f"bn1.running_mean'): it was trained with US3L's default "
            f"track_running_stats=False, so there is nothing to load at "
            f"width {float(statistics_width):g}. Calibrate instead "
            f"(calibration_images=, or keras_slim.evaluation."
            f"calibrate_batch_norm)."
        )
    try:
        widths = Widths(min_width=min_width, max_width=max_width,
                        stat_widths=stat_widths)
        if statistics_width is not None:
            statistics_width = widths.validate(float(statistics_width))
            if not _holds(widths, statistics_width):
                widths = Widths(
                    min_width=min_width, max_width=max_width,
                    stat_widths=sorted({*widths.stat_widths,
                                        statistics_width}, reverse=True))
    except ValueError as err:
        raise ValueError(f"Bad widths for {path}: {err}") from None
    _check_rounding(encoder, info, widths)
    if input_normalization == "auto":
        input_normalization = (CIFAR_NORMALIZATION if info["stem"] == "cifar"
                               else IMAGENET_NORMALIZATION)
    backbone = SlimResNet(
        widths=widths, depth=info["depth"], stem=info["stem"],
        base_width=info["base_width"], padding="symmetric",
        input_normalization=input_normalization, input_shape=input_shape,
        name=name,
    )
    _check_unused(encoder, backbone)
    _assign_backbone(backbone, encoder)
    if statistics_width is not None:
        for key, _, norm in _layers(backbone):
            _assign_statistics(norm, encoder, key[1], statistics_width)
    if calibration_images is not None:
        from keras_slim.evaluation import calibrate_batch_norm

        targets = [w for w in backbone.widths.stat_widths
                   if statistics_width is None
                   or abs(w - statistics_width) > 1e-6]
        if targets:
            calibrate_batch_norm(backbone, calibration_images, widths=targets,
                                 batch_size=calibration_batch_size)
    if as_method:
        from keras_slim.convert._us3l_method import us3l_method

        return us3l_method(state, backbone, method_options)
    return backbone


def _assign_backbone(backbone, encoder):
    for key, conv, norm in _layers(backbone):
        assign_conv(conv, encoder, f"{key[0]}.weight")
        _assign_affine(norm, encoder, key[1])


# ------------------------------------------------------------------ layout
def _locate(state):
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


def _describe(encoder, meta):
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


def _holds(widths, width):
    return any(abs(w - width) <= 1e-6 for w in widths.stat_widths)


def _us3l_channels(channels, width):
    """Channels the official USConv2d / USBatchNorm2d keep at `width`
    (`make_divisible(c * w, 8, min_value=1)`; slicing stops at `c`)."""
    return min(channels, make_divisible(channels * width, 8, min_value=1))


def _check_rounding(encoder, info, widths):
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


def _layers(backbone):
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


def _check_unused(encoder, backbone):
    """Every backbone tensor of the file has a Keras place, and back."""
    expected = set()
    for (conv, norm), _, _ in _layers(backbone):
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


def _assign_affine(norm, state, key):
    """A USBatchNorm2d's shared affine into a SlimBatchNormalization."""
    channels = norm.gamma.shape[0]
    norm.gamma.assign(state.array(f"{key}.weight", (channels,)))
    norm.beta.assign(state.array(f"{key}.bias", (channels,)))


def _assign_statistics(norm, state, key, width):
    """The file's running statistics, sliced to `width`, as that width's."""
    channels = norm.gamma.shape[0]
    i = norm.widths.stat_index(width)
    kept = norm.channels_at(width)
    mean = state.array(f"{key}.running_mean", (channels,))
    variance = state.array(f"{key}.running_var", (channels,))
    norm.moving_means[i].assign(mean[:kept])
    norm.moving_variances[i].assign(variance[:kept])
    norm.calibration_counts[i].assign(1.0)
