"""`ConfigError`: every problem of a configuration, with its key path."""


class ConfigError(ValueError):
    """A configuration has problems; `problems` lists them as (path, message).

    Args:
        problems: `(key path, message)` pairs, e.g.
            `("train.epochs", "must be > 0")`, in the order found.
        source: what was read, e.g. a YAML file's path.

    Example:

    ```python
    from keras_slim.config import ConfigError
    from keras_slim.config import load_config

    try:
        load_config(None, ["train.epochs=0", "train.optimiser=sgd",
                           "data.image_size=16"])
    except ConfigError as error:
        problems = dict(error.problems)
    assert problems["train.epochs"] == "must be > 0"
    assert "did you mean 'optimizer'" in problems["train.optimiser"]
    ```
    """

    def __init__(self, problems, source="the configuration"):
        self.problems = list(problems)
        lines = [f"  {path}: {message}" for path, message in self.problems]
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        super().__init__(f"{count} {noun} in {source}:\n" + "\n".join(lines))
