"""Builds a model's optimizer before its first traced step."""


class EagerOptimizerBuild:
    """Mixin for a `keras.Model` that creates every weight in its constructor.

    Keras 3.15 on TensorFlow builds the optimizer in one of two ways, both
    wrong here:

    - With no strategy it defers the build to the first traced step, so the
      step creates the optimizer's slots and TensorFlow traces it a second
      time (measured: a SlimClassifier's first `fit` 12.6 s, 7.7 s with
      the optimizer built first; 2026-12-01).
    - Under a strategy it builds the model by reducing a distributed batch to
      one example batch (`strategy.reduce("MEAN", batch)`), which fails under
      `MultiWorkerMirroredStrategy` (keras issue 20585).

    A model with all its weights made and no compiled loss or metric has only
    the optimizer left to build, so this builds it, in the strategy's scope.
    """

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        if self.optimizer is not None and not self.optimizer.built:
            with self.distribute_strategy.scope():
                self.optimizer.build(self.trainable_variables)
