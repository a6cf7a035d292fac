"""The recipe and base registries: what the config and the builders read."""

import pytest

from keras_slim import config as config_module
from keras_slim import methods
from keras_slim.config import ConfigError
from keras_slim.config import load_config
from keras_slim.methods import _registry
from keras_slim.methods.bases import SSLBase
from keras_slim.runs import builders
from tests.methods._helpers import tiny_backbone


def test_every_recipe_and_base_is_registered():
    assert set(methods.recipe_names()) == {"slimclr", "us3l", "dspnet"}
    assert methods.base_names("slimclr") == ("mocov2", "mocov3", "simclr")
    assert methods.base_names("us3l") == ("simclr", "byol", "simsiam")
    assert methods.base_names("dspnet") == ("mocov2",)
    for name in methods.recipe_names():
        cls = methods.recipe_class(name)
        assert getattr(methods, cls.__name__) is cls
        assert cls.default_base == methods.base_names(name)[0]
        assert cls.width_kind in ("list", "range")


def test_the_config_reads_its_choices_from_the_registry():
    schema = config_module.SCHEMA["method"]
    assert schema["name"].choices == list(methods.recipe_names())
    assert "us3l: simclr | byol | simsiam" in schema["base"].doc


def test_a_new_base_is_a_choice_of_its_recipe():
    class Echo(SSLBase):
        name = "echo_test_base"
        recipes = {"us3l": dict(projection_dim=8)}

    try:
        assert _registry.register_base(Echo) is Echo
        assert methods.base_names("us3l")[-1] == "echo_test_base"
        assert methods.base_class("echo_test_base", "us3l") is Echo
        config = load_config(None, [
            "method.name=us3l", "data.image_size=16",
            "backbone.widths={min: 0.25, max: 1.0}",
            "method.base=echo_test_base"])
        assert config["method"]["base"] == "echo_test_base"
        with pytest.raises(ConfigError, match="slimclr takes base"):
            load_config(None, ["method.base=echo_test_base",
                               "data.image_size=16"])
    finally:
        _registry._BASES.pop("echo_test_base", None)


def test_two_recipes_or_bases_of_one_name_are_refused():
    class Again(SSLBase):
        name = "mocov2"
        recipes = {"slimclr": {}}

    with pytest.raises(ValueError, match="Two bases named 'mocov2'"):
        _registry.register_base(Again)
    with pytest.raises(ValueError, match="Unknown recipe 'swav'"):
        methods.recipe_class("swav")
    with pytest.raises(ValueError, match=r"US3L `base` must be one of "
                                         r"\['simclr', 'byol', 'simsiam'\]"):
        methods.base_class("mocov2", "us3l")


def test_recipe_options_are_the_constructor_arguments():
    options = methods.DSPNet.options()
    assert options["feature_weight"] == 1.0
    assert options["queue_size"] == 65536  # inherited from SlimCLR
    assert methods.US3L.options()["sampling"] == "uniform"


@pytest.mark.parametrize("name, base, widths", [
    ("slimclr", "mocov3", "[1.0, 0.5]"),
    ("dspnet", None, "[1.0, 0.5]"),
    ("us3l", "byol", "{min: 0.25, max: 1.0}"),
])
def test_builders_build_each_recipe_from_the_registry(name, base, widths):
    overrides = [f"method.name={name}", "data.image_size=16",
                 f"backbone.widths={widths}", "train.epochs=4",
                 "method.options={hidden_dim: 8, projection_dim: 4}"]
    if base:
        overrides.append(f"method.base={base}")
    config = load_config(None, overrides)
    backbone = tiny_backbone(widths=config_module.widths_from_config(config))
    model = builders.build_method(config, backbone, steps_per_epoch=3)
    assert type(model) is methods.recipe_class(name)
    assert model.base == (base or type(model).default_base)
    if base == "mocov3":  # the base's run option: its momentum schedule
        assert model.momentum_total_steps == 12
    if name == "us3l":
        assert (model.total_steps, model.steps_per_epoch) == (12, 3)
        assert builders.rate_per_epoch(config)
    else:
        assert not builders.rate_per_epoch(config)
