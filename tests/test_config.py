"""Configs: defaults, overrides, every problem reported at once with its path."""

import copy
import dataclasses
import os
import pickle

import pytest
import yaml

from keras_slim.config import SCHEMA
from keras_slim.config import ConfigError
from keras_slim.config import ConfigSection
from keras_slim.config import DataConfig
from keras_slim.config import FinetuneConfig
from keras_slim.config import MethodConfig
from keras_slim.config import RunConfig
from keras_slim.config import TrainConfig
from keras_slim.config import as_run_config
from keras_slim.config import config_section
from keras_slim.config import default_config
from keras_slim.config import dump_config
from keras_slim.config import load_config
from keras_slim.config import parse_override
from keras_slim.config import setting
from keras_slim.config import validate_config
from keras_slim.configs import bundled_config_names
from keras_slim.configs import resolve_config_path


@pytest.mark.parametrize("name", bundled_config_names())
def test_every_bundled_config_is_valid(name):
    config = load_config(resolve_config_path(name))
    assert config["name"] == name
    assert set(config) == set(default_config())


def test_bundled_configs_cover_the_recipes():
    names = set(bundled_config_names())
    assert {"quickstart", "slimclr_cifar10", "us3l_cifar100_r18",
            "dspnet_cifar10", "mobilenet_v2_small",
            "slimclr_mocov2_imagenet_r50", "slimclr_mocov3_imagenet_r50",
            "slimclr_simclr_imagenet_r50"} <= names


def test_overrides_are_parsed_as_yaml():
    config = load_config(resolve_config_path("quickstart"), [
        "train.epochs=3", "backbone.widths=[1.0, 0.5]", "data.cache_dir=null",
        "train.learning_rate=1e-3", "name=try",
    ])
    assert config["train"]["epochs"] == 3
    assert config["backbone"]["widths"] == [1.0, 0.5]
    assert config["data"]["cache_dir"] is None
    assert config["train"]["learning_rate"] == pytest.approx(1e-3)
    assert config["name"] == "try"


def test_parse_override_rejects_text_without_equals():
    with pytest.raises(ValueError, match="key=value"):
        parse_override("train.epochs")
    assert parse_override("a.b=x=y") == (("a", "b"), "x=y")


def test_all_problems_are_reported_at_once_with_key_paths(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "train:\n  epochs: ten\n  optimiser: sgd\n"
        "backbone:\n  widths: [0.5, 1.0]\n"
        "method:\n  options: {queue_sise: 3}\n"
    )
    with pytest.raises(ConfigError) as info:
        load_config(str(path), ["data.sorce=x", "train.batch_size=0"])
    problems = dict(info.value.problems)
    assert problems["train.epochs"].startswith("expected an integer")
    assert "did you mean 'optimizer'" in problems["train.optimiser"]
    assert "largest to smallest" in problems["backbone.widths"]
    assert "did you mean 'queue_size'" in problems["method.options.queue_sise"]
    assert "did you mean 'source'" in problems["data.sorce"]
    assert problems["train.batch_size"] == "must be > 0"
    assert str(info.value).startswith("6 problems in")


def test_choices_and_cross_field_rules():
    with pytest.raises(ConfigError) as info:
        load_config(None, ["method.name=us3l", "data.image_size=16"])
    assert "width range" in dict(info.value.problems)["backbone.widths"]
    with pytest.raises(ConfigError) as info:
        load_config(None, ["train.optimizer=adam", "data.image_size=16"])
    assert "must be one of" in dict(info.value.problems)["train.optimizer"]
    with pytest.raises(ConfigError) as info:
        load_config(None, ["method.base=byol", "data.image_size=16"])
    assert "slimclr takes base" in dict(info.value.problems)["method.base"]
    with pytest.raises(ConfigError) as info:
        load_config(None, ["method.options={seed: 3}", "data.image_size=16"])
    assert "set by the run" in dict(info.value.problems)["method.options.seed"]
    with pytest.raises(ConfigError) as info:
        load_config(None)
    assert "augmentation.crop_size" in dict(info.value.problems)
    with pytest.raises(ConfigError) as info:
        load_config(None, ["method.slow_start=0.5", "data.image_size=16",
                           "train.learning_rate_per=epoch"])
    assert "per batch" in dict(info.value.problems)[
        "train.learning_rate_per"]
    with pytest.raises(ConfigError) as info:
        load_config(None, ["method.name=us3l", "data.image_size=16",
                           "backbone.widths={min: 0.25, max: 1.0}",
                           "method.options={steps_per_epoch: 3}"])
    assert "set by the run" in dict(info.value.problems)[
        "method.options.steps_per_epoch"]


