"""The JAX step of the slimmable recipes: the TensorFlow step's twin.

Keras's JAX trainer compiles `train_step(state, data)` with `jax.jit` and
hands it the model's state as arrays (trainable, non-trainable, optimizer and
metric variables); the step returns the new arrays. The recipes, their bases
and heads are written once, statefully, with `keras.ops` (layers read
variables; BatchNorm, the EMA encoders, the queue and the step counter assign
them). Here they run inside a `keras.StatelessScope` that maps every variable
to its array and records each assignment, so the same recipe code is a pure
function of the state on JAX:

* one `jax.value_and_grad` per width over the online weights, each width's
  gradient added to the step's sum before the next width runs
  (`optimization_barrier`, the peak memory of one width), then **one**
  optimizer update (or one per width with `per_width_update`);
* the step's phase (slow start, US3L's dynamic sampling) and each random
  slot's width chosen inside the compiled step with `jax.lax.switch` (one
  branch per grid width: no retracing as the step advances);
* a weight is updated only when a width read it, as TensorFlow's tape gives
  it no gradient otherwise (a fixed width list's bands above a width);
* a non-finite loss (or gradient, without loss scaling) leaves the whole
  state as it was, and `NonFiniteStop` stops `fit` naming the width and
  the step, as TensorFlow's checks do.

No replica code: under `keras.distribution` the step is one program over the
global batch, so BatchNorm statistics, contrastive negatives and the queue's
keys cover the global batch by construction.
"""

import jax
import jax.numpy as jnp
import keras
from keras import ops

from keras_slim.methods._plan import branch_table
from keras_slim.methods._plan import phase_draws
from keras_slim.methods._step_logs import NONFINITE
from keras_slim.methods._step_logs import add_gradient
from keras_slim.methods._step_logs import checks_gradients
from keras_slim.methods._step_logs import NONFINITE_GRADIENT
from keras_slim.methods._step_logs import nonfinite_detail
from keras_slim.methods._step_logs import nonfinite_message
from keras_slim.methods._step_logs import slot_keys
from keras_slim.methods._step_logs import width_values


class STEP_ERROR(Exception):  # noqa: N801 - the TensorFlow step's name
    """Never raised: on JAX `NonFiniteStop` raises FloatingPointError."""


# ------------------------------------------------------------ the steps
def train_step(model, state, views):
    """One training step of `model` (a `SlimSSL`): `(logs, new state)`."""
    groups = _state_variables(model, state, with_optimizer=True)
    with keras.StatelessScope(state_mapping=_pairs(groups, state)) as scope:
        model.before_targets()
        targets = model.step_targets(views, training=True)
        step = _Step(model, groups, views, targets, training=True)
        grads, values, finite = step.run_phases()
        if not model.per_width_update:
            step.apply(grads)
        model.after_update(views, targets)
        model.ssl_step.assign(model.ssl_step + 1)
        logs = model.record(values)
        new_state = _values(scope, groups)
    # A non-finite step changes nothing (the check's effect on TensorFlow);
    # its logs carry the NaN that NonFiniteStop reports.
    kept = jax.lax.cond(finite, lambda: new_state, lambda: _as_lists(state))
    return logs, tuple(kept)


def test_step(model, state, views):
    """The step's losses and metrics without an update."""
    groups = _state_variables(model, state, with_optimizer=False)
    with keras.StatelessScope(state_mapping=_pairs(groups, state)) as scope:
        targets = model.step_targets(views, training=False)
        step = _Step(model, groups, views, targets, training=False)
        _, values, _ = step.run_phases()
        logs = model.record(values)
        new_state = _values(scope, groups)
    return logs, tuple(new_state)


def predict_step(model, state, inputs):
    """Backbone features at the largest width, statelessly."""
    trainable, non_trainable = state
    outputs, non_trainable = model.stateless_call(
        trainable, non_trainable, inputs, training=False)
    return outputs, non_trainable


def fit_callbacks(model):
    """Callbacks `SlimSSL.fit` adds on JAX."""
    return [NonFiniteStop()]


