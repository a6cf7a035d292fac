"""Run configurations: one YAML file plus `key=value` overrides, checked up front.

A configuration is a frozen `RunConfig` of sections (`DataConfig`,
`AugmentationConfig`, `BackboneConfig`, `MethodConfig`, `TrainConfig`,
`EvaluationConfig`, `FinetuneConfig`), each a dataclass that declares its
keys once: type, default, choices, check and doc. A YAML file only lists
what it changes. `load_config` reports *every* problem at once (unknown
keys, wrong types, values out of range), each with its key path, before
anything expensive runs:

```
keras_slim.config.ConfigError: 3 problems in configs/typo.yaml:
  train.epochs: expected an integer, got 'ten' (str)
  train.optimiser: unknown key; did you mean 'optimizer'?
  backbone.widths: widths must run largest first, e.g. [1.0, 0.5, 0.25]
```

`SCHEMA` is the same schema as a nested dict of `Setting`s, derived from
the dataclasses.
"""

from keras_slim.config._loading import SCHEMA
from keras_slim.config._loading import as_run_config
from keras_slim.config._loading import default_config
from keras_slim.config._loading import dump_config
from keras_slim.config._loading import load_config
from keras_slim.config._loading import validate_config
from keras_slim.config._loading import widths_from_config
from keras_slim.config._overrides import parse_override
from keras_slim.config._overrides import parsed_overrides
from keras_slim.config._overrides import set_path
from keras_slim.config._setting import Setting
from keras_slim.config._setting import setting
from keras_slim.config.augmentation_config import AugmentationConfig
from keras_slim.config.backbone_config import BackboneConfig
from keras_slim.config.config_error import ConfigError
from keras_slim.config.config_section import ConfigSection
from keras_slim.config.config_section import config_section
from keras_slim.config.data_config import DataConfig
from keras_slim.config.evaluation_config import EvaluationConfig
from keras_slim.config.finetune_config import FinetuneConfig
from keras_slim.config.method_config import MethodConfig
from keras_slim.config.run_config import RunConfig
from keras_slim.config.train_config import TrainConfig

__all__ = [
    "AugmentationConfig",
    "BackboneConfig",
    "ConfigError",
    "ConfigSection",
    "DataConfig",
    "EvaluationConfig",
    "FinetuneConfig",
    "MethodConfig",
    "RunConfig",
    "SCHEMA",
    "Setting",
    "TrainConfig",
    "as_run_config",
    "config_section",
    "default_config",
    "dump_config",
    "set_path",
    "load_config",
    "parse_override",
    "parsed_overrides",
    "setting",
    "validate_config",
    "widths_from_config",
]