def test_learning_rate_per_epoch_follows_the_recipe():
    from keras_slim.runs.builders import build_optimizer

    us3l = load_config(None, ["method.name=us3l", "data.image_size=16",
                              "backbone.widths={min: 0.25, max: 1.0}",
                              "train.epochs=4"])
    schedule = build_optimizer(us3l, steps_per_epoch=5)._learning_rate
    assert schedule.steps_per_epoch == 5  # auto: US3L's official epochs
    assert float(schedule(5)) == float(schedule(9)) > float(schedule(10))
    slimclr = load_config(None, ["data.image_size=16", "train.epochs=4"])
    assert build_optimizer(slimclr, 5)._learning_rate.steps_per_epoch is None
    batch = dict(us3l, train=dict(us3l["train"], learning_rate_per="batch"))
    assert build_optimizer(batch, 5)._learning_rate.steps_per_epoch is None


def test_range_widths_and_eval_widths_are_checked():
    config = load_config(None, [
        "method.name=us3l", "data.image_size=16",
        "backbone.widths={min: 0.25, max: 1.0}", "evaluation.eval_widths=[0.5]",
    ])
    assert config["backbone"]["widths"] == {"min": 0.25, "max": 1.0}
    with pytest.raises(ConfigError) as info:
        load_config(None, ["data.image_size=16", "evaluation.eval_widths=[0.3]"])
    assert "evaluation.eval_widths" in dict(info.value.problems)
    with pytest.raises(ConfigError) as info:
        load_config(None, ["data.image_size=16", "backbone.widths={min: 0.25}"])
    assert "needs both" in dict(info.value.problems)["backbone.widths"]


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="no such file"):
        load_config(str(tmp_path / "nope.yaml"))
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(str(bad))
    listed = tmp_path / "list.yaml"
    listed.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(str(listed))
    with pytest.raises(FileNotFoundError, match="Bundled: "):
        resolve_config_path("quickstrat")
    assert os.path.isfile(resolve_config_path("quickstart"))


def test_augmentation_options_are_checked():
    with pytest.raises(ConfigError) as info:
        load_config(resolve_config_path("quickstart"),
                    ["augmentation.options={blur_probabilty: 0.1}"])
    message = dict(info.value.problems)["augmentation.options.blur_probabilty"]
    assert "did you mean 'blur_probability'" in message


def test_numbers_written_without_a_dot_become_floats_in_options():
    config = load_config(resolve_config_path("us3l_cifar100_r18"),
                         ["method.options={group_lambda: 5e-5}"])
    assert config["method"]["options"]["group_lambda"] == pytest.approx(5e-5)


# ------------------------------------------------------------ typed config
def _quick(*overrides):
    return load_config(resolve_config_path("quickstart"), list(overrides))


def test_load_config_returns_frozen_sections_read_as_attributes():
    config = _quick("train.epochs=3")
    assert isinstance(config, RunConfig)
    assert isinstance(config.train, TrainConfig)
    assert isinstance(config.data, DataConfig)
    assert config.train.epochs == 3 and config.data.image_size == 16
    assert config.train.learning_rate == pytest.approx(0.1)
    with pytest.raises(dataclasses.FrozenInstanceError,
                       match=r"frozen.*config\.replace.*with_overrides"):
        config.train.epochs = 5
    with pytest.raises(dataclasses.FrozenInstanceError, match="replace"):
        config.seed = 1
    with pytest.raises(dataclasses.FrozenInstanceError, match="replace"):
        del config.name
    with pytest.raises(TypeError, match=r"'epochs' cannot be set.*replace"):
        config["train"]["epochs"] = 5
    with pytest.raises(TypeError, match="with_overrides"):
        del config["train"]
    assert config.train.epochs == 3


def test_mapping_access_is_kept_read_only_for_older_scripts():
    config = _quick()
    assert config["train"]["batch_size"] == config.train.batch_size == 128
    assert config["method"]["options"] == config.method.options
    assert list(config) == list(default_config())
    assert list(config["train"]) == list(default_config()["train"])
    assert dict(config.train.items()) == config.to_dict()["train"]
    assert "finetune" in config and "trian" not in config
    assert config.get("trian") is None
    with pytest.raises(KeyError, match="did you mean 'train'"):
        config["trian"]
    # A script's plain dict is validated where a RunConfig is expected.
    plain = dict(config, train=dict(config["train"], epochs=3))
    assert validate_config(plain) == config.replace(**{"train.epochs": 3})
    assert as_run_config(plain).train.epochs == 3
    assert as_run_config(config) is config
    with pytest.raises(TypeError, match="expected a RunConfig"):
        as_run_config(["train.epochs=3"])


