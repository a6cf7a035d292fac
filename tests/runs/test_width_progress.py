"""`WidthProgress`: a few values per width instead of every metric."""

import io

from keras_slim.runs.width_progress import WidthProgress

LOGS = {  # as Keras hands them over: sorted by name
    "loss": 14.6672,
    "w0.5/accuracy": 0.0593, "w0.5/distill_loss": 0.7155,
    "w0.5/embedding_std": 0.0882, "w0.5/loss": 2.9,
    "w1/accuracy": 0.0668, "w1/embedding_std": 0.0882, "w1/grad_norm": 3.62,
    "w1/loss": 8.6841, "w1/ssl_loss": 4.96,
}


def _progress(every_steps=2):
    stream = io.StringIO()
    progress = WidthProgress(every_steps=every_steps, stream=stream)
    progress.set_params({"epochs": 40, "steps": 4})
    progress.on_epoch_begin(2)
    return progress, stream


def test_step_and_epoch_lines_show_each_width_briefly():
    progress, stream = _progress()
    for batch in range(4):
        progress.on_train_batch_end(batch, LOGS)
    progress.on_epoch_end(2, dict(LOGS, **{"w1/knn_top1": 0.9694}))
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3  # steps 2 and 4 (not a terminal), the epoch
    assert lines[0].startswith("epoch 3/40  2/4  ")
    assert lines[0].endswith(
        "loss 14.667 | w1 loss 8.684 acc 0.0668 std 0.0882 | "
        "w0.5 loss 2.900 acc 0.0593 std 0.0882")
    assert "grad_norm" not in stream.getvalue()
    assert lines[2].startswith("epoch 3/40  4/4  ")
    assert "w1 loss 8.684 acc 0.0668 std 0.0882 knn 0.969 |" in lines[2]


def test_every_steps_zero_prints_only_epochs():
    progress, stream = _progress(every_steps=0)
    for batch in range(4):
        progress.on_train_batch_end(batch, LOGS)
    progress.on_epoch_end(2, LOGS)
    assert len(stream.getvalue().splitlines()) == 1
