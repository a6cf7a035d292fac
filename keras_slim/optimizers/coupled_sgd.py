import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_slim")
class CoupledSGD(keras.optimizers.Optimizer):
    """SGD with momentum and coupled L2 weight decay, as `torch.optim.SGD`.

    The update the official SlimCLR, US3L and MoCo code trains with:

        g = grad + weight_decay * w          (L2, through the momentum)
        buf = momentum * buf + g
        w = w - lr * (g + momentum * buf if nesterov else buf)

    Keras' own `SGD(weight_decay=...)` decays *decoupled* (`w -= lr * wd * w`,
    outside the momentum): at momentum 0.9 its decay is about 10x weaker than
    the same number in PyTorch, and it keeps the learning rate inside the
    velocity (`v = m v - lr g`), which differs from PyTorch whenever the rate
    changes. Use this optimizer to reproduce a PyTorch recipe.

    Which variables decay: all (the official SlimCLR training loop: its
    scheduler resets every parameter group's decay each step, biases and
    BatchNorm included), unless excluded with `exclude_from_weight_decay`
    (Keras' optimizer API, before the first step).

    A variable whose gradient is zero in every entry is left as it is, decay
    and momentum included (`skip_zero_gradients`): PyTorch skips a parameter
    that got no gradient, and keras_slim's recipes hand zeros to the weights
    of widths that did not run in a step (slow start, US3L's sampled widths).

    Args:
        learning_rate: float or a `keras.optimizers.schedules` schedule.
        momentum: float in [0, 1).
        weight_decay: float >= 0, the coupled L2 strength.
        nesterov: bool, Nesterov momentum (PyTorch's formulation).
        skip_zero_gradients: bool, leave variables with an all-zero gradient
            untouched (PyTorch's treatment of a parameter without gradient).
        name: optimizer name.
        **kwargs: base `keras.optimizers.Optimizer` arguments (`clipnorm`,
            `global_clipnorm`, `loss_scale_factor`, ...). Its decoupled
            `weight_decay` is not accepted: this optimizer's is coupled.

    Example:

    ```python
    import keras
    import numpy as np
    from keras_slim.optimizers import CoupledSGD

    weight = keras.Variable(np.ones((2, 2), "float32"))
    optimizer = CoupledSGD(0.1, momentum=0.9, weight_decay=0.5)
    # PyTorch's SGD: the decay joins the gradient, g + 0.5 w = 1 + 0.5.
    optimizer.apply([np.ones((2, 2), "float32")], [weight])
    np.testing.assert_allclose(weight.numpy(), 1 - 0.1 * 1.5)
    ```

    References:
        - [PyTorch `torch.optim.SGD`](https://pytorch.org/docs/stable/generated/torch.optim.SGD.html)
        - [Loshchilov & Hutter, Decoupled Weight Decay Regularization, ICLR 2019](https://arxiv.org/abs/1711.05101)
    """

    def __init__(self, learning_rate=0.01, momentum=0.9, weight_decay=0.0,
                 nesterov=False, skip_zero_gradients=True, name="CoupledSGD",
                 **kwargs):
        if "use_ema" in kwargs and kwargs["use_ema"]:
            raise ValueError("CoupledSGD does not keep an EMA of the weights.")
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0.0 <= float(momentum) < 1.0:
            raise ValueError(f"`momentum` must be in [0, 1), got {momentum}.")
        if float(weight_decay) < 0.0:
            raise ValueError(
                f"`weight_decay` must be >= 0, got {weight_decay}.")
        self.momentum = float(momentum)
        self.coupled_weight_decay = float(weight_decay)
        self.nesterov = bool(nesterov)
        self.skip_zero_gradients = bool(skip_zero_gradients)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.momentums = [
            self.add_variable_from_reference(v, "momentum") for v in variables
        ]

    def update_step(self, gradient, variable, learning_rate):
        lr = ops.cast(learning_rate, variable.dtype)
        grad = ops.cast(gradient, variable.dtype)
        g = grad
        if self.coupled_weight_decay and self._use_weight_decay(variable):
            g = ops.add(g, ops.multiply(
                ops.cast(self.coupled_weight_decay, variable.dtype), variable))
        buf = self.momentums[self._get_variable_index(variable)]
        new_buf = ops.add(ops.multiply(self.momentum, buf), g)
        step = new_buf
        if self.nesterov:
            step = ops.add(g, ops.multiply(self.momentum, new_buf))
        new_value = ops.subtract(variable, ops.multiply(lr, step))
        if self.skip_zero_gradients:
            ran = ops.any(ops.not_equal(grad, 0))
            # Read as tensors: JAX's `where` takes no Keras variables.
            new_buf = ops.where(ran, new_buf, ops.convert_to_tensor(buf))
            new_value = ops.where(ran, new_value,
                                  ops.convert_to_tensor(variable))
        self.assign(buf, new_buf)
        self.assign(variable, new_value)

    def get_config(self):
        config = super().get_config()
        config.pop("weight_decay", None)
        config.update({
            "momentum": self.momentum,
            "weight_decay": self.coupled_weight_decay,
            "nesterov": self.nesterov,
            "skip_zero_gradients": self.skip_zero_gradients,
        })
        return config
