"""The JAX side of `_compiled`: pure functions of the variables, jitted.

A Keras layer on JAX holds its variables' arrays; `jax.jit` compiles a pure
function, so the compiled pass takes the arrays as arguments
(`stateless_call`, `keras.StatelessScope`) and what it changes (BatchNorm
statistics, trained weights, optimizer slots) is assigned back afterwards.
"""

import weakref

import jax
import keras
import numpy as np


class _Forward:
    """`backbone.stateless_call(..., width=...)` jitted, without holding the
    backbone (a weak reference, as on TensorFlow)."""

    def __init__(self, backbone, width, calibrate):
        self.backbone = weakref.ref(backbone)
        self.width = width
        self.calibrate = calibrate
        self._compiled = jax.jit(self._stateless)

    def _stateless(self, trainable, non_trainable, images):
        backbone = self.backbone()
        if self.calibrate:
            # Training mode: each BatchNorm normalizes with the batch
            # statistics it accumulates, as the calibrated network will.
            return backbone.stateless_call(
                trainable, non_trainable, images, width=self.width,
                training=True, calibrate_bn=True)
        return backbone.stateless_call(
            trainable, non_trainable, images, width=self.width,
            training=False)

    def __call__(self, images):
        backbone = self.backbone()
        outputs, non_trainable = self._compiled(
            _values(backbone.trainable_variables),
            _values(backbone.non_trainable_variables), images)
        if self.calibrate:
            _assign(backbone.non_trainable_variables, non_trainable)
        return outputs


def forward_function(backbone, width, calibrate):
    return _Forward(backbone, width, calibrate)


def float_batch(batch):
    return np.asarray(batch, "float32")


def gradient_step(loss_fn, variables, optimizer, frozen_variables,
                  constants):
    optimizer_variables = list(optimizer.variables)

    def pure(values, optimizer_values, frozen_values, constants, *tensors):
        def loss_of(values):
            mapping = list(zip(variables, values))
            mapping += list(zip(frozen_variables, frozen_values))
            with keras.StatelessScope(state_mapping=mapping):
                return loss_fn(constants, *tensors)

        gradients = jax.grad(loss_of)(values)
        return optimizer.stateless_apply(optimizer_values, gradients, values)

    compiled = jax.jit(pure)

    def step(*tensors):
        values, optimizer_values = compiled(
            _values(variables), _values(optimizer_variables),
            _values(frozen_variables), constants, *tensors)
        _assign(variables, values)
        _assign(optimizer_variables, optimizer_values)

    return step


def _values(variables):
    return [variable.value for variable in variables]


def _assign(variables, values):
    for variable, value in zip(variables, values):
        variable.assign(value)
