"""A learning-rate schedule read at the training step, not the update count.

With one optimizer update per width (US3L's official loop), the optimizer's
`iterations` counts updates, so a schedule of it would run `widths` times too
fast. The official loop sets the rate by the epoch/batch instead: wrapped
here, the schedule is evaluated at the recipe's `ssl_step` (batches).
"""

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