def test_to_dict_is_the_plain_dict_that_config_yaml_holds():
    config = _quick("backbone.widths={min: 0.25, max: 1.0}",
                    "method.name=us3l", "method.base=null",
                    "method.options={group_lambda: 5e-5}")
    plain = config.to_dict()

    def check_plain(value, path):
        if isinstance(value, dict):
            assert type(value) is dict, path
            for key, item in value.items():
                check_plain(item, f"{path}.{key}")
        else:
            assert type(value) in (list, str, int, float, bool,
                                   type(None)), path

    check_plain(plain, "<root>")
    assert list(plain) == list(SCHEMA)
    for section, keys in SCHEMA.items():
        if isinstance(keys, dict):
            assert list(plain[section]) == list(keys), section
    assert plain["backbone"]["widths"] == {"min": 0.25, "max": 1.0}
    assert plain["method"]["options"] == {"group_lambda": 5e-5}
    assert dump_config(config) == yaml.safe_dump(
        plain, sort_keys=False, default_flow_style=None)
    assert yaml.safe_load(dump_config(config)) == plain
    assert validate_config(plain) == config == plain
    assert RunConfig.from_dict(yaml.safe_load(dump_config(config))) == config
    # Each config holds its own copies of list and dict values.
    plain["method"]["options"]["group_lambda"] = 1.0
    assert config.method.options["group_lambda"] == pytest.approx(5e-5)
    assert config.to_dict()["method"]["options"] is not config.method.options


def test_equality_compares_every_key():
    config = _quick()
    assert config == _quick() and config.train == _quick().train
    assert config != config.replace(seed=1)
    assert config.train != config.evaluation
    assert config != 3 and config != config.to_dict()["train"]
    assert copy.deepcopy(config) == config
    assert pickle.loads(pickle.dumps(config)) == config
    with pytest.raises(TypeError, match="unhashable"):
        hash(config)  # it holds lists and dicts


def test_replace_and_with_overrides_make_validated_copies():
    config = _quick()
    longer = config.replace(seed=2, **{"train.epochs": 3})
    assert (longer.seed, longer.train.epochs) == (2, 3)
    assert (config.seed, config.train.epochs) == (0, 40)  # unchanged
    # A section's mapping changes only the keys it names.
    merged = config.replace(train={"epochs": 5},
                            method={"options": {"temperature": 0.5}})
    assert merged.train.epochs == 5 and merged.train.batch_size == 128
    assert merged.method.options == {"temperature": 0.5}
    assert merged.method.base == "simclr"
    with pytest.raises(ConfigError) as info:
        config.replace(**{"train.epochs": 0, "train.optimiser": "sgd"})
    assert dict(info.value.problems) == {
        "train.epochs": "must be > 0",
        "train.optimiser": "unknown key; did you mean 'optimizer'?"}
    overridden = config.with_overrides(["train.epochs=3",
                                        "backbone.widths=[1.0, 0.5]"])
    assert overridden == config.replace(**{"train.epochs": 3,
                                           "backbone.widths": [1.0, 0.5]})
    with pytest.raises(ConfigError) as info:
        config.with_overrides(["method.name=us3l"])  # a rule across keys
    assert "width range" in dict(info.value.problems)["backbone.widths"]
    with pytest.raises(ConfigError, match="<override>: .* not key=value"):
        config.with_overrides(["train.epochs"])
    assert config.with_overrides("train.epochs=4").train.epochs == 4
    assert config.train.replace(epochs=7).epochs == 7
    with pytest.raises(ConfigError, match="epochs: must be > 0"):
        config.train.with_overrides(["epochs=0"])


def test_building_a_section_checks_it():
    with pytest.raises(ConfigError) as info:
        TrainConfig(epochs=0, optimizer="adam")
    assert str(info.value).startswith("2 problems in this TrainConfig:")
    assert dict(info.value.problems)["epochs"] == "must be > 0"
    assert TrainConfig(learning_rate=1).learning_rate == 1.0
    with pytest.raises(ConfigError, match="width range"):
        RunConfig(data=DataConfig(image_size=16),
                  method=MethodConfig(name="us3l"))
    with pytest.raises(ConfigError, match="train: expected a TrainConfig"):
        RunConfig(data=DataConfig(image_size=16), train={"epochs": 3})
    config = RunConfig(data=DataConfig(image_size=16),
                       train=TrainConfig(epochs=3))
    assert config == load_config(None, ["data.image_size=16",
                                        "train.epochs=3"])


