"""Weights stored in width bands, so a width only touches the weights it uses.

A slimmable layer at width `w` uses the leading block of its kernel. If the
kernel were one variable, the gradient of that block would be a full-size
tensor (zeros outside the block) and the optimizer would update the full
variable every step: a small width would pay for memory traffic of the largest
one. For a fixed width list keras_slim therefore stores each weight as one
variable per *band*: along every width-sliced axis, the channels between two
consecutive widths' channel counts form a band. Width `w` concatenates the
bands it covers; the bands it does not cover get no gradient and no update.

A width range has too many channel counts to band, so it keeps one variable
and slices it.
"""

import itertools

from keras import ops

from keras_slim import _backend


class BandedWeight:
    """One logical weight of `layer`, stored as band variables.

    Args:
        layer: the owning Keras layer (variables are created with its
            `add_weight`, so Keras tracks, saves and trains them).
        name: the weight's name; band variables are `name_i_j` (one index per
            banded axis) or plain `name` when there is a single band.
        shape: the full shape.
        band_edges: dict {axis: ascending channel counts ending at the full
            size}, one entry per width-sliced axis; `{}` for no slicing.
        initializer: a Keras initializer, applied once to the *full* shape
            (so fan-in based scales are those of the full layer) and split.
        regularizer: a Keras regularizer, applied per band: use one that sums
            over entries (L1, L2), as all built-in ones do.
    """

    def __init__(self, layer, name, shape, band_edges, initializer,
                 regularizer=None, trainable=True):
        self.shape = tuple(int(d) for d in shape)
        self.axes = sorted(band_edges)
        self.edges = {a: [0] + list(band_edges[a]) for a in self.axes}
        for a in self.axes:
            if self.edges[a][-1] != self.shape[a]:
                raise ValueError(
                    f"Band edges of axis {a} must end at {self.shape[a]}, got "
                    f"{band_edges[a]}."
                )
        # Computed eagerly even when Keras builds the layer inside a traced
        # function (e.g. while loading), where a graph tensor would be out of
        # scope by the time the band variables initialize.
        with _backend.init_scope():
            full_value = ops.convert_to_numpy(
                initializer(self.shape, dtype=layer.variable_dtype)
            )
        counts = [len(self.edges[a]) - 1 for a in self.axes]
        single = all(c == 1 for c in counts)
        self.bands = {}
        for index in itertools.product(*[range(c) for c in counts]):
            part = full_value[self._region(index)]
            suffix = "".join(f"_{i}" for i in index)
            self.bands[index] = layer.add_weight(
                name=name if single else name + suffix,
                shape=tuple(part.shape),
                initializer=_constant(part),
                regularizer=regularizer,
                trainable=trainable,
            )

    def _region(self, index):
        region = [slice(None)] * len(self.shape)
        for axis, i in zip(self.axes, index):
            region[axis] = slice(self.edges[axis][i], self.edges[axis][i + 1])
        return tuple(region)

    def leading(self, sizes):
        """The leading block of the weight: `sizes` = {axis: channels}.

        Concatenates the bands that cover `sizes[axis]` channels along each
        banded axis, and slices when a size falls inside a band (width ranges).
        """
        used = []
        for axis in self.axes:
            size = sizes.get(axis, self.shape[axis])
            used.append(next(
                i for i, edge in enumerate(self.edges[axis]) if edge >= size
            ))
        value = self._assemble(0, (), used)
        cut = [slice(None)] * len(self.shape)
        needs_cut = False
        for axis, count in zip(self.axes, used):
            size = sizes.get(axis, self.shape[axis])
            if self.edges[axis][count] != size:
                cut[axis] = slice(0, size)
                needs_cut = True
        return value[tuple(cut)] if needs_cut else value

    def _assemble(self, level, prefix, used):
        if level == len(self.axes):
            return self.bands[prefix]
        parts = [
            self._assemble(level + 1, prefix + (i,), used)
            for i in range(used[level])
        ]
        if len(parts) == 1:
            return parts[0]
        return ops.concatenate(parts, axis=self.axes[level])

    def assign(self, value):
        """Sets the whole weight from one full-size array."""
        if tuple(value.shape) != self.shape:
            raise ValueError(
                f"Expected a value of shape {self.shape}, got {value.shape}."
            )
        for index, variable in self.bands.items():
            variable.assign(value[self._region(index)])

    def full(self):
        """The whole weight as one tensor."""
        return self.leading({})

    @property
    def variables(self):
        return list(self.bands.values())


class BandedKernelMixin:
    """`kernel`, `bias` and `assign_weight` of a layer with banded weights.

    The layer stores `self._kernel` and `self._bias` (a `BandedWeight` or
    None); these give the full-size views users and tests expect.
    """

    @property
    def kernel(self):
        """The full kernel, assembled from its bands."""
        return self._kernel.full()

    @property
    def bias(self):
        return None if self._bias is None else self._bias.full()

    def assign_weight(self, name, value):
        """Sets the full-size `"kernel"` or `"bias"` (split into its bands)."""
        weight = {"kernel": self._kernel, "bias": self._bias}.get(name)
        if weight is None:
            known = "'kernel' and 'bias'" if self.use_bias else "'kernel'"
            raise ValueError(
                f"Layer '{self.name}' has no weight {name!r} to assign; it "
                f"has {known}."
            )
        weight.assign(value)


def band_edges(widths, full_channels, expansion=1):
    """Ascending channel counts of `widths` for a layer of `full_channels`.

    A fixed width list gives one edge per distinct channel count (plus the full
    size); a width range gives the full size only (one band, sliced).
    """
    if widths.is_range:
        return [full_channels]
    counts = {
        widths.channels(full_channels, w, expansion) for w in widths.values
    }
    counts.add(full_channels)
    return sorted(counts)


def _constant(value):
    def initializer(shape, dtype=None):
        return ops.cast(value, dtype) if dtype is not None else value

    return initializer
