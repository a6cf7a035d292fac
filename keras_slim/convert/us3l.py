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

from keras_slim.backbones import SlimResNet
from keras_slim.convert._state import ConversionError
from keras_slim.convert._state import read_state_dict
from keras_slim.convert._us3l_layout import assign_backbone
from keras_slim.convert._us3l_layout import assign_statistics
from keras_slim.convert._us3l_layout import check_rounding
from keras_slim.convert._us3l_layout import check_unused
from keras_slim.convert._us3l_layout import describe
from keras_slim.convert._us3l_layout import locate
from keras_slim.convert._us3l_layout import torch_layers
from keras_slim.convert._us3l_method import us3l_method
from keras_slim.convert.slimclr import IMAGENET_NORMALIZATION
from keras_slim.evaluation import calibrate_batch_norm
from keras_slim.width import Widths

__all__ = ["CIFAR_NORMALIZATION", "inspect_us3l", "load_us3l"]

# The official loaders' transforms.Normalize: CIFAR in datasets/__init__.py
# (build_ssl_transform), workers/linear.py and workers/slimmable.py; the
# ImageNet-stem networks (ImageNet, transfer datasets) use ImageNet's.
CIFAR_NORMALIZATION = {"mean": [0.4914, 0.4822, 0.4465],
                       "std": [0.2023, 0.1994, 0.2010]}


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
    prefix = locate(state)
    info = describe(state.scope(prefix), meta)
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

    ```python
    import os
    import tempfile

    import numpy as np
    from keras_slim import Widths
    from keras_slim.backbones import SlimResNet
    from keras_slim.convert import load_us3l, us3l_state_dict
    from keras_slim.convert import write_torch_checkpoint
    from keras_slim.evaluation import calibrate_batch_norm, with_stat_widths

    # A stand-in for a US3L file: a tiny CIFAR ResNet-18, torchvision's names.
    official = SlimResNet(depth=18, stem="cifar", base_width=8,
                          widths=Widths(min_width=0.25, max_width=1.0))
    path = os.path.join(tempfile.mkdtemp(), "checkpoint.pth.tar")
    write_torch_checkpoint({"state_dict": us3l_state_dict(official),
                            "arch": "cifar_resnet18"}, path)
    backbone = load_us3l(path)
    assert (backbone.widths.min_width, backbone.widths.max_width) == (0.25, 1.0)
    images = np.random.default_rng(0).random((4, 32, 32, 3), "float32")
    z = backbone(images, width=0.3, training=True)  # batch statistics
    backbone = with_stat_widths(backbone, [0.3])  # statistics for width 0.3
    calibrate_batch_norm(backbone, images, widths=[0.3])
    features = backbone(images, width=0.3)  # inference mode
    ```

    References:
        - [Cao et al., Three Guidelines You Should Know for Universally
          Slimmable Self-Supervised Learning, CVPR 2023](https://arxiv.org/abs/2303.07126)
        - [Yu and Huang, Universally Slimmable Networks and Improved
          Training Techniques, ICCV 2019](https://arxiv.org/abs/1903.05134)
    """
    state, meta = read_state_dict(path)
    prefix = locate(state)
    encoder = state.scope(prefix)
    info = describe(encoder, meta)
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
    check_rounding(encoder, info, widths)
    if input_normalization == "auto":
        input_normalization = (CIFAR_NORMALIZATION if info["stem"] == "cifar"
                               else IMAGENET_NORMALIZATION)
    backbone = SlimResNet(
        widths=widths, depth=info["depth"], stem=info["stem"],
        base_width=info["base_width"], padding="symmetric",
        input_normalization=input_normalization, input_shape=input_shape,
        name=name,
    )
    check_unused(encoder, backbone)
    assign_backbone(backbone, encoder)
    if statistics_width is not None:
        for key, _, norm in torch_layers(backbone):
            assign_statistics(norm, encoder, key[1], statistics_width)
    if calibration_images is not None:
        targets = [w for w in backbone.widths.stat_widths
                   if statistics_width is None
                   or abs(w - statistics_width) > 1e-6]
        if targets:
            calibrate_batch_norm(backbone, calibration_images, widths=targets,
                                 batch_size=calibration_batch_size)
    if as_method:
        return us3l_method(state, backbone, method_options)
    return backbone


def _holds(widths, width):
    return any(abs(w - width) <= 1e-6 for w in widths.stat_widths)
