"""`RunConfig`: a whole run configuration, frozen and validated."""

import dataclasses

from keras_slim.config._checks import non_negative
from keras_slim.config._rules import cross_field_problems
from keras_slim.config._rules import option_problems
from keras_slim.config._setting import setting
from keras_slim.config.augmentation_config import AugmentationConfig
from keras_slim.config.backbone_config import BackboneConfig
from keras_slim.config.config_section import ConfigSection
from keras_slim.config.config_section import config_section
from keras_slim.config.data_config import DataConfig
from keras_slim.config.evaluation_config import EvaluationConfig
from keras_slim.config.finetune_config import FinetuneConfig
from keras_slim.config.method_config import MethodConfig
from keras_slim.config.train_config import TrainConfig

__all__ = ["RunConfig"]


def _section(cls):
    return dataclasses.field(default_factory=cls)


@config_section
class RunConfig(ConfigSection):
    """A run configuration: the run's name, seed and folder, and its sections.

    `keras_slim.config.load_config` (a YAML file plus `key=value`
    overrides) and `validate_config` (a mapping) make one; every instance
    is valid (building one checks each key and the rules across sections,
    reporting every problem at once). It is frozen: `replace` and
    `with_overrides` make changed copies, `to_dict()` is the plain nested
    dict a run directory's config.yaml holds. Read `config.train.epochs`;
    `config["train"]["epochs"]` works too (read-only, for older scripts).

    A new key is one `setting(...)` line in its section's class; a new
    section is one `ConfigSection` file and one field here.

    Example:

    ```python
    import dataclasses

    import pytest

    from keras_slim.config import RunConfig
    from keras_slim.config import load_config

    config = load_config(None, ["data.image_size=16", "train.epochs=3"])
    assert isinstance(config, RunConfig)
    assert config.train.epochs == config["train"]["epochs"] == 3
    assert RunConfig.from_dict(config.to_dict()) == config
    with pytest.raises(dataclasses.FrozenInstanceError, match="replace"):
        config.train.epochs = 5
    assert config.replace(**{"train.epochs": 5}).train.epochs == 5
    ```
    """

    name: str = setting("run", doc="run name (the run directory's default)")
    seed: int = setting(0, check=non_negative)
    output_dir: str | None = setting(None, doc=(
        "run directory (default: runs/<name>)"))
    data: DataConfig = _section(DataConfig)
    augmentation: AugmentationConfig = _section(AugmentationConfig)
    backbone: BackboneConfig = _section(BackboneConfig)
    method: MethodConfig = _section(MethodConfig)
    train: TrainConfig = _section(TrainConfig)
    evaluation: EvaluationConfig = _section(EvaluationConfig)
    finetune: FinetuneConfig = _section(FinetuneConfig)

    @classmethod
    def _value_problems(cls, values):
        # Checked beside the keys' own problems, as each option is a key.
        return option_problems(values["method"]["name"],
                               values["method"]["options"],
                               values["augmentation"]["options"])

    def _problems(self):
        problems = option_problems(self.method.name, self.method.options,
                                   self.augmentation.options)
        return problems or cross_field_problems(self)
