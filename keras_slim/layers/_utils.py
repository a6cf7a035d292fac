"""Input checks shared by the slimmable layers: one message for each mistake."""

from keras_slim.width import width_name


def check_rank(layer, inputs, rank, what):
    """Raises a clear error when `inputs` do not have `rank` dimensions."""
    if len(inputs.shape) != rank:
        raise ValueError(
            f"Layer '{layer.name}' expects {what} of rank {rank}, got an "
            f"input of shape {tuple(inputs.shape)} (rank {len(inputs.shape)})."
        )


def check_min_rank(layer, inputs, rank, what):
    if len(inputs.shape) < rank:
        raise ValueError(
            f"Layer '{layer.name}' expects {what} of rank >= {rank}, got an "
            f"input of shape {tuple(inputs.shape)}."
        )


def check_channels(layer, inputs, expected, width):
    """Raises when the input's channel count is not the one of `width`."""
    actual = inputs.shape[-1]
    if actual != expected:
        raise ValueError(
            f"Layer '{layer.name}' at width {width:g} ({width_name(width)}) "
            f"expects {expected} input channels, got {actual} (input shape "
            f"{tuple(inputs.shape)}). Feed it the output of the previous layer "
            f"at the same width."
        )


def conv_output_size(layer, size, kernel, stride):
    """One spatial size of a convolution's output (`None` stays unknown)."""
    if size is None:
        return None
    if layer.padding == "same":
        return -(-size // stride)
    if size < kernel:
        raise ValueError(
            f"Layer '{layer.name}' with padding='valid' needs inputs at least "
            f"as large as its kernel {layer.kernel_size}, got a spatial size "
            f"of {size}. Use larger images or padding='same'.")
    return (size - kernel) // stride + 1


def pair(value, name):
    if isinstance(value, int):
        return (value, value)
    value = tuple(int(v) for v in value)
    if len(value) != 2:
        raise ValueError(f"`{name}` must be an int or a pair, got {value}.")
    return value



def check_padding(padding):
    """`padding` if it is one the slimmable convolutions support."""
    if padding not in ("same", "valid"):
        raise ValueError(
            f"`padding` must be 'same' or 'valid', got {padding!r}."
        )
    return padding
