"""Learning-rate schedules: warmup + cosine, and SlimCLR's slow start."""

import math
import numbers

import keras
from keras import ops

__all__ = ["WarmupCosine", "SlowStartCosine"]


def _steps(value, argname, minimum=0):
    """Validates a step count: an integer (or integral float) >= minimum."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"`{argname}` must be an integer number of steps. "
            f"Received: {argname}={value!r}"
        )
    if not isinstance(value, numbers.Integral):
        if not float(value).is_integer():
            raise ValueError(
                f"`{argname}` must be an integer number of steps. "
                f"Received: {argname}={value!r}"
            )
    value = int(value)
    if value < minimum:
        raise ValueError(
            f"`{argname}` must be >= {minimum}. Received: {argname}={value}"
        )
    return value


def _warmup_steps(value, limit, limit_name):
    """A warmup step count, at most `limit` (the steps it warms up within)."""
    value = _steps(value, "warmup_steps")
    if value > limit:
        raise ValueError(
            f"`warmup_steps` must be <= `{limit_name}`. Received: "
            f"warmup_steps={value}, {limit_name}={limit}"
        )
    return value


def _rate(value, argname):
    """Validates a learning-rate value: a finite float >= 0."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(
            f"`{argname}` must be a float. Received: {argname}={value!r}"
        )
    value = float(value)
    if not math.isfinite(value) or value < 0:
        raise ValueError(
            f"`{argname}` must be a finite float >= 0. "
            f"Received: {argname}={value!r}"
        )
    return value


def _warmup_cosine(step, peak, total_steps, warmup_steps, warmup_start, end):
    """Branch-free warmup + cosine on a float32 `step` tensor."""
    peak = ops.cast(peak, "float32")
    end = ops.cast(end, "float32")
    if warmup_steps > 0:
        warm = warmup_start + (peak - warmup_start) * (step / warmup_steps)
    else:
        warm = peak
    decay_steps = total_steps - warmup_steps
    if decay_steps > 0:
        progress = ops.clip((step - warmup_steps) / decay_steps, 0.0, 1.0)
    else:
        progress = ops.ones_like(step)
    cosine = end + 0.5 * (peak - end) * (1.0 + ops.cos(math.pi * progress))
    return ops.where(step < warmup_steps, warm, cosine)


def _as_float_step(step):
    return ops.cast(ops.convert_to_tensor(step), "float32")


