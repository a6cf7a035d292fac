import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="keras_slim")
class SlimStartCosine(keras.optimizers.schedules.LearningRateSchedule):
    """SlimCLR's official learning rate: one cosine, rescaled at slim start.

    The schedule of the official `main_ssl.py` / `utils/lr_scheduler.py`:
    a linear warmup from `warmup_start` over `warmup_steps` (inclusive), then
    one cosine over the whole run,

        lr(t) = 0.5 * scale(t) * (1 + cos(pi * (t - warmup) / (total - warmup)))

    floored at `end`, where `scale(t)` is `peak` before `slim_start_step` and
    `slim_start_learning_rate` from it on (the official loop sets the
    scheduler's `init_lr` to `--slim_start_lr` at the first epoch of
    slimmable training; the cosine's position goes on). The released
    MoCo v3 script passes `slim_start_lr=3.2` (peak 1.2); the MoCo v2 script
    passes none, so the default of `params.py`, 1e-4, applies. Compare
    `SlowStartCosine`, which restarts a second cosine instead.

    Branch-free in the step: works inside `tf.function` and under XLA.

    Args:
        peak: float >= 0, the learning rate `init_lr` of the official code.
        total_steps: int, steps of the whole run.
        slim_start_step: int, the first step at which the sub-networks train
            (0: no slow start, `peak` throughout).
        slim_start_learning_rate: float >= 0 or None (then `peak`): the scale
            of the cosine from `slim_start_step` on.
        warmup_steps: float >= 0, warmup length (the official
            `warmup_proportion * total`, not rounded).
        warmup_start: float, the rate warmup starts from (official 1e-8).
        end: float, the floor of the rate (official 1e-8).
        name: optional name.

    Example:

    ```python
    from keras_slim.optimizers import SlimStartCosine

    schedule = SlimStartCosine(0.2, total_steps=1000, slim_start_step=500,
                               slim_start_learning_rate=1e-4, warmup_steps=50)
    before, after = float(schedule(499)), float(schedule(500))
    assert abs(before - 0.1085) < 1e-3  # 0.2's cosine, then 1e-4's
    assert abs(after - 5.41e-05) < 1e-6
    ```

    References:
        - [Zhao et al., Slimmable Networks for Contrastive Self-supervised
          Learning, IJCV 2024](https://arxiv.org/abs/2209.15525)
    """

    def __init__(self, peak, total_steps, slim_start_step=0,
                 slim_start_learning_rate=None, warmup_steps=0.0,
                 warmup_start=1e-8, end=1e-8, name=None):
        super().__init__()
        self.peak = _non_negative(peak, "peak")
        self.total_steps = int(total_steps)
        if self.total_steps < 1:
            raise ValueError(f"`total_steps` must be >= 1, got {total_steps}.")
        self.slim_start_step = int(slim_start_step)
        if not 0 <= self.slim_start_step < self.total_steps:
            raise ValueError(
                f"`slim_start_step` must be in [0, total_steps), got "
                f"{slim_start_step} (total_steps={total_steps}).")
        self.slim_start_learning_rate = (
            self.peak if slim_start_learning_rate is None
            else _non_negative(slim_start_learning_rate,
                               "slim_start_learning_rate"))
        self.warmup_steps = _non_negative(warmup_steps, "warmup_steps")
        if self.warmup_steps >= self.total_steps:
            raise ValueError(
                f"`warmup_steps` must be < total_steps, got {warmup_steps}.")
        self.warmup_start = _non_negative(warmup_start, "warmup_start")
        self.end = _non_negative(end, "end")
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name or "SlimStartCosine"):
            t = ops.cast(ops.convert_to_tensor(step), "float32")
            if self.slim_start_step:
                scale = ops.where(t < self.slim_start_step,
                                  self.peak, self.slim_start_learning_rate)
            else:  # no slow start
                scale = ops.convert_to_tensor(self.peak, "float32")
            decay = self.total_steps - self.warmup_steps
            # 0.5 (1 + cos x) = cos^2(x / 2): no cancellation near the end of
            # the run in float32.
            half = ops.cos(0.5 * math.pi * (t - self.warmup_steps) / decay)
            cosine = scale * half * half
            if self.warmup_steps > 0:
                warm = ops.minimum(
                    t / self.warmup_steps * (scale - self.warmup_start)
                    + self.warmup_start, scale)
                cosine = ops.where(t <= self.warmup_steps, warm, cosine)
            return ops.maximum(cosine, self.end)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "slim_start_step": self.slim_start_step,
            "slim_start_learning_rate": self.slim_start_learning_rate,
            "warmup_steps": self.warmup_steps,
            "warmup_start": self.warmup_start,
            "end": self.end,
            "name": self.name,
        }


def _non_negative(value, argname):
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"`{argname}` must be a finite float >= 0, got "
                         f"{value!r}.")
    return value
