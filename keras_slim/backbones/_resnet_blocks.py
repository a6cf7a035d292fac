"""Residual blocks of SlimResNet (internal: created by the backbone only)."""

import keras

from keras_slim.layers import SlimConv2D
from keras_slim.layers import slim_batch_norm


class ResidualBlock(keras.layers.Layer):
    """A basic (two 3x3) or bottleneck (1x1-3x3-1x1) residual block.

    The stride sits on the 3x3 convolution (ResNet v1.5). Zero-init sets the
    gamma of the block's last BN to zero so the block starts as the identity.
    With `padding="symmetric"` the strided 3x3 convolution pads one pixel on
    every side (PyTorch) instead of Keras' `"same"` (0 before, 1 after).
    """

    def __init__(
        self,
        filters,
        strides,
        in_channels,
        bottleneck,
        widths,
        norm_kwargs,
        zero_init_residual,
        padding="same",
        **kwargs,
    ):
        super().__init__(**kwargs)
        expansion = 4 if bottleneck else 1
        self.out_channels = filters * expansion
        prefix = self.name

        def conv(channels, size, stride, tag):
            pads = padding == "symmetric" and stride != 1 and size > 1
            return SlimConv2D(
                channels, size, widths, strides=stride,
                padding="valid" if pads else "same",
                input_channels=None, name=f"{prefix}_{tag}",
            )

        def norm(tag, zero=False):
            return slim_batch_norm(
                widths, name=f"{prefix}_{tag}",
                gamma_initializer="zeros" if zero else "ones",
                **norm_kwargs,
            )

        if bottleneck:
            self.convs = [
                conv(filters, 1, 1, "conv1"),
                conv(filters, 3, strides, "conv2"),
                conv(self.out_channels, 1, 1, "conv3"),
            ]
        else:
            self.convs = [
                conv(filters, 3, strides, "conv1"),
                conv(filters, 3, 1, "conv2"),
            ]
        count = len(self.convs)
        self.norms = [
            norm(f"bn{i + 1}", zero=zero_init_residual and i == count - 1)
            for i in range(count)
        ]
        self.shortcut_conv = None
        self.shortcut_norm = None
        if strides != 1 or in_channels != self.out_channels:
            self.shortcut_conv = conv(self.out_channels, 1, strides, "proj")
            self.shortcut_norm = norm("proj_bn")

    def forward(self, x, run):
        shortcut = x
        if self.shortcut_conv is not None:
            shortcut = run.norm(
                self.shortcut_norm, run.conv(self.shortcut_conv, x)
            )
        y = x
        last = len(self.convs) - 1
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms)):
            if conv.padding == "valid":
                y = run.pad(y, conv.kernel_size[0] // 2)
            y = run.norm(norm, run.conv(conv, y))
            if i < last:
                y = run.relu(y)
        return run.relu(run.add(y, shortcut))
