"""LARS: layer-wise adaptive rate scaling for self-supervised pretraining."""

import re

import keras
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
    MoCo v3 and BYOL. For every trainable variable `w` with gradient `g`:

    ```python
    g = g + weight_decay * w                  # unless excluded from decay
    trust = eta * ||w|| / ||g||               # unless excluded from adaptation
    trust = 1 if ||w|| == 0 or ||g|| == 0     # (and 1 when excluded)
    v = momentum * v + learning_rate * trust * g
    w = w - v                                  # nesterov=False
    w = w - (momentum * v + learning_rate * trust * g)   # nesterov=True
    ```

    Norms are Frobenius norms of the whole variable (one trust ratio per
    variable). The weight decay is *coupled* (added to the gradient before
    the trust ratio, as in the paper and SimCLR), so it is applied here in
    `update_step`; the decoupled `weight_decay` of the Keras base optimizer is
    not used (the base class always gets `weight_decay=None`). The decay
    coefficient is kept in the attribute `lars_weight_decay`.

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

    def uses_weight_decay(self, variable):
        """Whether `variable` (already built) gets the coupled weight decay.

        Always `False` when `weight_decay` is 0.
        """
        return self._use_decay[self._get_variable_index(variable)]

    def uses_adaptation(self, variable):
        """Whether `variable` (already built) gets the LARS trust ratio."""
        return self._use_adaptation[self._get_variable_index(variable)]

    def update_step(self, gradient, variable, learning_rate):
        """Applies one LARS step to `variable`."""
        index = self._get_variable_index(variable)
        dtype = variable.dtype
        if hasattr(gradient, "indices") and hasattr(gradient, "dense_shape"):
            # Sparse (IndexedSlices) gradient: the norm needs it all anyway.
            gradient = ops.convert_to_tensor(gradient)
        lr = ops.cast(learning_rate, dtype)
        grad = ops.cast(gradient, dtype)
        weights = ops.convert_to_tensor(variable)

        if self._use_decay[index]:
            decay = ops.cast(self.lars_weight_decay, dtype)
            grad = ops.add(grad, ops.multiply(decay, weights))

        if self._use_adaptation[index]:
            w_norm = ops.sqrt(ops.sum(ops.square(weights)))
            g_norm = ops.sqrt(ops.sum(ops.square(grad)))
            both_positive = ops.logical_and(
                ops.greater(w_norm, 0.0), ops.greater(g_norm, 0.0)
            )
            # Never divide by zero, even in the branch that where() discards
            # (its NaN would still poison gradients through where()).
            safe_g_norm = ops.where(
                both_positive, g_norm, ops.ones_like(g_norm)
            )
            ratio = ops.where(
                both_positive,
                ops.cast(self.eta, dtype) * w_norm / safe_g_norm,
                ops.ones_like(w_norm),
            )
            scaled_lr = ops.multiply(lr, ratio)
        else:
            scaled_lr = lr

        step = ops.multiply(scaled_lr, grad)
        velocity = self.velocities[index]
        momentum = ops.cast(self.momentum, dtype)
        new_velocity = ops.add(ops.multiply(momentum, velocity), step)
        self.assign(velocity, new_velocity)
        if self.nesterov:
            update = ops.add(ops.multiply(momentum, new_velocity), step)
        else:
            update = new_velocity
        self.assign_sub(variable, update)

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
