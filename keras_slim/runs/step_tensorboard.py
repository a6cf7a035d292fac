"""TensorBoard whose batch summaries continue at the recipe's step."""

import keras

__all__ = ["StepTensorBoard"]


class StepTensorBoard(keras.callbacks.TensorBoard):
    """TensorBoard whose batch summaries continue at the training step.

    Keras numbers batch summaries from 0 in every `fit` call, so a resumed
    run (and the second `fit` after a cut epoch) would write over steps
    already logged. Here they continue at the model's step count (a
    recipe's `ssl_step`). Every epoch's summaries are written, whatever
    `update_freq`. On JAX too: Keras's TensorBoard writes with
    `tf.summary` on any backend (TensorFlow installed).

    Args:
        log_dir, update_freq, **kwargs: see `keras.callbacks.TensorBoard`.
        step_variable: the name of the model's variable that counts its
            training steps (`step_counter` for a
            `keras_slim.tasks.SlimClassifier`).

    Example:

    ```python
    import glob
    import os
    import tempfile

    import tensorflow as tf
    from keras_slim.backbones import SlimResNet
    from keras_slim.methods import SlimCLR
    from keras_slim.runs.step_tensorboard import StepTensorBoard

    model = SlimCLR(SlimResNet(depth=18, stem="cifar", base_width=4,
                               widths=[1.0, 0.5]), base="simclr")
    model.ssl_step.assign(300)  # resumed from a step-300 checkpoint
    logs_dir = tempfile.mkdtemp()
    board = StepTensorBoard(logs_dir, update_freq=1)
    # What `model.fit(pairs, callbacks=[board])` calls for its first batch:
    board.set_model(model)
    board.on_train_begin()
    board.on_train_batch_begin(0)
    board.on_train_batch_end(0, {"loss": 2.5})
    board.on_train_end()
    events = [tf.compat.v1.Event.FromString(record.numpy())
              for record in tf.data.TFRecordDataset(
                  glob.glob(os.path.join(logs_dir, "train", "events.*")))]
    steps = [event.step for event in events if event.summary.value]
    assert steps == [301]  # not 1: the summaries go on where the run was
    ```
    """

    def __init__(self, log_dir="logs", update_freq="epoch",
                 step_variable="ssl_step", **kwargs):
        super().__init__(log_dir=log_dir, update_freq=update_freq, **kwargs)
        self.step_variable = step_variable

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # Keras' own counter of this callback, set to where the run is.
        self._global_train_batch = int(keras.ops.convert_to_numpy(
            getattr(self.model, self.step_variable)))
        self._pop_writer()
        self._push_writer(self._train_writer, self._global_train_batch)

    def _log_epoch_metrics(self, epoch, logs):
        # Keras leaves its batch filter (`record_if(step % update_freq ==
        # 0)` of the last batch) in place at the epoch's end, which dropped
        # the epoch's summaries unless that step was a multiple of
        # `update_freq`.
        with self.summary.record_if(True):
            super()._log_epoch_metrics(epoch, logs)

    def close_after_failure(self):
        """Undo what a `fit` that raised left behind.

        Keras' TensorBoard enters its writer and a `record_if(step %
        update_freq == 0)` as global summary state at each batch and leaves
        them only in `on_train_end`, which a failed `fit` (a NaN stop, a
        Ctrl-C) never calls. Left in place, they filter every later summary
        of the process by this run's step: a notebook's next TensorBoard
        would log nothing at its epochs.
        """
        while self._prev_summary_state:
            self._pop_writer()
        self._close_writers()
