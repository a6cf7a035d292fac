"""Presets: fetched once from their origin, hash-checked, converted, cached."""

import os
import shutil

import numpy as np
import pytest

from keras_slim import convert
from keras_slim.backbones import SlimResNet
from keras_slim.convert import presets
from tests.convert._fixtures import fixture
from tests.convert._fixtures import reference
from tests.convert._fixtures import relative_difference

PRETRAIN = "slimclr_mocov2_tiny.pth.tar"
LINCLS = "slimclr_lincls_tiny.pth.tar"


@pytest.fixture
def tiny_preset(monkeypatch, tmp_path):
    """A preset whose release files are the fixtures, served from a folder."""
    release = tmp_path / "release"
    release.mkdir()
    shutil.copy(fixture(PRETRAIN), release / "tiny-pretrain.pth.tar")
    shutil.copy(fixture(LINCLS), release / "tiny-lincls.pth.tar")
    preset = presets.Preset(
        "tiny", "test", "tiny-pretrain.pth.tar",
        presets.file_sha256(fixture(PRETRAIN))[:10], "tiny-lincls.pth.tar",
        presets.file_sha256(fixture(LINCLS))[:10], "mocov2", 200)
    monkeypatch.setitem(presets.PRESETS, "tiny", preset)
    monkeypatch.setattr(presets, "RELEASE_URL", release.as_uri() + "/")
    monkeypatch.setenv("KERAS_SLIM_CACHE", str(tmp_path / "cache"))
    return release, tmp_path / "cache"


def test_a_preset_downloads_verifies_converts_and_then_loads_the_cache(
        tiny_preset):
    release, cache = tiny_preset
    ref = reference(PRETRAIN)
    backbone = SlimResNet.from_preset("tiny")
    assert os.path.isfile(cache / "checkpoints" / "tiny-pretrain.pth.tar")
    assert os.path.isfile(cache / "tiny.keras")
    shutil.rmtree(release)  # the second load needs no origin
    again = SlimResNet.from_preset("tiny")
    for width in (1.0, 0.25):
        key = f"{ref['widths'][backbone.widths.values.index(width)]:g}"
        np.testing.assert_allclose(again(ref["images"], width=width),
                                   backbone(ref["images"], width=width),
                                   rtol=1e-6, atol=1e-6)
        assert relative_difference(again(ref["images"], width=width),
                                   ref[f"features_{key}"]) < 1e-4


def test_a_preset_with_its_linear_probes(tiny_preset):
    ref = reference(LINCLS)
    backbone, heads = SlimResNet.from_preset("tiny", lincls=True)
    again, heads_again = SlimResNet.from_preset("tiny", lincls=True)
    assert sorted(heads_again) == [0.25, 0.5, 0.75, 1.0]
    logits = heads_again[0.5](again(ref["images"], width=0.5))
    key = f"{ref['widths'][2]:g}"
    assert relative_difference(logits, ref[f"logits_{key}"]) < 1e-4


def test_a_file_with_the_wrong_hash_is_refused_and_removed(tiny_preset,
                                                           monkeypatch):
    release, cache = tiny_preset
    wrong = presets.PRESETS["tiny"].__class__(
        **{**presets.PRESETS["tiny"].__dict__, "sha256": "00000000"})
    monkeypatch.setitem(presets.PRESETS, "tiny", wrong)
    with pytest.raises(convert.PresetError, match="pins 00000000"):
        convert.load_preset("tiny")
    assert not os.path.exists(cache / "checkpoints" / "tiny-pretrain.pth.tar")


def test_offline_the_error_says_where_to_put_the_file(tiny_preset):
    release, cache = tiny_preset
    shutil.rmtree(release)
    with pytest.raises(convert.PresetError) as err:
        convert.load_preset("tiny")
    target = cache / "checkpoints" / "tiny-pretrain.pth.tar"
    assert str(target) in str(err.value)
    os.makedirs(target.parent, exist_ok=True)
    shutil.copy(fixture(PRETRAIN), target)  # downloaded by hand
    assert list(convert.load_preset("tiny").widths.values) == [1.0, 0.75, 0.5, 0.25]


def test_unknown_names_suggest_the_closest_preset():
    with pytest.raises(convert.PresetError, match="slimclr_mocov2_r50_ep800"):
        convert.load_preset("slimclr_mocov2_r50_ep80")


def test_the_released_presets_pin_their_official_files():
    for name, preset in convert.PRESETS.items():
        assert preset.url().startswith(presets.RELEASE_URL)
        assert preset.sha256 in preset.file
        assert preset.lincls_sha256 in preset.lincls_file
        assert name.startswith(f"slimclr_{preset.base}_r50_ep{preset.epochs}")
