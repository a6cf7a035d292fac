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

import keras

from keras_slim.convert._slimclr_backbone import IMAGENET_NORMALIZATION
from keras_slim.convert._slimclr_backbone import build_backbone
from keras_slim.convert._slimclr_backbone import encoder_depth
from keras_slim.convert._slimclr_backbone import encoder_layout
from keras_slim.convert._slimclr_backbone import encoder_widths
from keras_slim.convert._slimclr_method import slimclr_method
from keras_slim.convert._state import ConversionError
from keras_slim.convert._state import read_state_dict

__all__ = ["IMAGENET_NORMALIZATION", "load_slimclr", "load_slimclr_lincls",
           "inspect_slimclr"]


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
    layout, online, _ = encoder_layout(state)
    encoder = state.scope(online)
    widths, base_width = encoder_widths(encoder)
    info = {"layout": layout, "widths": widths, "base_width": base_width,
            "depth": encoder_depth(encoder)}
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

    ```python
    import os
    import tempfile

    import numpy as np
    from keras_slim.backbones import SlimResNet
    from keras_slim.convert import load_slimclr, slimclr_state_dict
    from keras_slim.convert import write_torch_checkpoint

    # A stand-in for a released file (slimclr-mocov2-ep800-eda810a6a9.pth.tar):
    # a tiny ResNet-50 written in the official layout.
    official = SlimResNet(depth=50, stem="imagenet", base_width=8,
                          widths=[1.0, 0.5], padding="symmetric")
    path = os.path.join(tempfile.mkdtemp(), "slimclr.pth.tar")
    write_torch_checkpoint({"state_dict": slimclr_state_dict(official)}, path)
    backbone = load_slimclr(path)
    assert backbone.widths.values == (1.0, 0.5)  # read from the file
    images = np.random.default_rng(0).random((2, 32, 32, 3), "float32")
    features = backbone(images, width=0.5)  # images in [0, 1]
    ```

    References:
        - [Zhao et al., Slimmable Networks for Contrastive Self-supervised
          Learning, IJCV 2024](https://arxiv.org/abs/2209.15525)
    """
    state, _ = read_state_dict(path)
    layout, online, momentum = encoder_layout(state)
    if method_options and not as_method:
        raise TypeError(
            f"SlimCLR options {sorted(method_options)} need as_method=True.")
    if as_method and layout == "backbone":
        raise ConversionError(
            f"{path} is a linear-evaluation (or supervised) checkpoint: it has "
            f"no projection head or key encoder to build a SlimCLR model from. "
            f"Use load_slimclr_lincls(path), or pass the pretraining file."
        )
    backbone = build_backbone(state.scope(online), input_shape, name)
    if not as_method:
        return backbone
    return slimclr_method(state, layout, online, momentum, backbone,
                          method_options)


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

    ```python
    import os
    import tempfile

    import numpy as np
    from keras_slim.backbones import SlimResNet
    from keras_slim.convert import load_slimclr_lincls, slimclr_state_dict
    from keras_slim.convert import write_torch_checkpoint

    # A stand-in for a released linear-evaluation file: a tiny ResNet-50 and
    # one 10-class probe per width, `fc.linears.{i}`.
    official = SlimResNet(depth=50, stem="imagenet", base_width=8,
                          widths=[1.0, 0.5], padding="symmetric")
    state = slimclr_state_dict(official)
    for i, width in enumerate(official.widths.values):
        features = official.feature_dim(width)
        state[f"fc.linears.{i}.weight"] = np.zeros((10, features), "float32")
        state[f"fc.linears.{i}.bias"] = np.zeros(10, "float32")
    path = os.path.join(tempfile.mkdtemp(), "slimclr-lincls.pth.tar")
    write_torch_checkpoint({"state_dict": state}, path)
    backbone, heads = load_slimclr_lincls(path)
    images = np.zeros((2, 32, 32, 3), "float32")
    logits = heads[0.5](backbone(images, width=0.5))
    assert logits.shape == (2, 10)
    ```
    """
    state, _ = read_state_dict(path)
    if not state.has("fc.linears.0.weight"):
        raise ConversionError(
            f"{path} has no switchable linear probe ('fc.linears.0.weight'): "
            f"not a SlimCLR linear-evaluation checkpoint. For a pretraining "
            f"checkpoint use load_slimclr(path)."
        )
    backbone = build_backbone(state, input_shape, name)
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
