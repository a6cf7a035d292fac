import keras

from keras_slim.backbones._resnet_blocks import ResidualBlock
from keras_slim.backbones.slim_backbone import SlimBackbone
from keras_slim.layers import SlimConv2D
from keras_slim.layers import slim_batch_norm

_STAGES = {
    # ResNet-10: one basic block a stage, for the smallest devices (and
    # fast tests of everything around the network).
    10: ([1, 1, 1, 1], False),
    18: ([2, 2, 2, 2], False),
    34: ([3, 4, 6, 3], False),
    50: ([3, 4, 6, 3], True),
    101: ([3, 4, 23, 3], True),
    152: ([3, 8, 36, 3], True),
}
_PADDINGS = ("same", "symmetric")


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimResNet(SlimBackbone):
    """Slimmable ResNet-10/18/34/50/101/152 returning globally pooled features.

    Every convolution slices its channels by width; every BatchNorm is
    switchable (a width list) or a sliced shared BN (a width range). The image
    input of the stem and nothing else is unsliced. At width `w` the network
    computes exactly a ResNet whose stages have `channels(c, w)` channels.

    Args:
        widths: a `keras_slim.Widths`, a width list (e.g.
            `[1.0, 0.75, 0.5, 0.25]`) or its config dict. Default: that list.
        depth: 10, 18, 34 (basic blocks), 50, 101 or 152 (bottleneck
            blocks).
        stem: `"cifar"` (3x3 stride-1 convolution, no max-pool, for 32x32
            images) or `"imagenet"` (7x7 stride-2 convolution + 3x3 max-pool).
        base_width: channels of the first stage at width 1.0 (64 in the
            paper); the stages have `base_width * [1, 2, 4, 8]` channels (x4
            after a bottleneck). Lower it to pretrain on a small machine.
        zero_init_residual: bool, start each block's last BN gamma at zero.
        input_shape: image shape `(height, width, channels)`.
        synchronized: bool, cross-replica BatchNorm statistics.
        bn_momentum: float, moving-average momentum of the BN statistics
            (Keras convention; 0.9 equals PyTorch's 0.1).
        bn_epsilon: float.
        padding: `"same"` (Keras: a stride-2 layer pads 0 pixels before and
            1 after) or `"symmetric"` (PyTorch/torchvision: the stem, the
            max-pool and every strided 3x3 convolution pad `k // 2` pixels on
            every side). The two see different pixels, so weights trained in
            PyTorch (`keras_slim.convert`) need `"symmetric"`.
        input_normalization: `None`, or a dict `{"mean": [...], "std": [...]}`
            (one value per image channel) applied to the images first, inside
            the network and its sub-networks: e.g. ImageNet's statistics for
            converted checkpoints, so that they take images in [0, 1].
        **kwargs: base `keras.Model` arguments (`name`, `dtype`).

    Example:

    ```python
    import numpy as np
    from keras_slim.backbones import SlimResNet

    backbone = SlimResNet(depth=18, stem="cifar", base_width=16,
                          widths=[1.0, 0.5, 0.25])
    features = backbone(np.zeros((4, 32, 32, 3)), width=0.5)
    assert features.shape == (4, 64)
    plain = backbone.subnetwork(0.5)  # a keras.Model of standard layers
    assert plain(np.zeros((4, 32, 32, 3))).shape == (4, 64)
    ```

    References:
        - [He et al., Deep Residual Learning, CVPR 2016](https://arxiv.org/abs/1512.03385)
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
    """

    def __init__(
        self,
        widths=(1.0, 0.75, 0.5, 0.25),
        depth=18,
        stem="cifar",
        base_width=64,
        zero_init_residual=False,
        input_shape=(None, None, 3),
        synchronized=False,
        bn_momentum=0.9,
        bn_epsilon=1e-5,
        padding="same",
        input_normalization=None,
        **kwargs,
    ):
        super().__init__(
            widths=widths, input_shape=input_shape,
            synchronized=synchronized, **kwargs,
        )
        if depth not in _STAGES:
            raise ValueError(
                f"`depth` must be one of {sorted(_STAGES)}, got {depth!r}."
            )
        if stem not in ("cifar", "imagenet"):
            raise ValueError(
                f"`stem` must be 'cifar' (32x32 images) or 'imagenet', got "
                f"{stem!r}."
            )
        if int(base_width) < 1:
            raise ValueError(f"`base_width` must be >= 1, got {base_width}.")
        self.depth = depth
        self.stem = stem
        self.base_width = int(base_width)
        self.zero_init_residual = bool(zero_init_residual)
        self.bn_momentum = float(bn_momentum)
        self.bn_epsilon = float(bn_epsilon)
        if padding not in _PADDINGS:
            raise ValueError(
                f"`padding` must be one of {_PADDINGS}, got {padding!r}."
            )
        self.padding = padding
        self.input_normalization = _check_normalization(
            input_normalization, self.image_shape[-1]
        )
        norm_kwargs = self._norm_kwargs()

        blocks_per_stage, bottleneck = _STAGES[depth]
        if stem == "cifar":
            self.stem_conv = SlimConv2D(
                self.base_width, 3, self.widths, slice_input=False,
                name="stem_conv",
            )
        else:
            self.stem_conv = SlimConv2D(
                self.base_width, 7, self.widths, strides=2,
                padding="valid" if padding == "symmetric" else "same",
                slice_input=False, name="stem_conv",
            )
        self.stem_norm = slim_batch_norm(
            self.widths, name="stem_bn", **norm_kwargs
        )
        self.blocks = []
        # Total stride after each block (the pyramid levels): the stem
        # divides by 1 (cifar) or 4 (imagenet: conv and max-pool).
        self.block_strides = []
        stride = 1 if stem == "cifar" else 4
        in_channels = self.base_width
        for stage, count in enumerate(blocks_per_stage):
            filters = self.base_width * 2**stage
            for index in range(count):
                block = ResidualBlock(
                    filters,
                    strides=2 if (stage > 0 and index == 0) else 1,
                    in_channels=in_channels,
                    bottleneck=bottleneck,
                    widths=self.widths,
                    norm_kwargs=norm_kwargs,
                    zero_init_residual=self.zero_init_residual,
                    padding=padding,
                    name=f"stage{stage + 1}_block{index + 1}",
                )
                self.blocks.append(block)
                stride *= 2 if (stage > 0 and index == 0) else 1
                self.block_strides.append(stride)
                in_channels = block.out_channels
        self.full_feature_dim = in_channels
        self.build()

    def _norm_kwargs(self):
        kwargs = {"epsilon": self.bn_epsilon, "synchronized": self.synchronized}
        if not self.widths.is_range:
            kwargs["momentum"] = self.bn_momentum
        return kwargs

    def forward(self, x, run):
        if self.input_normalization is not None:
            x = run.normalize(x, self.input_normalization["mean"],
                              self.input_normalization["std"])
        if self.stem_conv.padding == "valid":
            x = run.pad(x, 3)
        x = run.relu(run.norm(self.stem_norm, run.conv(self.stem_conv, x)))
        if self.stem == "imagenet":
            if self.padding == "symmetric":
                # Zeros pad like PyTorch's -inf here: the input is post-ReLU.
                x = run.max_pool(run.pad(x, 1), 3, 2, padding="valid")
            else:
                x = run.max_pool(x, 3, 2)
        for block, stride in zip(self.blocks, self.block_strides):
            x = run.stage(block.forward(x, run), stride)
        return run.global_pool(x)

    def feature_dim(self, width=None):
        return self.widths.channels(self.full_feature_dim, width)

    # `keras_slim.convert.load_preset`, set by `keras_slim.convert.presets`
    # when imported (keras_slim's __init__ imports it): backbones never
    # import `convert`, which builds backbones.
    preset_loader = None

    @classmethod
    def from_preset(cls, name, lincls=False, **kwargs):
        """A released pretrained backbone (`keras_slim.convert.PRESETS`).

        Downloads the official checkpoint once, checks its SHA-256, converts
        it and caches the `.keras` file. With `lincls=True` returns
        `(backbone, {width: Dense})`, the per-width ImageNet classifiers.
        See `keras_slim.convert.load_preset` for the other arguments.
        """
        if SlimResNet.preset_loader is None:
            raise RuntimeError(
                "No preset loader: import keras_slim (or keras_slim.convert) "
                "before SlimResNet.from_preset.")
        return SlimResNet.preset_loader(name, lincls=lincls, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "depth": self.depth,
                "stem": self.stem,
                "base_width": self.base_width,
                "zero_init_residual": self.zero_init_residual,
                "bn_momentum": self.bn_momentum,
                "bn_epsilon": self.bn_epsilon,
                "padding": self.padding,
                "input_normalization": self.input_normalization,
            }
        )
        return config


def _check_normalization(normalization, channels):
    if normalization is None:
        return None
    if not isinstance(normalization, dict) or set(normalization) != {
        "mean", "std"
    }:
        raise ValueError(
            "`input_normalization` must be None or a dict with the keys "
            f"'mean' and 'std', got {normalization!r}."
        )
    values = {}
    for key in ("mean", "std"):
        try:
            values[key] = [float(v) for v in normalization[key]]
        except (TypeError, ValueError):
            raise ValueError(
                f"`input_normalization['{key}']` must be a list of numbers, "
                f"got {normalization[key]!r}."
            ) from None
        if len(values[key]) != channels:
            raise ValueError(
                f"`input_normalization['{key}']` needs one value per image "
                f"channel ({channels}), got {len(values[key])}."
            )
    if min(values["std"]) <= 0:
        raise ValueError(
            f"`input_normalization['std']` must be positive, got "
            f"{values['std']}."
        )
    return values
