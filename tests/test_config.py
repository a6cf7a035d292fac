"""Configs: defaults, overrides, every problem reported at once with its path."""

import os

import pytest

from keras_slim.config import ConfigError
from keras_slim.config import default_config
from keras_slim.config import load_config
from keras_slim.config import parse_override
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
