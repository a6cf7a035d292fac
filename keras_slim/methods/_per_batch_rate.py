"""A learning-rate schedule read at the training step, not the update count.

With one optimizer update per width (US3L's official loop), the optimizer's
`iterations` counts updates, so a schedule of it would run `widths` times too
fast. The official loop sets the rate by the epoch/batch instead: wrapped
here, the schedule is evaluated at the recipe's `ssl_step` (batches).
"""

import warnings

import keras


class PerBatchRate(keras.optimizers.schedules.LearningRateSchedule):
    """`schedule(step_variable)`, whatever the optimizer's iteration count.

    Args:
        schedule: the wrapped `LearningRateSchedule` (of batches).
        step: the recipe's step variable (`SlimSSL.ssl_step`).
    """

    def __init__(self, schedule, step):
        super().__init__()
        self.schedule = schedule
        self.step = step

    def __call__(self, iterations):
        return self.schedule(self.step)

    def get_config(self):
        # Saved as the wrapped schedule: the step variable is the model's.
        return self.schedule.get_config()


class PerBatchRateCompile:
    """A recipe's `compile`: a schedule read per batch with one update per
    width, and a `.keras` file that comes back compiled.

    Mixed into `SlimSSL` (it reads `per_width_update` and `ssl_step`).
    """

    def compile(self, optimizer="rmsprop", **kwargs):
        super().compile(optimizer=optimizer, **kwargs)
        rate = getattr(self.optimizer, "_learning_rate", None)
        if (self.per_width_update and isinstance(
                rate, keras.optimizers.schedules.LearningRateSchedule)
                and not isinstance(rate, PerBatchRate)):
            self.optimizer._learning_rate = PerBatchRate(rate, self.ssl_step)

    def get_compile_config(self):
        rate = getattr(getattr(self, "optimizer", None), "_learning_rate", None)
        if not isinstance(rate, PerBatchRate):
            return super().get_compile_config()
        # Saved with the schedule it was given: `compile` wraps it again
        # around the loaded model's own step.
        self.optimizer._learning_rate = rate.schedule
        try:
            return super().get_compile_config()
        finally:
            self.optimizer._learning_rate = rate

    def compile_from_config(self, config):
        """Compiles a loaded recipe as it was saved.

        Keras skips a model whose `compile` is its own (with a warning), so a
        `.keras` file would come back uncompiled and without its optimizer
        state; compiled here, with the optimizer built, the loader restores
        the optimizer's variables (iterations, momentum) too.
        """
        try:
            config = keras.saving.deserialize_keras_object(config)
        except (TypeError, ValueError) as error:
            # An optimizer or schedule this process cannot rebuild (a class
            # not registered here): the weights still load.
            warnings.warn(
                f"{self.name} was loaded uncompiled: its saved compile "
                f"arguments cannot be rebuilt (...{str(error)[-300:]}). Call "
                f"compile() before fit().", stacklevel=2)
            return
        self.compile(**config)
        if self.built:
            self.optimizer.build(self.trainable_variables)
