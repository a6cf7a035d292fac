"""LARS: layer-wise adaptive rate scaling for self-supervised pretraining."""

import itertools
import math
import re

import keras
import tensorflow as tf
from keras import ops

__all__ = ["LARS", "DEFAULT_EXCLUDE_PATTERNS"]

# Regexes (searched with `re.search`) against `variable.path`. A variable that
# matches any of them is, by default, neither decayed nor layer-adapted.
DEFAULT_EXCLUDE_PATTERNS = (
    # The variable itself (last path component) is a bias, or a
    # normalization offset / scale: `.../bias`, `.../beta`, `.../gamma`.
    r"(^|/)[^/]*(bias|beta|gamma)[^/]*$",
    # Any variable of a layer whose name contains `batch_norm` / `batchnorm`
    # (e.g. Keras's auto-named `batch_normalization_3/...`).
    r"(^|/)[^/]*(batch_?norm)[^/]*/",
    # Any variable of a layer whose name has a `bn` token: `bn`, `bn1`,
    # `stem_bn`, `stage1_block1_bn1`, `bn_w0.5` (keras_slim's naming), but
    # not `cbnet` or `bnorm2x`.
    r"(^|/)([^/]*_)?bn\d*(_[^/]*)?/",
)


def _as_patterns(value, argname):
    if value is None:
        return tuple(DEFAULT_EXCLUDE_PATTERNS)
    if isinstance(value, str):
        value = [value]
    try:
        patterns = tuple(value)
    except TypeError:
        raise ValueError(
            f"`{argname}` must be None or a list of strings (substrings or "
            f"regexes). Received: {argname}={value!r}"
        ) from None
    for pattern in patterns:
        if not isinstance(pattern, str):
            raise ValueError(
                f"`{argname}` must contain only strings. Received: "
                f"{pattern!r} in {argname}={value!r}"
            )
        try:
            re.compile(pattern)
        except re.error as err:
            raise ValueError(
                f"`{argname}` contains an invalid regex {pattern!r}: {err}"
            ) from None
    return patterns


def _matches(path, patterns):
    return any(p in path or re.search(p, path) for p in patterns)


def _variable_path(variable):
    path = getattr(variable, "path", None)
    if path is None:
        path = getattr(variable, "name", "")
    return str(path)


# The leaf name of a band variable: a stem followed by the longest run of
# `_<int>` suffixes (`kernel_0_1` -> `kernel`, (0, 1); `depthwise_kernel_2`
# -> `depthwise_kernel`, (2,)), as `keras_slim.layers._banded` names them.
_BAND_LEAF = re.compile(r"^(?P<stem>.+?)(?P<index>(?:_\d+)+)$")


def _split_band_path(path):
    """`(parent, stem, index tuple)` of a band-like path, else None."""
    parent, _, leaf = path.rpartition("/")
    match = _BAND_LEAF.match(leaf)
    if match is None:
        return None
    index = tuple(int(i) for i in match["index"].split("_")[1:])
    return parent, match["stem"], index


def _is_complete_grid(indices):
    """Whether `indices` are each position of a grid `range(n1) x ...` once.

    A weight banded along k axes has one band per combination of band
    indices, each from 0; anything else is not a set of bands.
    """
    if len({len(i) for i in indices}) != 1 or len(set(indices)) != len(
        indices
    ):
        return False
    counts = [max(column) + 1 for column in zip(*indices)]
    return len(indices) == math.prod(counts)


def _bands_tile_one_tensor(indices, shapes):
    """Whether band shapes can tile one tensor.

    Bands have the same rank, and every axis along which band sizes differ
    is the axis of its own band index: its sizes depend on that index only,
    and no two such axes share one. (An axis whose bands happen to be equal
    looks constant, so not every index needs an axis.)
    """
    if len({len(s) for s in shapes}) != 1:
        return False
    positions = range(len(indices[0]))
    followed = []  # per varying axis, the band indices its sizes follow
    for axis in range(len(shapes[0])):
        sizes = [s[axis] for s in shapes]
        if len(set(sizes)) > 1:
            followed.append({
                p for p in positions if _size_follows_index(indices, sizes, p)
            })
    return any(
        all(p in options for p, options in zip(assignment, followed))
        for assignment in itertools.permutations(positions, len(followed))
    )


