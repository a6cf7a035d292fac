"""Gradients of banded slim weights, assembled back into full-size arrays."""

import numpy as np


def full_gradients(tape, loss, layer):
    """(kernel_grad, bias_grad) as full arrays; untouched bands give zeros.

    Also checks that the bands a width does not use get *no* gradient (None),
    which is what keeps their optimizer update from costing anything.
    """
    weights = [layer._kernel] + ([layer._bias] if layer._bias else [])
    variables = [v for w in weights for v in w.variables]
    grads = dict(zip(map(id, variables), tape.gradient(loss, variables)))
    out = []
    for weight in weights:
        full = np.zeros(weight.shape, "float32")
        for index, variable in weight.bands.items():
            grad = grads[id(variable)]
            if grad is not None:
                full[weight._region(index)] = np.asarray(grad)
            else:
                assert variable.trainable
        out.append(full)
    return out if len(out) == 2 else (out[0], None)


def bands_with_gradient(tape, loss, layer):
    """Shapes of the kernel bands that receive a gradient."""
    variables = layer._kernel.variables
    grads = tape.gradient(loss, variables)
    return [tuple(v.shape) for v, g in zip(variables, grads) if g is not None]
