"""`Run`: what `prepare` builds and `train` and `evaluate` use."""

from keras_slim.runs.inputs import labelled_sets

__all__ = ["Run"]


class Run:
    """One pretraining run, prepared: its model, data and run directory.

    `keras_slim.runs.prepare(config)` makes it; `train(run)` trains it from
    where its checkpoint left off and `evaluate(run)` measures every width.
    Everything here is plain attributes, so a script (e.g. one with its own
    `tf.distribute` strategy) can read or change what a step uses.

    Args:
        config: the run's `keras_slim.config.RunConfig`.
        directory: its `RunDirectory` (config, checkpoint, logs, results).
        strategy: the `tf.distribute.Strategy` the model was built in (on
            JAX, the `keras.distribution` it was built and trains under:
            `strategy.distribution`, `None` on one device).
        model: the compiled recipe (`model.backbone` is the backbone).
        train_data: the pretraining images (`ImageData` or `ImageFiles`).
        augmentation: the `TwoViewAugmentation` that makes the view pairs.
        steps_per_epoch: training steps per epoch.
        start_step: the step the run resumes at (0 for a new run).
        history: per-epoch log dicts restored from the checkpoint.
        metric_state: running metric means of a cut epoch, or `None`.
        log: where progress lines go.

    Example:

    ```python
    import os
    import tempfile

    from keras_slim.config import load_config
    from keras_slim.runs import prepare

    folder = os.path.join(tempfile.mkdtemp(), "try")
    config = load_config(None, [
        "data.image_size=8", "data.max_examples=128", "train.batch_size=32",
        "train.epochs=1", "backbone.base_width=4",
        "backbone.widths=[1.0, 0.5]", f"output_dir={folder}"])
    lines = []
    run = prepare(config, log=lines.append)  # data, model, restored checkpoint
    assert run.steps_per_epoch == 4 and run.start_step == 0
    assert run.backbone is run.model.backbone
    assert repr(run).endswith("step 0 of 4)")
    # Then `history = train(run)` (fit, checkpoints, backbone.keras) and
    # `results = evaluate(run)` (per-width kNN/linear, results.json).
    ```
    """

    def __init__(self, config, directory, strategy, model, train_data,
                 augmentation, steps_per_epoch, start_step=0, history=(),
                 metric_state=None, log=print):
        self.config = config
        self.directory = directory
        self.strategy = strategy
        self.model = model
        self.train_data = train_data
        self.augmentation = augmentation
        self.steps_per_epoch = int(steps_per_epoch)
        self.start_step = int(start_step)
        self.history = list(history)
        self.metric_state = metric_state
        self.log = log
        # Set by `train`: this process's training wall time, in seconds.
        self.train_seconds = None
        self._labelled = None

    @property
    def backbone(self):
        """The slimmable backbone being trained."""
        return self.model.backbone

    def labelled_sets(self):
        """`((train images, labels), (test images, labels))`, loaded once
        (the kNN monitor and the final evaluation share them)."""
        if self._labelled is None:
            self._labelled = labelled_sets(self.config)
        return self._labelled

    def __repr__(self):
        return (f"Run({self.directory.path!r}, "
                f"method={self.config.method.name!r}, "
                f"step {self.start_step} of "
                f"{self.config.train.epochs * self.steps_per_epoch})")
