"""Widths: the one place keras_slim understands them.

A slimmable network runs at several *widths*: a width `w` in (0, 1] keeps the
leading `channels(c, w)` of every sliced layer with `c` full channels. Two
kinds of width set exist:

* a fixed list (SlimCLR, slimmable networks): e.g. `[1.0, 0.75, 0.5, 0.25]`,
  each width with its own (switchable) BatchNorm statistics;
* a continuous range (US3L, universally slimmable networks): any width in
  `[min, max]`, channels rounded to a grid of `divisor` channels.

Every layer, backbone, sampler and metric name goes through `Widths`, so the
validation, the channel rounding and the naming (`w0.5`) exist once.
"""

import math
import numbers

import keras

_TOLERANCE = 1e-6


def make_divisible(value, divisor=8, min_value=None):
    """Rounds `value` to the nearest multiple of `divisor`, never below 90%.

    The rounding of MobileNet and of universally slimmable networks: round to
    the nearest multiple of `divisor` (at least `min_value`, default
    `divisor`), and add one `divisor` when rounding down lost more than 10%.

    Args:
        value: float, the unrounded channel count.
        divisor: int >= 1, the channel grid.
        min_value: int or `None`, the smallest result (default `divisor`).

    Returns:
        int, the rounded channel count.
    """
    if divisor < 1:
        raise ValueError(f"`divisor` must be an integer >= 1, got {divisor}.")
    min_value = divisor if min_value is None else min_value
    rounded = max(min_value, int(value + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * value:
        rounded += divisor
    return int(rounded)


def width_name(width):
    """The canonical name of a width in metric, layer and file names: `w0.5`."""
    return f"w{float(width):g}"


@keras.saving.register_keras_serializable(package="keras_slim")
class Widths:
    """The widths a slimmable network can run at, and its channel rounding.

    Args:
        values: list of floats in (0, 1], strictly decreasing (largest first),
            for a fixed width list. Exclusive with `min_width`/`max_width`.
        min_width: float in (0, 1], the smallest width of a continuous range.
        max_width: float in (0, 1], the largest width of a continuous range.
        divisor: int >= 1, channels at a width are
            `make_divisible(full_channels * width, divisor)` (capped at the full
            count). Defaults to 1 (plain rounding) for a list and 8 for a range.
        stat_widths: for a range only: the widths whose BatchNorm statistics
            the network stores (filled by BN calibration) so that it can run in
            inference mode there. Defaults to 8 evenly spaced widths from
            `min_width` to `max_width`.

    Example:

    ```python
    from keras_slim import Widths

    widths = Widths([1.0, 0.75, 0.5, 0.25])
    assert widths.channels(64, 0.75) == 48
    assert Widths(min_width=0.25, max_width=1.0).channels(64, 0.3) == 24
    ```

    References:
        - [Yu et al., Slimmable Neural Networks, ICLR 2019](https://arxiv.org/abs/1812.08928)
        - [Yu and Huang, Universally Slimmable Networks, ICCV 2019](https://arxiv.org/abs/1903.05134)
    """

    def __init__(
        self,
        values=None,
        min_width=None,
        max_width=None,
        divisor=None,
        stat_widths=None,
    ):
        is_range = min_width is not None or max_width is not None
        if values is not None and is_range:
            raise ValueError(
                "Give either `values` (a fixed width list) or "
                "`min_width`/`max_width` (a range), not both."
            )
        if values is None and not is_range:
            raise ValueError(
                "No widths given. Pass a list such as [1.0, 0.5, 0.25] or a "
                "range such as Widths(min_width=0.25, max_width=1.0)."
            )
        self.is_range = is_range
        if is_range:
            self._init_range(min_width, max_width, stat_widths)
        else:
            if stat_widths is not None:
                raise ValueError(
                    "`stat_widths` is for a width range; a width list keeps "
                    "statistics for each of its widths."
                )
            self._init_list(values)
        default_divisor = 8 if is_range else 1
        self.divisor = int(default_divisor if divisor is None else divisor)
        if self.divisor < 1:
            raise ValueError(f"`divisor` must be >= 1, got {divisor}.")

    def _init_list(self, values):
        try:
            values = [float(v) for v in values]
        except (TypeError, ValueError):
            raise ValueError(
                f"Widths must be a list of numbers, got {values!r}."
            ) from None
        if not values:
            raise ValueError(
                "The width list is empty. Pass at least one width, "
                "e.g. [1.0, 0.5, 0.25]."
            )
        for v in values:
            _check_width_value(v)
        if any(a <= b for a, b in zip(values, values[1:])):
            raise ValueError(
                f"Widths must be sorted from largest to smallest without "
                f"repeats, e.g. [1.0, 0.75, 0.5, 0.25]; got {values}. "
                f"Pass sorted(set(widths), reverse=True)."
            )
        self.values = tuple(values)
        self.min_width = values[-1]
        self.max_width = values[0]
        self.stat_widths = self.values

    def _init_range(self, min_width, max_width, stat_widths):
        if min_width is None or max_width is None:
            raise ValueError(
                "A width range needs both `min_width` and `max_width`, got "
                f"min_width={min_width}, max_width={max_width}."
            )
        self.min_width = _check_width_value(float(min_width))
        self.max_width = _check_width_value(float(max_width))
        if self.min_width >= self.max_width:
            raise ValueError(
                f"`min_width` ({min_width}) must be smaller than `max_width` "
                f"({max_width})."
            )
        self.values = None
        if stat_widths is None:
            step = (self.max_width - self.min_width) / 7
            points = [round(self.max_width - i * step, 4) for i in range(7)]
            points.append(self.min_width)
            # Rounding can merge the points of a very narrow range.
            stat_widths = sorted(set(points), reverse=True)
        else:
            stat_widths = [float(w) for w in stat_widths]
            if not stat_widths:
                raise ValueError("`stat_widths` must not be empty.")
            if any(a <= b for a, b in zip(stat_widths, stat_widths[1:])):
                raise ValueError(
                    "`stat_widths` must be sorted from largest to smallest "
                    f"without repeats; got {stat_widths}."
                )
            for w in stat_widths:
                self._check_in_range(w)
        self.stat_widths = tuple(stat_widths)

    # ------------------------------------------------------------------ queries
    @property
    def largest(self):
        return self.max_width

    @property
    def smallest(self):
        return self.min_width

    def validate(self, width=None):
        """Returns the canonical float of `width` (default: the largest).

        Raises:
            ValueError: `width` is not in the list or outside the range.
        """
        if width is None:
            return self.max_width
        if isinstance(width, bool) or not isinstance(width, numbers.Real):
            raise ValueError(
                f"A width must be a Python number such as 0.5, got "
                f"{width!r} of type {type(width).__name__}. Widths select "
                f"static channel counts, so tensors are not accepted."
            )
        width = float(width)
        if self.is_range:
            return self._check_in_range(width)
        for v in self.values:
            if abs(v - width) <= _TOLERANCE:
                return v
        raise ValueError(
            f"Width {width:g} is not one of this network's widths "
            f"{list(self.values)}. Use one of them."
        )

    def _check_in_range(self, width):
        lo, hi = self.min_width, self.max_width
        if not lo - _TOLERANCE <= width <= hi + _TOLERANCE:
            raise ValueError(
                f"Width {width:g} is outside this network's range "
                f"[{lo:g}, {hi:g}]. Use a width inside it."
            )
        return min(max(width, lo), hi)

    def stat_index(self, width):
        """Index of `width` among the widths that hold BN statistics.

        Raises:
            ValueError: the width holds no statistics (a range width that is
                not in `stat_widths`).
        """
        width = self.validate(width)
        for i, w in enumerate(self.stat_widths):
            if abs(w - width) <= _TOLERANCE:
                return i
        raise ValueError(
            f"Width {width:g} has no stored BatchNorm statistics, so it cannot "
            f"run in inference mode. Widths with statistics: "
            f"{list(self.stat_widths)}. Add it to `stat_widths` when building "
            f"the network, or run it in training mode."
        )

    def channels(self, full_channels, width=None, expansion=1):
        """Channels kept at `width` by a layer with `full_channels` channels.

        With `expansion > 1` (MobileNetV2's expanded convolutions) the count is
        `expansion * channels(full_channels // expansion, width)`, so an
        expansion layer follows its input's rounding exactly.
        """
        width = self.validate(width)
        full_channels = int(full_channels)
        if expansion != 1:
            if full_channels % expansion:
                raise ValueError(
                    f"{full_channels} channels are not a multiple of the "
                    f"expansion {expansion}."
                )
            return expansion * self.channels(
                full_channels // expansion, width
            )
        if abs(width - self.max_width) <= _TOLERANCE and self.max_width == 1.0:
            return full_channels
        kept = make_divisible(full_channels * width, self.divisor)
        return max(1, min(full_channels, kept))

    def __iter__(self):
        return iter(self.stat_widths)

    def __len__(self):
        return len(self.stat_widths)

    def __eq__(self, other):
        return isinstance(other, Widths) and self.get_config() == (
            other.get_config()
        )

    def __repr__(self):
        if self.is_range:
            return (
                f"Widths(min_width={self.min_width:g}, "
                f"max_width={self.max_width:g}, divisor={self.divisor})"
            )
        return f"Widths({list(self.values)}, divisor={self.divisor})"

    # ----------------------------------------------------------- serialization
    def get_config(self):
        if self.is_range:
            return {
                "min_width": self.min_width,
                "max_width": self.max_width,
                "divisor": self.divisor,
                "stat_widths": list(self.stat_widths),
            }
        return {"values": list(self.values), "divisor": self.divisor}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    @classmethod
    def coerce(cls, widths):
        """Makes a `Widths` from a `Widths`, a list of floats, or a config dict."""
        if isinstance(widths, Widths):
            return widths
        if isinstance(widths, dict):
            return cls.from_config(widths)
        if widths is None:
            raise ValueError(
                "`widths` is required: a list such as [1.0, 0.5, 0.25] or "
                "a Widths(min_width=..., max_width=...) range."
            )
        if isinstance(widths, (int, float)):
            return cls([widths])
        return cls(list(widths))


def _check_width_value(value):
    if not math.isfinite(value) or value <= 0 or value > 1:
        raise ValueError(
            f"A width must be in (0, 1], got {value}. A width is the fraction "
            f"of channels kept, e.g. 0.5 for half the channels."
        )
    return value
