"""`model.fit` from any step of a run: what pretraining and fine-tuning share.

A run's batch `n` is a function of `(seed, n)` alone
(`keras_slim.data.view_pairs`, `labeled_training_batches`), so a run killed
at step `k` resumes by fitting from batch `k`: first what is left of the cut
epoch, then whole epochs.
"""

from keras_slim.runs._run_backend import run_backend
from keras_slim.runs.step_tensorboard import StepTensorBoard
from keras_slim.runs.width_progress import WidthProgress

__all__ = ["fit_from_step"]


def fit_from_step(model, batches, start_step, steps_per_epoch, epochs,
                  callbacks=(), verbose=1, strategy=None):
    """Fit `model` from `start_step` to the end of epoch `epochs`.

    Args:
        model: a compiled Keras model.
        batches: `(start_step, steps or None) -> tf.data.Dataset`, the
            run's batches from `start_step` (`None`: every epoch from there).
        start_step: int >= 0, the first step to train.
        steps_per_epoch: int, steps of one epoch.
        epochs: int, the run's epochs.
        callbacks: Keras callbacks for `fit`.
        verbose: 1: keras_slim's compact per-width progress (`WidthProgress`;
            Keras' bar would print every metric of every width); 2: Keras'
            line per epoch; 0: nothing.
        strategy: the run's `tf.distribute.Strategy` (a multi-worker one
            keeps each worker's share of the same global batches); on JAX
            the run's distribution (`fit` splits each batch over its
            devices).
    """
    callbacks = list(callbacks)
    if verbose == 1:
        callbacks.append(WidthProgress())
        verbose = 0
    epoch, done = divmod(int(start_step), steps_per_epoch)
    if epoch >= epochs:
        return
    run = dict(model=model, callbacks=callbacks, verbose=verbose,
               strategy=strategy)
    if done:
        # The resumed epoch has only its remaining steps left.
        remaining = steps_per_epoch - done
        _fit(batches(start_step, remaining), remaining, epoch, epoch + 1,
             **run)
        epoch += 1
    if epoch < epochs:
        _fit(batches(epoch * steps_per_epoch, None), steps_per_epoch, epoch,
             epochs, **run)


def _fit(dataset, steps, initial_epoch, epochs, model, callbacks, verbose,
         strategy):
    backend = run_backend()
    dataset = backend.fit_input(dataset, strategy)
    try:
        with backend.fit_scope(strategy):
            model.fit(dataset, epochs=epochs, initial_epoch=initial_epoch,
                      steps_per_epoch=steps, callbacks=callbacks,
                      shuffle=False, verbose=verbose)
    except BaseException:
        for callback in callbacks:
            if isinstance(callback, StepTensorBoard):
                callback.close_after_failure()
        raise
