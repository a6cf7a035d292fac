"""The folder of one pretraining run: config, checkpoints, logs, results."""

import json
import os

import yaml

from keras_slim.config import ConfigError
from keras_slim.config import ConfigSection
from keras_slim.config import dump_config
from keras_slim.config import validate_config
from keras_slim.io import write_json_atomic
from keras_slim.io import write_text_atomic

__all__ = ["RunDirectory"]

# Changing these between a run and its resumption would silently mix two
# different trainings into one set of weights.
_FIXED_ON_RESUME = (
    ("seed",),
    ("data", "source"), ("data", "train_split"), ("data", "image_size"),
    ("data", "channels"), ("data", "max_examples"), ("data", "stream"),
    ("augmentation",),
    ("backbone",),
    ("method",),
    ("train", "batch_size"), ("train", "optimizer"),
    ("train", "learning_rate"), ("train", "momentum"),
    ("train", "weight_decay"), ("train", "warmup_epochs"),
    ("train", "final_learning_rate"), ("train", "restart_learning_rate"),
    ("train", "slow_start_schedule"),
    ("train", "learning_rate_per"),
    ("train", "mixed_precision"),
)


def _member(name):
    """A read-only property: the path of `name` inside the run folder."""
    return property(lambda run: run.file(name), doc=f"<run>/{name}")


class RunDirectory:
    """Paths and atomic writers of a run folder.

    Layout:

    ```
    <run>/config.yaml            the resolved configuration
    <run>/checkpoint/            the latest training state (resume)
    <run>/logs/                  TensorBoard
    <run>/history.json           per-epoch metrics
    <run>/backbone.keras         the trained slimmable backbone
    <run>/results.json           per-width cost and accuracy
    <run>/accuracy_vs_flops.png  the plot of results.json
    ```

    Args:
        path: the folder (created if missing).
    """

    def __init__(self, path):
        self.path = os.path.abspath(path)

    def file(self, *parts):
        return os.path.join(self.path, *parts)

    # The layout above, one path each (read-only properties).
    config_path = _member("config.yaml")
    checkpoint_dir = _member("checkpoint")
    logs_dir = _member("logs")
    backbone_path = _member("backbone.keras")
    results_path = _member("results.json")
    history_path = _member("history.json")
    plot_path = _member("accuracy_vs_flops.png")

    def exists(self):
        return os.path.isfile(self.config_path)

    def read_config(self):
        """config.yaml as the plain dict it holds (keys added to keras_slim
        since it was written are absent; `keras_slim.config.validate_config`
        fills them in)."""
        if not self.exists():
            raise FileNotFoundError(
                f"{self.path} is not a keras-slim run directory (no "
                f"config.yaml). Give the folder that `keras-slim pretrain` "
                f"wrote, e.g. runs/quickstart."
            )
        with open(self.config_path, encoding="utf-8") as f:
            return yaml.safe_load(f)

    def has_training_state(self):
        return os.path.isfile(os.path.join(self.checkpoint_dir, "state.json"))

    def start(self, config, fixed=None):
        """Write the config of a new run, or check a resumed run's config.

        Only a folder with a saved training state refuses another config: a
        run that stopped before its first checkpoint (a NaN, a refused
        setting) holds nothing the new config could be mixed with.

        Args:
            config: the run's validated config.
            fixed: the key paths that must not change on resumption
                (default: a pretraining run's).
        """
        os.makedirs(self.path, exist_ok=True)
        if self.exists() and self.has_training_state():
            differences = config_differences(self.read_config(), config,
                                             fixed)
            if differences:
                raise ValueError(
                    f"{self.path} holds a run with another configuration; "
                    f"resuming would mix two trainings. Different: "
                    + "; ".join(differences)
                    + ". Use a new run directory (output_dir=... or "
                      "name=...), or restore these values."
                )
        write_text_atomic(self.config_path, dump_config(config))

    def write_json(self, name, data):
        write_json_atomic(self.file(name), data)

    def read_json(self, name, default=None):
        path = self.file(name)
        if not os.path.isfile(path):
            return default
        with open(path, encoding="utf-8") as f:
            return json.load(f)


def config_differences(old, new, fixed=None):
    """Human-readable differences that forbid resuming `old` as `new` (of
    the key paths `fixed`, default a pretraining run's).

    `old` is a run's saved config.yaml (a dict), `new` a `RunConfig` or a
    dict; both are compared as the plain dicts config.yaml holds.
    """
    found = []
    old = _with_defaults(old)
    if isinstance(new, ConfigSection):
        new = new.to_dict()
    for key_path in fixed or _FIXED_ON_RESUME:
        a, b = _get(old, key_path), _get(new, key_path)
        if a != b:
            found.append(f"{'.'.join(key_path)}: {a!r} -> {b!r}")
    return found


def _with_defaults(config):
    """A run's saved config with keys added since it was written filled in
    with their defaults (so a newer keras_slim still resumes it)."""
    try:
        return validate_config(config).to_dict()
    except ConfigError:
        return config  # compared as written; differences are reported


def _get(config, key_path):
    node = config
    for key in key_path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node