def _size_follows_index(indices, sizes, position):
    size_of = {}
    for index, size in zip(indices, sizes):
        if size_of.setdefault(index[position], size) != size:
            return False
    return True


def _band_groups(variables):
    """Positions in `variables` of the bands of each banded weight.

    Variables are bands of one weight when they share the parent path and
    the stem of `<stem>_<int>[_<int>...]`, no sibling is named `<stem>`
    itself, their band indices form a complete grid starting at 0, and they
    have one dtype and shapes that tile one tensor. Returns a list of tuples
    (two or more positions each); other variables are in no group.
    """
    leaves = {}
    candidates = {}
    for position, variable in enumerate(variables):
        path = _variable_path(variable)
        parent, _, leaf = path.rpartition("/")
        leaves.setdefault(parent, set()).add(leaf)
        split = _split_band_path(path)
        if split is not None:
            candidates.setdefault(split[:2], []).append((split[2], position))
    groups = []
    for (parent, stem), members in candidates.items():
        indices = [index for index, _ in members]
        positions = tuple(position for _, position in members)
        bands = [variables[p] for p in positions]
        if (
            len(members) >= 2
            and stem not in leaves[parent]
            and _is_complete_grid(indices)
            and len({str(v.dtype) for v in bands}) == 1
            and _bands_tile_one_tensor(
                indices, [tuple(v.shape) for v in bands]
            )
        ):
            groups.append(positions)
    return groups


def _squared_norm(value):
    return ops.sum(ops.square(value))


def _as_dense(gradient):
    if hasattr(gradient, "indices") and hasattr(gradient, "dense_shape"):
        # A sparse (IndexedSlices) gradient: its norm needs it all anyway.
        return ops.convert_to_tensor(gradient)
    return gradient


def _band_stem(path):
    """`.../conv1/kernel` for `.../conv1/kernel_0_1`."""
    parent, stem, _ = _split_band_path(path)
    return f"{parent}/{stem}" if parent else stem


def _backend_variable(variable):
    return variable.value if isinstance(variable, keras.Variable) else variable


def _check_number(value, argname, low, low_inclusive=True, high=None):
    if isinstance(value, bool):
        raise ValueError(f"`{argname}` must be a number. Received: {value!r}")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"`{argname}` must be a number. Received: {argname}={value!r}"
        ) from None
    too_low = value < low if low_inclusive else value <= low
    too_high = high is not None and value >= high
    if too_low or too_high or value != value:
        bounds = f"{'>=' if low_inclusive else '>'} {low}"
        if high is not None:
            bounds += f" and < {high}"
        raise ValueError(
            f"`{argname}` must be {bounds}. Received: {argname}={value!r}"
        )
    return value


