import keras
import numpy as np
import pytest

import keras_slim
from keras_slim.backbones import SlimMobileNetV2

WIDTHS = [1.0, 0.75, 0.5, 0.35]


@pytest.fixture(scope="module")
def backbone():
    keras.utils.set_random_seed(0)
    model = SlimMobileNetV2(widths=WIDTHS, input_shape=(None, None, 3))
    x = np.random.default_rng(1).standard_normal((4, 32, 32, 3))
    for width in WIDTHS:
        model(x.astype("float32"), width=width, training=True)
    return model


def _layer_counts(model):
    counts = {}
    for layer in model.layers:
        name = type(layer).__name__
        counts[name] = counts.get(name, 0) + 1
    return counts


@pytest.mark.parametrize("width", WIDTHS)
def test_subnetwork_is_keras_applications_mobilenet_v2(backbone, width):
    plain = backbone.subnetwork(width, input_shape=(64, 64, 3))
    reference = keras.applications.MobileNetV2(
        alpha=width, include_top=False, weights=None, pooling="avg",
        input_shape=(64, 64, 3),
    )
    assert plain.count_params() == reference.count_params()
    ours, theirs = _layer_counts(plain), _layer_counts(reference)
    for kind in ("Conv2D", "DepthwiseConv2D", "BatchNormalization", "Add"):
        assert ours[kind] == theirs[kind], kind
    convs = [l for l in plain.layers if isinstance(l, keras.layers.Conv2D)]
    ref_convs = [
        l for l in reference.layers if type(l) is keras.layers.Conv2D
    ]
    assert [c.filters for c in convs] == [c.filters for c in ref_convs]


@pytest.mark.parametrize("width", WIDTHS)
def test_subnetwork_matches_slim_network(backbone, width, rng):
    x = rng.standard_normal((2, 48, 48, 3)).astype("float32")
    slim = backbone(x, width=width, training=False)
    assert slim.shape == (2, 1280)
    plain = backbone.subnetwork(width)
    np.testing.assert_allclose(plain(x, training=False), slim, atol=1e-5)


def test_profile_is_the_published_cost(backbone):
    # Sandler et al.: 300 M multiply-adds and 3.4 M parameters (with the
    # 1.28 M-parameter classifier) at 224x224, width 1.0.
    full = keras_slim.profile(backbone, 1.0, (224, 224, 3))
    assert full.flops == 299_494_272
    assert full.trainable_params + 1280 * 1000 + 1000 == pytest.approx(
        3.5e6, rel=0.02
    )
    for width in WIDTHS:
        cost = keras_slim.profile(backbone, width, (96, 96, 3))
        assert cost.params == backbone.subnetwork(width).count_params()


def test_a_plain_list_gets_the_mobilenet_channel_grid():
    model = SlimMobileNetV2(widths=[1.0, 0.35])
    assert model.widths.divisor == 8
    assert model.stem_conv.output_channels_at(0.35) == 16


def test_save_and_load(backbone, tmp_path, rng):
    path = str(tmp_path / "mobilenet.keras")
    backbone.save(path)
    loaded = keras.saving.load_model(path)
    x = rng.standard_normal((2, 32, 32, 3)).astype("float32")
    for width in WIDTHS:
        np.testing.assert_array_equal(
            loaded(x, width=width, training=False),
            backbone(x, width=width, training=False),
        )
