"""A progress display that stays readable with many widths."""

import sys
import time

import keras

__all__ = ["WidthProgress"]

# Per width, in this order, under these short names.
_SHOWN = (("loss", "loss"), ("accuracy", "acc"), ("top1", "top1"),
          ("embedding_std", "std"), ("knn_top1", "knn"))


class WidthProgress(keras.callbacks.Callback):
    """Compact training progress: the total loss, then a few values per width.

    Keras' progress bar prints every logged metric, which for a slimmable
    recipe is 6-7 per width (`w0.5/ssl_loss`, `w0.5/grad_norm`, ...): a line
    of several hundred characters per update. This prints, per width, only
    the loss, the contrastive accuracy, the embedding std (the collapse
    signal) and the kNN top-1 when measured; everything is still in the
    history and TensorBoard. On a terminal the step line updates in place;
    otherwise (a log file) it is printed every `every_steps` steps.

    Args:
        every_steps: steps between two step lines when not on a terminal
            (0: only the epoch lines).
        stream: where to print (default `sys.stdout`).

    Example:

    ```python
    import io

    from keras_slim.runs import WidthProgress

    stream = io.StringIO()
    progress = WidthProgress(every_steps=0, stream=stream)
    # `model.fit(pairs, epochs=40, verbose=0, callbacks=[progress])` calls:
    progress.set_params({"epochs": 40, "steps": 11})
    progress.on_epoch_begin(2)
    progress.on_epoch_end(2, {"loss": 11.58, "w1/loss": 8.68,
                              "w1/accuracy": 0.4, "w1/grad_norm": 3.6,
                              "w0.5/loss": 2.9})
    [line] = stream.getvalue().splitlines()  # one line per epoch
    assert line.startswith("epoch 3/40  11/11  ")
    assert line.endswith(
        "loss 11.580 | w1 loss 8.680 acc 0.400 | w0.5 loss 2.900")
    assert "grad_norm" not in line  # still in the history and TensorBoard
    ```
    """

    def __init__(self, every_steps=50, stream=None):
        super().__init__()
        self.every_steps = int(every_steps)
        self.stream = stream

    def _out(self):
        return self.stream or sys.stdout

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch
        self.started = time.time()

    def on_train_batch_end(self, batch, logs=None):
        interactive = getattr(self._out(), "isatty", lambda: False)()
        if not interactive and (not self.every_steps
                                or (batch + 1) % self.every_steps):
            return
        text = self._line(batch + 1, logs)
        if interactive:
            self._out().write("\r" + text + "\x1b[K")
        else:
            self._out().write(text + "\n")
        self._out().flush()

    def on_epoch_end(self, epoch, logs=None):
        steps = self.params.get("steps") or 0
        text = self._line(steps, logs)
        if getattr(self._out(), "isatty", lambda: False)():
            text = "\r" + text + "\x1b[K"
        self._out().write(text + "\n")
        self._out().flush()

    def _line(self, step, logs):
        logs = logs or {}
        epochs = self.params.get("epochs")
        steps = self.params.get("steps")
        seconds = (time.time() - self.started) / max(step, 1)
        head = (f"epoch {self.epoch + 1}/{epochs}  {step}/{steps}  "
                f"{seconds:.2f} s/step")
        if "loss" in logs:
            head += f"  loss {_number(logs['loss'])}"
        return " | ".join([head] + _width_parts(logs))


def _width_parts(logs):
    widths = []
    for key in logs:
        prefix = key.split("/", 1)[0]
        if "/" in key and prefix not in widths:
            widths.append(prefix)
    parts = []
    for prefix in sorted(widths, key=_largest_first):
        values = [f"{short} {_number(logs[f'{prefix}/{name}'])}"
                  for name, short in _SHOWN if f"{prefix}/{name}" in logs]
        if values:
            parts.append(f"{prefix} " + " ".join(values))
    return parts


def _largest_first(prefix):
    """`w1` before `w0.5` before `w0.25`; other slot names after them."""
    try:
        return (0, -float(prefix[1:]))
    except ValueError:
        return (1, prefix)


def _number(value):
    value = float(keras.ops.convert_to_numpy(value))
    if value != 0 and abs(value) < 0.1:
        return f"{value:.4f}"
    return f"{value:.3f}"
