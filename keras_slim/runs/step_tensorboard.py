"""TensorBoard whose batch summaries continue at the recipe's step."""

import keras

__all__ = ["StepTensorBoard"]


class StepTensorBoard(keras.callbacks.TensorBoard):
    """TensorBoard whose batch summaries continue at the training step.

    Keras numbers batch summaries from 0 in every `fit` call, so a resumed
    run (and the second `fit` after a cut epoch) would write over steps
    already logged. Here they continue at the recipe's `ssl_step`.

    Args:
        log_dir, update_freq, **kwargs: see `keras.callbacks.TensorBoard`.

    Example:

    >>> board = StepTensorBoard("runs/try/logs", update_freq=50)
    >>> model.fit(pairs, epochs=2, callbacks=[board])
    """

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # Keras' own counter of this callback, set to where the run is.
        self._global_train_batch = int(
            keras.ops.convert_to_numpy(self.model.ssl_step)
        )
        self._pop_writer()
        self._push_writer(self._train_writer, self._global_train_batch)