@keras.saving.register_keras_serializable(package="keras_slim")
class LARS(keras.optimizers.Optimizer):
    """Momentum SGD with layer-wise adaptive rate scaling (LARS).

    The large-batch optimizer of You et al. (2017) in the form used by SimCLR,
    MoCo v3 and BYOL. For every trainable weight `w` with gradient `g`:

    ```python
    g = g + weight_decay * w                  # unless excluded from decay
    trust = eta * ||w|| / ||g||               # unless excluded from adaptation
    trust = 1 if ||w|| == 0 or ||g|| == 0     # (and 1 when excluded)
    v = momentum * v + learning_rate * trust * g
    w = w - v                                  # nesterov=False
    w = w - (momentum * v + learning_rate * trust * g)   # nesterov=True
    ```

    Norms are Frobenius norms of the whole weight of a layer: one trust
    ratio per layer weight, as in the paper. A plain variable is one weight.
    A slimmable layer of a width *list* stores each weight as several band
    variables (`.../conv1/kernel_0_0`, `.../conv1/kernel_0_1`, ...; see
    `keras_slim.layers`) whose concatenation is the weight: these share one
    trust ratio, computed from `||w||^2` and `||g||^2` summed over all the
    bands (`g` with its decay term), so a banded kernel takes exactly the
    step of the same kernel stored as one variable. A band that gets no
    gradient in a step (a width that does not use it) is not updated, but
    its weights still count in `||w||`. Width ranges keep one variable per
    weight, so nothing changes for them.

    Which variables are bands of one weight is decided once, in `build()`,
    from their paths: variables `<parent>/<stem>_<i>[_<j>...]` (the band
    suffix is the longest run of `_<int>` at the end of the last path
    component) are grouped when they have the same `<parent>` and `<stem>`,
    no sibling is named `<parent>/<stem>` itself, their band indices fill a
    grid starting at 0 (`_0_0`, `_0_1`, `_1_0`, `_1_1`), and they have one
    dtype and shapes that can tile one tensor. Anything else (e.g. a lone
    `dense/kernel_1`) keeps a trust ratio of its own. `trust_ratio_group()`
    tells which variables share a ratio. Bands of one weight must be
    excluded (from adaptation, from decay) all together or not at all.

    The shared ratios are computed after Keras's all-reduce of the
    gradients under `tf.distribute` (one step under `MirroredStrategy`
    equals the single-device step on the global batch), and work under
    `jit_compile=True`.

    The weight decay is *coupled* (added to the gradient before the trust
    ratio, as in the paper and SimCLR), so LARS applies it itself; the
    decoupled `weight_decay` of the Keras base optimizer is not used (the
    base class always gets `weight_decay=None`). The decay coefficient is
    kept in the attribute `lars_weight_decay`.

    Which variables are excluded is decided once, in `build()`, by matching
    each variable's `path` against the exclusion patterns: a pattern excludes
    a variable if it is a substring of the path or if `re.search(pattern,
    path)` finds it. By default (`None`) both lists are
    `DEFAULT_EXCLUDE_PATTERNS`:

    - `r"(^|/)[^/]*(bias|beta|gamma)[^/]*$"`: variables named like a bias or
      a normalization offset/scale (`.../bias`, `.../beta`, `.../gamma`);
    - `r"(^|/)[^/]*(batch_?norm)[^/]*/"`: every variable of a layer whose
      name contains `batch_norm`/`batchnorm` (`batch_normalization_1/...`);
    - `r"(^|/)([^/]*_)?bn\\d*(_[^/]*)?/"`: every variable of a layer whose name
      has a `bn` token, as keras_slim names its BatchNorm layers
      (`slim_res_net/stem_bn/bn_w0.5/gamma`,
      `.../stage1_block1_bn1/bn_w1/beta`).

    So biases and BatchNorm parameters get plain momentum SGD (no decay, trust
    ratio 1) while conv and dense kernels (`.../stage1_block1_conv1/kernel`,
    `.../dense/kernel`) are decayed and adapted. Pass `[]` to exclude nothing.

    Args:
        learning_rate: A float, a
            `keras.optimizers.schedules.LearningRateSchedule` (e.g.
            `keras_slim.optimizers.WarmupCosine`) or a callable taking no
            arguments. Defaults to `0.1`.
        momentum: Float in `[0, 1)`. Momentum of the velocity buffer.
            Defaults to `0.9`.
        weight_decay: Float `>= 0`. Coefficient of the L2 term added to the
            gradient of non-excluded variables. Defaults to `0.0`.
        eta: Float `> 0`. The trust coefficient. Defaults to `0.001`.
        nesterov: Bool. Whether to use Nesterov momentum. Defaults to `False`.
        exclude_from_adaptation: `None` (the default patterns above) or a list
            of substrings / regexes; matching variables use trust ratio 1.
        exclude_from_weight_decay: `None` (the default patterns above) or a
            list of substrings / regexes; matching variables are not decayed.
        learning_rate_in_velocity: Bool. False (the default, as the official
            SlimCLR / MoCo v3 LARS): the velocity accumulates the
            trust-scaled gradients and the learning rate multiplies it at each
            step, `v = m v + trust g; w -= lr v`. True: the learning rate is
            folded into the velocity, `v = m v + lr trust g; w -= v` (SimCLR's
            TensorFlow LARS). The two differ only while the rate changes.
        **kwargs: The other keyword arguments of `keras.optimizers.Optimizer`
            (`clipnorm`, `global_clipnorm`, `use_ema`,
            `gradient_accumulation_steps`, `name`, ...).

    Example:

    ```python
    import keras
    from keras_slim.optimizers import LARS, WarmupCosine

    schedule = WarmupCosine(peak=4.8, total_steps=100_000, warmup_steps=5_000)
    optimizer = LARS(schedule, momentum=0.9, weight_decay=1e-6)
    model.compile(optimizer=optimizer, loss="mse")
    ```

    References:
        - [You, Gitman & Ginsburg, 2017. Large Batch Training of
          Convolutional Networks](https://arxiv.org/abs/1708.03888)
        - [Chen et al., 2020. A Simple Framework for Contrastive Learning of
          Visual Representations (SimCLR)](https://arxiv.org/abs/2002.05709)
    """

    def __init__(
        self,
        learning_rate=0.1,
        momentum=0.9,
        weight_decay=0.0,
        eta=0.001,
        nesterov=False,
        exclude_from_adaptation=None,
        exclude_from_weight_decay=None,
        learning_rate_in_velocity=False,
        name=None,
        **kwargs,
    ):
        # The base class's decoupled weight decay must stay off: LARS's decay
        # is coupled and applied in update_step.
        super().__init__(
            learning_rate=learning_rate, weight_decay=None, name=name, **kwargs
        )
        self.momentum = _check_number(momentum, "momentum", 0.0, high=1.0)
        self.lars_weight_decay = _check_number(
            0.0 if weight_decay is None else weight_decay, "weight_decay", 0.0
        )
        self.eta = _check_number(eta, "eta", 0.0, low_inclusive=False)
        if not isinstance(nesterov, bool):
            raise ValueError(
                f"`nesterov` must be a bool. Received: nesterov={nesterov!r}"
            )
        self.nesterov = nesterov
        self.learning_rate_in_velocity = bool(learning_rate_in_velocity)
        self._adaptation_patterns = _as_patterns(
            exclude_from_adaptation, "exclude_from_adaptation"
        )
        self._decay_patterns = _as_patterns(
            exclude_from_weight_decay, "exclude_from_weight_decay"
        )
        self._extra_decay_excluded_keys = set()

    # `exclude_from_weight_decay` is also a method of the Keras base class
    # (for its decoupled decay, which LARS leaves off); redirect it to LARS's
    # coupled decay so that calling it is not a silent no-op.
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Excludes variables from LARS's (coupled) weight decay.

        Must be called before the optimizer is built.

        Args:
            var_list: Variables to exclude.
            var_names: Substrings / regexes of variable paths to exclude (added
                to `exclude_from_weight_decay`).
        """
        if self.built:
            raise ValueError(
                "`exclude_from_weight_decay()` can only be called before the "
                "optimizer is built."
            )
        if var_names:
            self._decay_patterns = self._decay_patterns + _as_patterns(
                var_names, "var_names"
            )
        for variable in var_list or ():
            self._extra_decay_excluded_keys.add(self._var_key(variable))

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.velocities = self.add_optimizer_variables(variables, "velocity")
        # Python booleans, indexed like `variables`: decided here from the
        # Keras variables' paths, because update_step may only see the
        # backend (tf.Variable / distributed) variable, whose name is short.
        decay, adapt = [], []
        for variable in variables:
            path = _variable_path(variable)
            decay.append(
                self.lars_weight_decay > 0
                and not _matches(path, self._decay_patterns)
                and self._var_key(variable)
                not in self._extra_decay_excluded_keys
            )
            adapt.append(not _matches(path, self._adaptation_patterns))
        self._use_decay = decay
        self._use_adaptation = adapt
        # For each variable index, the indices sharing its trust ratio.
        groups = [(i,) for i in range(len(variables))]
        for group in _band_groups(variables):
            self._check_group_is_treated_alike(group, variables)
            for i in group:
                groups[i] = group
        self._trust_groups = groups

    def _check_group_is_treated_alike(self, group, variables):
        for flags, what, argname in (
            (self._use_adaptation, "adapted", "exclude_from_adaptation"),
            (self._use_decay, "decayed", "exclude_from_weight_decay"),
        ):
            if len({flags[i] for i in group}) > 1:
                paths = [_variable_path(variables[i]) for i in group]
                chosen = [p for i, p in zip(group, paths) if flags[i]]
                raise ValueError(
                    f"LARS treats the variables {paths} as bands of one "
                    f"weight (one trust ratio), but only {chosen} are "
                    f"{what}. Exclude all of them or none: match their "
                    f"common stem (e.g. {_band_stem(paths[0])!r}) in "
                    f"`{argname}`, not single bands."
                )

    def uses_weight_decay(self, variable):
        """Whether `variable` (already built) gets the coupled weight decay.

        Always `False` when `weight_decay` is 0.
        """
        return self._use_decay[self._get_variable_index(variable)]

    def uses_adaptation(self, variable):
        """Whether `variable` (already built) gets the LARS trust ratio."""
        return self._use_adaptation[self._get_variable_index(variable)]

    def trust_ratio_group(self, variable):
        """The variables (already built) that share `variable`'s trust ratio.

        All the bands of a banded weight, in build order; `[variable]` alone
        for any other variable.
        """
        group = self._trust_groups[self._get_variable_index(variable)]
        return [self._trainable_variables[i] for i in group]

    def _coupled_gradient(self, gradient, weights, index):
        """The gradient plus the coupled L2 term (when `index` is decayed)."""
        grad = ops.cast(_as_dense(gradient), weights.dtype)
        if self._use_decay[index]:
            decay = ops.cast(self.lars_weight_decay, weights.dtype)
            grad = ops.add(grad, ops.multiply(decay, weights))
        return grad

    def _trust_ratio(self, weight_sq_norm, grad_sq_norm):
        """`eta * ||w|| / ||g||`, or 1 when either norm is 0."""
        w_norm = ops.sqrt(weight_sq_norm)
        g_norm = ops.sqrt(grad_sq_norm)
        both_positive = ops.logical_and(
            ops.greater(w_norm, 0.0), ops.greater(g_norm, 0.0)
        )
        # Never divide by zero, even in the branch that where() discards
        # (its NaN would still poison gradients through where()).
        safe_g_norm = ops.where(both_positive, g_norm, ops.ones_like(g_norm))
        return ops.where(
            both_positive,
            ops.cast(self.eta, w_norm.dtype) * w_norm / safe_g_norm,
            ops.ones_like(w_norm),
        )

    def _group_trust_ratio(self, group, weights, coupled):
        """One trust ratio from the squared norms summed over `group`.

        `weights` / `coupled` map variable indices to their value / coupled
        gradient. Every band of the weight counts in `||w||`; a band without
        a gradient in this step counts as a zero gradient (Keras leaves it,
        and its decay, alone).
        """
        weight_sq = None
        grad_sq = None
        for i in group:
            value = weights.get(i)
            if value is None:
                value = ops.convert_to_tensor(self._trainable_variables[i])
            term = _squared_norm(value)
            weight_sq = term if weight_sq is None else weight_sq + term
            if i in coupled:
                term = _squared_norm(coupled[i])
                grad_sq = term if grad_sq is None else grad_sq + term
        return self._trust_ratio(weight_sq, grad_sq)

    def _coupled_gradients_and_step_sizes(
        self, grads, variables, learning_rate
    ):
        """Per variable: the coupled gradient and `learning_rate * trust`.

        Needs all the (all-reduced) gradients at once, since the bands of a
        weight share one trust ratio.
        """
        indices = [self._get_variable_index(v) for v in variables]
        weights, coupled = {}, {}
        for grad, variable, i in zip(grads, variables, indices):
            weights[i] = ops.convert_to_tensor(variable)
            coupled[i] = self._coupled_gradient(grad, weights[i], i)
        ratios = {}
        step_sizes = []
        for i in indices:
            lr = ops.cast(learning_rate, weights[i].dtype)
            if not self._use_adaptation[i]:
                step_sizes.append(lr)
                continue
            group = self._trust_groups[i]
            if group not in ratios:
                ratios[group] = self._group_trust_ratio(
                    group, weights, coupled
                )
            step_sizes.append(ops.multiply(lr, ratios[group]))
        return [coupled[i] for i in indices], step_sizes

    def _backend_update_step(self, grads, trainable_variables, learning_rate):
        # Keras's TF optimizer all-reduces the gradients here (in replica
        # context) and then, in a cross-replica merge_call, runs update_step
        # on each variable's copies separately: too late to see the other
        # bands of a weight. So LARS computes the shared trust ratios between
        # the two, from the all-reduced gradients, and passes each variable
        # its step size. Without a strategy the all-reduce and merge_call are
        # no-ops; all decisions are Python, so jit_compile traces it as is.
        variables = list(trainable_variables)
        backend_variables = [_backend_variable(v) for v in variables]
        reduced = self._all_reduce_sum_gradients(
            list(zip(grads, backend_variables))
        )
        coupled, step_sizes = self._coupled_gradients_and_step_sizes(
            [g for g, _ in reduced], variables,
            self._rate_in_velocity(learning_rate),
        )
        tf.__internal__.distribute.interim.maybe_merge_call(
            self._distributed_momentum_update,
            self._distribution_strategy,
            list(zip(coupled, step_sizes, backend_variables)),
            learning_rate,
        )

    def _rate_in_velocity(self, learning_rate):
        return learning_rate if self.learning_rate_in_velocity else 1.0

    def _distributed_momentum_update(self, distribution, updates,
                                     learning_rate):
        # `update` runs the function once per copy of the variable, with the
        # per-replica arguments of that copy's replica.
        for grad, step_size, variable in updates:
            distribution.extended.update(
                variable,
                self._momentum_update,
                args=(grad, step_size, learning_rate),
                group=False,
            )

    def _momentum_update(self, variable, grad, step_size, learning_rate):
        """`v = momentum * v + step_size * grad`; `w -= lr * v` (or Nesterov).

        `step_size` holds the learning rate already when
        `learning_rate_in_velocity` (then `w -= v`).
        """
        dtype = variable.dtype
        step = ops.multiply(ops.cast(step_size, dtype), grad)
        velocity = self.velocities[self._get_variable_index(variable)]
        momentum = ops.cast(self.momentum, dtype)
        new_velocity = ops.add(ops.multiply(momentum, velocity), step)
        self.assign(velocity, new_velocity)
        if self.nesterov:
            update = ops.add(ops.multiply(momentum, new_velocity), step)
        else:
            update = new_velocity
        if not self.learning_rate_in_velocity:
            update = ops.multiply(ops.cast(learning_rate, dtype), update)
        self.assign_sub(variable, update)

    def update_step(self, gradient, variable, learning_rate):
        """Applies one LARS step to `variable` alone.

        `apply()` does not use this method (it computes the trust ratios of
        all variables first); it is only valid for a variable that does not
        share its trust ratio with other bands.
        """
        index = self._get_variable_index(variable)
        if len(self._trust_groups[index]) > 1:
            raise ValueError(
                f"Variable {_variable_path(variable)!r} is one band of a "
                "banded weight: its trust ratio needs the gradients of all "
                "its bands. Use `apply()` / `apply_gradients()` with all of "
                "them instead of `update_step()`."
            )
        (coupled,), (step_size,) = self._coupled_gradients_and_step_sizes(
            [gradient], [variable], self._rate_in_velocity(learning_rate)
        )
        self._momentum_update(variable, coupled, step_size, learning_rate)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "momentum": self.momentum,
                "weight_decay": self.lars_weight_decay,
                "eta": self.eta,
                "nesterov": self.nesterov,
                "exclude_from_adaptation": list(self._adaptation_patterns),
                "exclude_from_weight_decay": list(self._decay_patterns),
                "learning_rate_in_velocity": self.learning_rate_in_velocity,
            }
        )
        return config

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # The base class deserializes `learning_rate` in place; work on a
        # copy so that the caller's config dict is left untouched.
        return super().from_config(
            dict(config), custom_objects=custom_objects
        )