@keras.saving.register_keras_serializable(package="keras_slim")
class WarmupCosine(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warmup followed by a (half-period) cosine decay.

    ```python
    lr(s) = warmup_start + (peak - warmup_start) * s / warmup_steps
                                                   # s < warmup_steps
    lr(s) = end + 0.5 * (peak - end) * (1 + cos(pi * p))
            with p = (s - warmup_steps) / (total_steps - warmup_steps)
                                                   # warmup_steps <= s <= total
    lr(s) = end                                    # s >= total_steps
    ```

    The value is computed without Python branching on the step, so the
    schedule runs inside `tf.function` and under XLA (`jit_compile=True`). The
    step may be an int or float tensor (e.g. `optimizer.iterations`).

    Args:
        peak: Float `>= 0`. The learning rate at the end of warmup.
        total_steps: Int `> 0`. The step at which the cosine reaches `end`.
        warmup_steps: Int in `[0, total_steps]`. Length of the linear warmup.
            Defaults to `0` (start directly at `peak`).
        warmup_start: Float `>= 0`. The learning rate at step 0 when
            `warmup_steps > 0`. Defaults to `0.0`.
        end: Float `>= 0`. The final learning rate. Defaults to `0.0`.
        steps_per_epoch: `None` (a new rate every step), or an int `> 0`:
            the rate changes once per epoch, at its first step (the official
            US3L `adjust_learning_rate`; pass steps in epochs' multiples).
        name: Optional name of the schedule.

    Example:

    ```python
    from keras_slim.optimizers import LARS, WarmupCosine

    schedule = WarmupCosine(peak=0.3, total_steps=10_000, warmup_steps=500)
    assert abs(float(schedule(0))) < 1e-7
    assert abs(float(schedule(500)) - 0.3) < 1e-6
    assert abs(float(schedule(10_000))) < 1e-7
    optimizer = LARS(learning_rate=schedule)
    ```

    References:
        - [Loshchilov & Hutter, 2016. SGDR: Stochastic Gradient Descent with
          Warm Restarts](https://arxiv.org/abs/1608.03983)
        - [Goyal et al., 2017. Accurate, Large Minibatch SGD: Training
          ImageNet in 1 Hour](https://arxiv.org/abs/1706.02677) (warmup)
    """

    def __init__(
        self,
        peak,
        total_steps,
        warmup_steps=0,
        warmup_start=0.0,
        end=0.0,
        steps_per_epoch=None,
        name=None,
    ):
        super().__init__()
        self.peak = _rate(peak, "peak")
        self.total_steps = _steps(total_steps, "total_steps", minimum=1)
        self.steps_per_epoch = (None if steps_per_epoch is None else _steps(
            steps_per_epoch, "steps_per_epoch", minimum=1))
        self.warmup_steps = _warmup_steps(warmup_steps, self.total_steps,
                                          "total_steps")
        self.warmup_start = _rate(warmup_start, "warmup_start")
        self.end = _rate(end, "end")
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name or "WarmupCosine"):
            step = _as_float_step(step)
            if self.steps_per_epoch is not None:
                every = float(self.steps_per_epoch)
                step = ops.floor(step / every) * every
            return _warmup_cosine(step, self.peak, self.total_steps,
                                  self.warmup_steps, self.warmup_start,
                                  self.end)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "warmup_start": self.warmup_start,
            "end": self.end,
            "steps_per_epoch": self.steps_per_epoch,
            "name": self.name,
        }


@keras.saving.register_keras_serializable(package="keras_slim")
class SlowStartCosine(keras.optimizers.schedules.LearningRateSchedule):
    """SlimCLR's slow-start schedule: a warmup-cosine, then a restart.

    SlimCLR trains only the full-width network for the first part of
    pretraining ("slow start") and adds the sub-networks afterwards; when they
    join, the learning rate is restarted. This schedule is two
    `WarmupCosine` phases back to back:

    - steps `[0, slow_start_steps)`: `WarmupCosine(peak, slow_start_steps,
      warmup_steps, warmup_start, slow_start_end)`;
    - steps `>= slow_start_steps`, counted from the restart:
      `WarmupCosine(restart_peak, total_steps - slow_start_steps,
      restart_warmup_steps, warmup_start=slow_start_end, end)`, i.e. the
      restart warms up from where the first phase ended (with the default
      `restart_warmup_steps=0` it jumps straight back up to `restart_peak`);
    - `end` from `total_steps` on.

    Branch-free in the step: works inside `tf.function` and under XLA.

    Args:
        peak: Float `>= 0`. Peak learning rate of the slow-start phase.
        total_steps: Int. Total number of training steps (both phases).
        slow_start_steps: Int in `[1, total_steps)`. Length of the slow-start
            phase; the restart happens at this step.
        warmup_steps: Int in `[0, slow_start_steps]`. Linear warmup of the
            first phase. Defaults to `0`.
        restart_peak: Float `>= 0` or `None`. Peak of the second phase.
            Defaults to `peak`.
        restart_warmup_steps: Int in `[0, total_steps - slow_start_steps]`.
            Linear warmup of the second phase. Defaults to `0`.
        warmup_start: Float `>= 0`. Value at step 0 when `warmup_steps > 0`.
            Defaults to `0.0`.
        slow_start_end: Float `>= 0` or `None`. Value the first phase decays
            to (reached just before the restart). Defaults to `end`.
        end: Float `>= 0`. Final learning rate. Defaults to `0.0`.
        name: Optional name of the schedule.

    Example:

    ```python
    from keras_slim.optimizers import SlowStartCosine

    # 100 epochs of 1000 steps, the sub-networks join at epoch 50.
    schedule = SlowStartCosine(
        peak=0.3, total_steps=100_000, slow_start_steps=50_000,
        warmup_steps=5_000, restart_warmup_steps=0,
    )
    assert float(schedule(49_999)) < 1e-6  # ~0.0: end of the first cosine
    assert abs(float(schedule(50_000)) - 0.3) < 1e-6  # 0.3: restarted
    ```

    References:
        - [Zhao, Zhu, Wang & Yang, 2022. Slimmable Networks for Contrastive
          Self-supervised Learning (SlimCLR)](https://arxiv.org/abs/2209.15525)
        - [Loshchilov & Hutter, 2016. SGDR: Stochastic Gradient Descent with
          Warm Restarts](https://arxiv.org/abs/1608.03983)
    """

    def __init__(
        self,
        peak,
        total_steps,
        slow_start_steps,
        warmup_steps=0,
        restart_peak=None,
        restart_warmup_steps=0,
        warmup_start=0.0,
        slow_start_end=None,
        end=0.0,
        name=None,
    ):
        super().__init__()
        self.peak = _rate(peak, "peak")
        self.total_steps = _steps(total_steps, "total_steps", minimum=2)
        self.slow_start_steps = _steps(
            slow_start_steps, "slow_start_steps", minimum=1
        )
        if self.slow_start_steps >= self.total_steps:
            raise ValueError(
                "`slow_start_steps` must be < `total_steps` (the restart must "
                "happen before the end of training). Received: "
                f"slow_start_steps={self.slow_start_steps}, "
                f"total_steps={self.total_steps}"
            )
        self.warmup_steps = _warmup_steps(warmup_steps, self.slow_start_steps,
                                          "slow_start_steps")
        self.restart_peak = (
            self.peak
            if restart_peak is None
            else _rate(restart_peak, "restart_peak")
        )
        self.restart_warmup_steps = _steps(
            restart_warmup_steps, "restart_warmup_steps"
        )
        remaining = self.total_steps - self.slow_start_steps
        if self.restart_warmup_steps > remaining:
            raise ValueError(
                "`restart_warmup_steps` must be <= `total_steps - "
                f"slow_start_steps` ({remaining}). Received: "
                f"restart_warmup_steps={self.restart_warmup_steps}"
            )
        self.warmup_start = _rate(warmup_start, "warmup_start")
        self.end = _rate(end, "end")
        self.slow_start_end = (
            self.end
            if slow_start_end is None
            else _rate(slow_start_end, "slow_start_end")
        )
        self.name = name

    def __call__(self, step):
        with keras.name_scope(self.name or "SlowStartCosine"):
            step = _as_float_step(step)
            first = _warmup_cosine(step, self.peak, self.slow_start_steps,
                                   self.warmup_steps, self.warmup_start,
                                   self.slow_start_end)
            second = _warmup_cosine(step - self.slow_start_steps,
                                    self.restart_peak,
                                    self.total_steps - self.slow_start_steps,
                                    self.restart_warmup_steps,
                                    self.slow_start_end, self.end)
            return ops.where(step < self.slow_start_steps, first, second)

    def get_config(self):
        return {
            "peak": self.peak,
            "total_steps": self.total_steps,
            "slow_start_steps": self.slow_start_steps,
            "warmup_steps": self.warmup_steps,
            "restart_peak": self.restart_peak,
            "restart_warmup_steps": self.restart_warmup_steps,
            "warmup_start": self.warmup_start,
            "slow_start_end": self.slow_start_end,
            "end": self.end,
            "name": self.name,
        }
