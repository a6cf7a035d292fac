"""LARS: layer-wise adaptive rate scaling for self-supervised pretraining."""

import keras
from keras import ops

from keras_slim import _backend

from keras_slim.optimizers._lars_plan import check_bool
from keras_slim.optimizers._lars_plan import check_exclusion_call
from keras_slim.optimizers._lars_plan import check_number
from keras_slim.optimizers._lars_plan import make_plan
from keras_slim.optimizers._lars_plan import pop_legacy_arguments

__all__ = ["LARS"]


def _squared_norm(value):
    return ops.sum(ops.square(value))


def _as_dense(gradient):
    if hasattr(gradient, "indices") and hasattr(gradient, "dense_shape"):
        # A sparse (IndexedSlices) gradient: its norm needs it all anyway.
        return ops.convert_to_tensor(gradient)
    return gradient


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
    variables whose concatenation is the weight (see `keras_slim.layers`):
    these share one trust ratio, computed from `||w||^2` and `||g||^2`
    summed over all the bands (`g` with its decay term), so a banded kernel
    takes exactly the step of the same kernel stored as one variable. A band
    that gets no gradient in a step (a width that does not use it) is not
    updated, but its weights still count in `||w||`. Width ranges keep one
    variable per weight, so nothing changes for them.

    Which variables are bands of one weight, and which are excluded, is
    decided once, in `build()`, from what the layers published, never from
    variable names (see `keras_slim.optimizers.parameter_groups`):

    - keras_slim's layers tag the variables they create: the bands of one
      kernel or bias form one group; biases and BatchNorm gamma/beta (slim,
      switchable, and the Keras BatchNorms inside the switchable one) are
      excluded from decay and adaptation;
    - any other variable (a plain Keras model's) is a weight of its own,
      excluded when its rank is <= 1 (biases, normalization scales and
      offsets of any kind). This is the official rule: SlimCLR's
      `utils/optim.py` LARS, copied from MoCo v3's `moco/optimizer.py`,
      decays and adapts exactly the parameters with `p.ndim > 1`.

    So biases and normalization parameters get plain momentum SGD (no decay,
    trust ratio 1) while conv and dense kernels are decayed and adapted.
    Exclude more, before the optimizer is built, with
    `exclude_from_weight_decay(var_list=...)` and
    `exclude_from_adaptation(var_list=...)` (all the bands of a weight or
    none). `trust_ratio_group()`, `uses_weight_decay()` and
    `uses_adaptation()` tell what was decided.

    The shared ratios are computed after Keras's all-reduce of the
    gradients under `tf.distribute` (one step under `MirroredStrategy`
    equals the single-device step on the global batch), and work under
    `jit_compile=True`.

    The weight decay is *coupled* (added to the gradient before the trust
    ratio, as in the paper and SimCLR), so LARS applies it itself; the base
    class always gets `weight_decay=None` (its decay is decoupled). The
    coefficient is kept in the attribute `lars_weight_decay`.

    Configs saved when LARS matched names hold `exclude_from_adaptation` /
    `exclude_from_weight_decay` pattern lists: the default ones load (they
    left out the same variables of keras_slim models); others raise an
    error that says how to exclude variables now.

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
    import numpy as np
    from keras_slim.optimizers import LARS, WarmupCosine

    schedule = WarmupCosine(peak=0.1, total_steps=100, warmup_steps=10)
    optimizer = LARS(schedule, momentum=0.9, weight_decay=1e-6)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=optimizer, loss="mse")
    x = np.random.default_rng(0).random((16, 4), "float32")
    model.fit(x, x.sum(axis=1), epochs=2, verbose=0)
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
        learning_rate_in_velocity=False,
        name=None,
        **kwargs,
    ):
        pop_legacy_arguments(kwargs)
        # The base class's decoupled weight decay must stay off: LARS's decay
        # is coupled and applied in update_step.
        super().__init__(
            learning_rate=learning_rate, weight_decay=None, name=name, **kwargs
        )
        self.momentum = check_number(momentum, "momentum", 0.0, high=1.0)
        self.lars_weight_decay = check_number(
            0.0 if weight_decay is None else weight_decay, "weight_decay", 0.0
        )
        self.eta = check_number(eta, "eta", 0.0, low_inclusive=False)
        self.nesterov = check_bool(nesterov, "nesterov")
        self.learning_rate_in_velocity = bool(learning_rate_in_velocity)
        self._decay_excluded = set()
        self._adaptation_excluded = set()

    # `exclude_from_weight_decay` is also a method of the Keras base class
    # (for its decoupled decay, which LARS leaves off); redirect it to LARS's
    # coupled decay so that calling it is not a silent no-op.
    def exclude_from_weight_decay(self, var_list=None, var_names=None):
        """Excludes the variables `var_list` from LARS's (coupled) decay.

        Must be called before the optimizer is built. `var_names` (Keras's
        name matching) is refused: LARS reads no names.
        """
        self._exclude(var_list, var_names, self._decay_excluded,
                      "exclude_from_weight_decay")

    def exclude_from_adaptation(self, var_list=None):
        """Gives the variables `var_list` a trust ratio of 1.

        Must be called before the optimizer is built.
        """
        self._exclude(var_list, None, self._adaptation_excluded,
                      "exclude_from_adaptation")

    def _exclude(self, var_list, var_names, excluded, method):
        check_exclusion_call(method, var_names, self.built)
        excluded.update(self._var_key(v) for v in var_list or ())

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.velocities = self.add_optimizer_variables(variables, "velocity")
        # Python booleans and index tuples, indexed like `variables`:
        # decided here from the Keras variables' tags, because update_step
        # may only see the backend (tf.Variable / distributed) variable.
        plan = make_plan(
            variables, self._var_key, self.lars_weight_decay > 0,
            self._decay_excluded, self._adaptation_excluded,
        )
        self._use_decay = plan.use_decay
        self._use_adaptation = plan.use_adaptation
        self._trust_groups = plan.trust_groups

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
        # Under tf.distribute, Keras's TF optimizer all-reduces the gradients
        # (in replica context) and then, in a cross-replica merge_call, runs
        # update_step on each variable's copies separately: too late to see
        # the other bands of a weight. So LARS computes the shared trust
        # ratios between the two, from the all-reduced gradients, and passes
        # each variable its step size (keras_slim._backend does the two
        # TensorFlow parts; on JAX and without a strategy they are no-ops).
        # All decisions are Python, so jit_compile traces it as is.
        variables = list(trainable_variables)
        reduced = _backend.all_reduce_gradients(self, grads, variables)
        coupled, step_sizes = self._coupled_gradients_and_step_sizes(
            reduced, variables, self._rate_in_velocity(learning_rate),
        )
        _backend.update_each_variable(
            self, self._momentum_update,
            list(zip(coupled, step_sizes, variables)), learning_rate,
        )

    def _rate_in_velocity(self, learning_rate):
        return learning_rate if self.learning_rate_in_velocity else 1.0

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
                f"Variable {self._trainable_variables[index].path!r} is one "
                "band of a banded weight: its trust ratio needs the gradients "
                "of all its bands. Use `apply()` / `apply_gradients()` with all of "
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