# ------------------------------------------------------------ state
def _state_variables(model, state, with_optimizer):
    """The variables of Keras's state tuple, in its order."""
    groups = [model.trainable_variables, model.non_trainable_variables]
    if with_optimizer:
        groups.append(model.optimizer.variables)
    groups.append(model.metrics_variables)
    if [len(g) for g in groups] != [len(s) for s in state]:
        raise ValueError(
            "The JAX step's state does not match the model's variables: "
            "build the model and compile it before training.")
    return groups


def _pairs(groups, state):
    return [pair for variables, values in zip(groups, state)
            for pair in zip(variables, values)]


def _values(scope, groups):
    return [[scope.get_current_value(v) for v in variables]
            for variables in groups]


def _as_lists(state):
    return [list(values) for values in state]


class _RecordingScope(keras.StatelessScope):
    """A StatelessScope that notes which variables were read and assigned."""

    def __init__(self, state_mapping):
        super().__init__(state_mapping=state_mapping)
        self.read = set()
        self.assigned = []

    def get_current_value(self, variable):
        self.read.add(id(variable))
        return super().get_current_value(variable)

    def add_update(self, update):
        if id(update[0]) not in {id(v) for v in self.assigned}:
            self.assigned.append(update[0])
        super().add_update(update)


# ------------------------------------------------------------ widths
class _Step:
    """One step's widths, run inside the step's StatelessScope."""

    def __init__(self, model, groups, views, targets, training):
        self.model = model
        self.variables = [v for variables in groups for v in variables]
        # Differentiated: the online weights (not the EMA encoders).
        self.online = list(model.trainable_weights)
        self.views = views
        self.targets = targets
        self.training = training

    def run_phases(self):
        model = self.model
        phases = model.phases()
        step = ops.convert_to_tensor(model.ssl_step)
        if len(phases) == 1:
            return self.run_slots(phases[0][1], step, dense=False)
        phase = sum(ops.cast(step >= start, "int32")
                    for start, _ in phases[1:])
        branches = [
            (lambda slots=slots: self.run_slots(slots, step, dense=True))
            for _, slots in phases
        ]
        return self.switch(phase, branches)

    def run_slots(self, slots, step, dense):
        model = self.model
        total = [None] * len(self.online)
        values = {key: jnp.zeros((), "float32") for name in model.slot_names()
                  for key in slot_keys(name)}
        finite = jnp.array(True)
        teacher = None
        draws, drawable = phase_draws(model, slots, step)
        dense = dense or draws is not None
        views = self.views
        for slot in slots:
            # The previous widths' gradients are done before this one runs.
            views, total = jax.lax.optimization_barrier((views, total))
            if slot.is_static:
                grads, slot_values, ok, out = self.run_width(
                    slot, slot.candidates[0], views, teacher, dense)
                if slot.is_teacher:
                    teacher = keras.tree.map_structure(ops.stop_gradient,
                                                       out["teacher"])
            else:
                grads, slot_values, ok = self.run_random(
                    slot, draws[slot.draw], drawable, views, teacher)
            total = [add_gradient(t, g) for t, g in zip(total, grads)]
            finite = jnp.logical_and(finite, ok)
            values.update(slot_values)
        values["loss"] = sum(values[f"{n}/loss"] * values[f"{n}/active"]
                             for n in model.slot_names())
        if dense:
            total = [jnp.zeros_like(v.value) if g is None else g
                     for g, v in zip(total, self.online)]
        return total, values, finite

    def run_random(self, slot, index, drawable, views, teacher):
        def branch(width):
            def run():
                grads, values, ok, _ = self.run_width(slot, width, views,
                                                      teacher, dense=True)
                return grads, values, ok
            return run

        def skip():
            values = {k: jnp.zeros((), "float32")
                      for k in slot_keys(slot.name)}
            grads = [jnp.zeros_like(v.value) for v in self.online]
            return grads, values, jnp.array(True)

        live, table = branch_table(len(slot.candidates), drawable)
        branches = [branch(slot.candidates[i]) for i in live] + [skip]
        return self.switch(jnp.asarray(table, "int32")[index], branches)

    def run_width(self, slot, width, views, teacher, dense):
        """`(grads, values, finite, outputs)` of one width."""
        model = self.model
        variables = self.variables
        online_ids = {id(v) for v in self.online}
        current = [v.value for v in variables]
        noted = {}

        def loss_fn(online_values):
            mapping = (list(zip(variables, current))
                       + list(zip(self.online, online_values)))
            with _RecordingScope(mapping) as scope:
                out = model.width_outputs(width, views, self.targets, teacher,
                                          self.training)
                ssl = ops.mean(ops.cast(out["ssl"], "float32"))
                distill = 0.0
                if out.get("distill") is not None:
                    distill = ops.mean(ops.cast(out["distill"], "float32"))
                penalty = ops.cast(model.regularization(width), "float32")
                loss = model.combine(slot, ssl, distill) + penalty
                noted["read"] = set(scope.read)
                noted["assigned"] = [v for v in scope.assigned
                                     if id(v) not in online_ids]
                updates = [scope.get_current_value(v)
                           for v in noted["assigned"]]
            return _scale(model, loss), (loss, out, penalty, updates)

        online_values = [v.value for v in self.online]
        if self.training:
            (_, aux), grads = jax.value_and_grad(loss_fn, has_aux=True)(
                online_values)
            if not dense:
                grads = [g if id(v) in noted["read"] else None
                         for g, v in zip(grads, self.online)]
        else:
            _, aux = loss_fn(online_values)
            grads = [None] * len(self.online)
        loss, out, penalty, updates = aux
        for variable, value in zip(noted["assigned"], updates):
            variable.assign(value)
        if self.training and model.per_width_update:
            self.apply(grads)
        values = width_values(model, slot, out, penalty,
                              _grad_norm(model, grads))
        finite = jnp.isfinite(loss)
        if self.training and checks_gradients(model.optimizer):
            finite = jnp.logical_and(finite, jnp.isfinite(
                values[f"{slot.name}/grad_norm"]))
        return grads, values, finite, out

    def switch(self, index, branches):
        """`branches[index]()`, chosen inside the compiled step.

        Each branch runs in its own scope over the current values of every
        variable and hands back their new values with its result.
        """
        variables = self.variables

        def wrap(branch):
            def run(current):
                with keras.StatelessScope(
                        state_mapping=list(zip(variables, current))) as scope:
                    result = branch()
                    new = [scope.get_current_value(v) for v in variables]
                return result, new
            return run

        current = [v.value for v in variables]
        result, new = jax.lax.switch(index, [wrap(b) for b in branches],
                                     current)
        for variable, value in zip(variables, new):
            variable.assign(value)
        return result

    def apply(self, grads):
        pairs = [(g, v) for g, v in zip(grads, self.online) if g is not None]
        self.model.optimizer.apply([g for g, _ in pairs],
                                   [v for _, v in pairs])