def test_the_schema_is_derived_from_the_dataclasses():
    epochs = SCHEMA["train"]["epochs"]
    assert (epochs.kind, epochs.default, epochs.check(0)) == (
        int, 100, "must be > 0")
    assert SCHEMA["data"]["image_size"].kind == (int, type(None))
    assert SCHEMA["train"]["optimizer"].choices[:2] == ["sgd",
                                                        "sgd_decoupled"]
    assert list(SCHEMA["finetune"]) == [
        "source", "epochs", "batch_size", "optimizer", "learning_rate",
        "momentum", "weight_decay", "warmup_fraction", "label_smoothing",
        "inplace_distillation", "num_random_widths", "label_fraction",
        "crop_scale", "random_baseline"]
    assert "epochs: an integer, default 100" in TrainConfig.__doc__
    assert "optimizer: a string, default 'sgd', one of 'sgd'" in (
        TrainConfig.__doc__)


def test_a_new_key_or_section_is_one_edit():
    @config_section
    class PatientTrainConfig(TrainConfig):
        patience: int = setting(5, check=lambda v: None if v >= 0
                                else "must be >= 0", doc="epochs to wait")

    @config_section
    class ProbeConfig(ConfigSection):
        """The probe: a made-up section."""

        epochs: int = setting(10, choices=[10, 20])

    @config_section
    class ProbedRunConfig(RunConfig):
        train: PatientTrainConfig = dataclasses.field(
            default_factory=PatientTrainConfig)
        probe: ProbeConfig = dataclasses.field(default_factory=ProbeConfig)

    assert ProbedRunConfig.schema()["train"]["patience"].default == 5
    assert ProbedRunConfig.defaults()["probe"] == {"epochs": 10}
    assert "patience: an integer, default 5; epochs to wait." in (
        PatientTrainConfig.__doc__)
    with pytest.raises(ConfigError) as info:
        ProbedRunConfig.from_dict({"data": {"image_size": 16},
                                   "train": {"patience": -1, "patiense": 2},
                                   "probe": {"epochs": 30}})
    assert dict(info.value.problems) == {
        "train.patience": "must be >= 0",
        "train.patiense": "unknown key; did you mean 'patience'?",
        "probe.epochs": "must be one of 10, 20; got 30"}
    config = ProbedRunConfig.from_dict({"data": {"image_size": 16}})
    assert (config.train.patience, config.probe.epochs) == (5, 10)
    assert list(config.to_dict())[-1] == "probe"
    assert config.replace(**{"probe.epochs": 20}).probe["epochs"] == 20


# An old run directory's config.yaml: written before `finetune:` existed.
OLD_RUN_CONFIG = """\
name: quickstart
seed: 0
output_dir: null
data: {source: digits, data_dir: null, train_split: train, test_split: test,
  image_size: 16, channels: null, max_examples: null,
  max_test_examples: null, on_corrupt: fail, cache_dir: null, stream: false}
augmentation:
  preset: small
  crop_size: null
  options: {blur_probability: 0.0, flip_probability: 0.0}
backbone: {name: resnet, depth: 18, stem: cifar, base_width: 16,
  widths: [1.0, 0.5, 0.25], synchronized: false, zero_init_residual: false,
  padding: same, input_normalization: null}
method:
  name: slimclr
  base: simclr
  slow_start: 0.0
  options: {temperature: 0.2, hidden_dim: 128}
train: {epochs: 40, batch_size: 128, optimizer: sgd, learning_rate: 0.1,
  momentum: 0.9, weight_decay: 0.0005, warmup_epochs: 2.0,
  final_learning_rate: 0.0, slow_start_schedule: official,
  learning_rate_per: auto, restart_learning_rate: null, jit_compile: false,
  mixed_precision: null, strategy: default, checkpoint_every_steps: 0,
  verbose: 1}
evaluation: {knn_every_epochs: 10, knn_k: 20, knn_temperature: 0.1,
  max_train_examples: null, linear_epochs: 100, linear_learning_rate: 0.01,
  paper_learning_rate: 60.0, joint_probe: false, random_baseline: true,
  require_beating_baseline: true, semi_supervised: [],
  semi_supervised_epochs: 30, calibration_batches: 20, eval_widths: null}
"""


def test_an_old_run_config_without_newer_keys_loads_and_resumes():
    from keras_slim.runs.run_directory import config_differences

    old = yaml.safe_load(OLD_RUN_CONFIG)
    config = validate_config(old)
    assert config.finetune == FinetuneConfig()
    assert config.to_dict() == dict(old, finetune=default_config()["finetune"])
    assert config == _quick()
    assert config_differences(old, _quick("train.epochs=80")) == []
    assert config_differences(old, _quick("backbone.widths=[1.0, 0.25]")) == [
        "backbone: " + repr(config.backbone.to_dict()) + " -> " + repr(
            dict(config.backbone.to_dict(), widths=[1.0, 0.25]))]