def _scale(model, loss):
    if hasattr(model.optimizer, "scale_loss"):
        return model.optimizer.scale_loss(loss)
    return loss


def _grad_norm(model, grads):
    present = [ops.cast(g, "float32") for g in grads if g is not None]
    if not present:
        return jnp.zeros((), "float32")
    norm = ops.sqrt(sum(ops.sum(ops.square(g)) for g in present))
    if hasattr(model.optimizer, "scale_loss"):
        norm = norm / ops.cast(model.optimizer.scale_loss(1.0), "float32")
    return norm


# ------------------------------------------------------------ the stop
class NonFiniteStop(keras.callbacks.Callback):
    """Stops `fit` after a step whose loss was NaN or Inf at some width.

    The step itself changed nothing (the JAX step keeps the state when a
    width's loss is not finite); this raises the same FloatingPointError as
    the TensorFlow step, naming the width and the step.
    """

    def on_train_begin(self, logs=None):
        self._step = int(ops.convert_to_numpy(self.model.ssl_step))

    def on_train_batch_end(self, batch, logs=None):
        logs = logs or {}
        loss = logs.get("loss")
        if loss is None or jnp.isfinite(loss):
            self._step += 1
            return
        model = self.model
        widths = model.slot_widths(self._step)
        for name in model.slot_names():
            width = widths.get(name, float("nan"))
            for key, marker in (("loss", NONFINITE),
                                ("grad_norm", NONFINITE_GRADIENT)):
                value = logs.get(f"{name}/{key}")
                if value is not None and not jnp.isfinite(value):
                    detail = nonfinite_detail(width, name)
                    raise FloatingPointError(nonfinite_message(
                        f"{marker}{detail};", self._step))
        raise FloatingPointError(nonfinite_message(
            f"{NONFINITE} (unknown);", self._step))
