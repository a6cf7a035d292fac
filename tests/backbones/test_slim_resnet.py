import keras
import numpy as np
import pytest
import tensorflow as tf

import keras_slim
from keras_slim import Widths
from keras_slim.backbones import SlimResNet

WIDTHS = [1.0, 0.75, 0.5, 0.25]
STANDARD_LAYERS = (
    keras.layers.InputLayer,
    keras.layers.Conv2D,
    keras.layers.DepthwiseConv2D,
    keras.layers.BatchNormalization,
    keras.layers.Dense,
    keras.layers.ReLU,
    keras.layers.Add,
    keras.layers.MaxPooling2D,
    keras.layers.GlobalAveragePooling2D,
)


def small_resnet(**kwargs):
    kwargs.setdefault("widths", WIDTHS)
    kwargs.setdefault("base_width", 8)
    return SlimResNet(**kwargs)


def images(rng, n=4, size=16, channels=3):
    return rng.standard_normal((n, size, size, channels)).astype("float32")


def warm_up_statistics(backbone, x):
    """Training-mode passes so every width's BN statistics differ from init."""
    for width in backbone.widths.stat_widths:
        backbone(x, width=width, training=True)


@pytest.mark.parametrize("depth,expected_blocks",
                         [(10, 4), (18, 8), (34, 16), (50, 16)])
def test_depths_have_their_blocks_and_feature_sizes(depth, expected_blocks, rng):
    backbone = small_resnet(depth=depth)
    assert len(backbone.blocks) == expected_blocks
    expansion = 4 if depth == 50 else 1
    x = images(rng)
    for width in WIDTHS:
        features = backbone(x, width=width)
        expected = backbone.widths.channels(8 * 8 * expansion, width)
        assert features.shape == (4, expected)
        assert backbone.feature_dim(width) == expected


def test_default_width_is_the_largest(rng):
    backbone = small_resnet()
    x = images(rng)
    np.testing.assert_array_equal(
        backbone(x, training=False), backbone(x, width=1.0, training=False)
    )


def test_widths_share_the_leading_kernel_slice():
    backbone = small_resnet()
    kernel = backbone.stem_conv.kernel.numpy()
    plain = backbone.subnetwork(0.5).get_layer("stem_conv")
    np.testing.assert_array_equal(plain.kernel.numpy(), kernel[..., :4])


@pytest.mark.parametrize("stem", ["cifar", "imagenet"])
@pytest.mark.parametrize("depth", [18, 50])
def test_subnetwork_matches_slim_network_in_inference(stem, depth, rng):
    backbone = small_resnet(depth=depth, stem=stem)
    x = images(rng, size=32)
    warm_up_statistics(backbone, x)
    for width in WIDTHS:
        plain = backbone.subnetwork(width)
        for layer in plain.layers:
            assert isinstance(layer, STANDARD_LAYERS), type(layer)
        slim = backbone(x, width=width, training=False)
        np.testing.assert_allclose(plain(x, training=False), slim, atol=1e-5)


def test_subnetwork_holds_copies_not_references(rng):
    backbone = small_resnet()
    plain = backbone.subnetwork(0.5)
    x = images(rng)
    before = plain(x).numpy()
    for variable in backbone.stem_conv.weights:
        variable.assign(variable * 0.0)
    np.testing.assert_array_equal(plain(x).numpy(), before)


def test_each_width_uses_its_own_bn_statistics(rng):
    backbone = small_resnet()
    x = images(rng)
    stats = lambda w: backbone.stem_norm.norm_at(w).moving_mean.numpy().copy()
    before = {w: stats(w) for w in WIDTHS}
    backbone(x, width=0.5, training=True)
    for w in WIDTHS:
        changed = not np.array_equal(stats(w), before[w])
        assert changed == (w == 0.5), w


def test_zero_init_residual_starts_blocks_as_identity_branches():
    backbone = small_resnet(zero_init_residual=True)
    for block in backbone.blocks:
        last = block.norms[-1]
        for width in WIDTHS:
            assert not last.norm_at(width).gamma.numpy().any()
        assert block.norms[0].norm_at(1.0).gamma.numpy().all()


def test_save_and_load_round_trip_all_widths_and_states(tmp_path, rng):
    backbone = small_resnet(zero_init_residual=True)
    x = images(rng)
    warm_up_statistics(backbone, x)
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, SlimResNet)
    assert loaded.get_config() == backbone.get_config()
    for width in WIDTHS:
        np.testing.assert_array_equal(
            loaded(x, width=width, training=False),
            backbone(x, width=width, training=False),
        )


def test_predict_at_a_width_never_reuses_a_stale_width(rng):
    backbone = small_resnet()
    x = images(rng, n=8)
    full = backbone.predict(x, verbose=0)
    half = backbone.predict(x, width=0.5, verbose=0)
    again = backbone.predict(x, verbose=0)
    assert full.shape == (8, 64) and half.shape == (8, 32)
    np.testing.assert_allclose(half, backbone(x, width=0.5), atol=1e-5)
    np.testing.assert_array_equal(full, again)
    # The view's own cached predict_function stays on its width too.
    view = backbone.at_width(0.25)
    assert view.predict(x, verbose=0).shape == (8, 16)
    assert backbone.at_width(0.25) is view


def test_traces_are_bounded_by_distinct_widths(rng):
    backbone = small_resnet()
    x = tf.constant(images(rng))
    step = tf.function(lambda batch, width: backbone(batch, width=width))
    for width in rng.choice([1.0, 0.5, 0.25], size=20):
        step(x, float(width))
    assert step.experimental_get_tracing_count() == 3


def test_training_step_compiles_with_xla_at_each_width(rng):
    # Two widths: each is one XLA compilation of a ResNet-10 step, the
    # slowest thing in this file; the slicing at every width is checked
    # above, and the recipes' XLA step in tests/methods/test_slim_clr.py.
    backbone = small_resnet(widths=[1.0, 0.25], depth=10)
    x = tf.constant(images(rng))
    variables = backbone.trainable_variables

    def train_step(batch, width):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(backbone(batch, width=width, training=True))
        grads = tape.gradient(loss, variables)
        for var, grad in zip(variables, grads):
            if grad is not None:
                var.assign_sub(0.01 * grad)
        return loss

    eager_losses = []
    start = [v.numpy() for v in variables]
    widths = backbone.widths.values
    for width in widths:
        eager_losses.append(float(train_step(x, width)))
    for var, value in zip(variables, start):
        var.assign(value)
    compiled = tf.function(train_step, jit_compile=True)
    for width, expected in zip(widths, eager_losses):
        assert float(compiled(x, width)) == pytest.approx(expected, rel=1e-4)
    assert compiled.experimental_get_tracing_count() == len(widths)


def test_universally_slimmable_resnet_runs_any_width_in_training(rng):
    widths = Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.5])
    backbone = small_resnet(widths=widths)
    x = images(rng)
    assert backbone(x, width=0.6, training=True).shape == (4, 40)
    with pytest.raises(ValueError, match="no stored BatchNorm statistics"):
        backbone(x, width=0.6, training=False)
    for norm in _slim_norms(backbone):
        norm.reset_statistics()
    for _ in range(2):
        backbone(x, width=0.5, training=True, calibrate_bn=True)
    plain = backbone.subnetwork(0.5)
    np.testing.assert_allclose(
        plain(x, training=False),
        backbone(x, width=0.5, training=False),
        atol=1e-5,
    )


def _slim_norms(backbone):
    return [
        layer for layer in backbone._flatten_layers()
        if isinstance(layer, keras_slim.layers.SlimBatchNormalization)
    ]


def test_profile_matches_subnetwork_parameter_count():
    backbone = small_resnet(depth=50, stem="imagenet")
    for width in WIDTHS:
        cost = keras_slim.profile(backbone, width, (64, 64, 3))
        plain = backbone.subnetwork(width)
        assert cost.params == plain.count_params()
        trainable = plain.trainable_weights
        assert cost.trainable_params == sum(int(np.prod(v.shape)) for v in trainable)


def test_resnet10_is_one_basic_block_a_stage_in_every_form(rng):
    backbone = small_resnet(depth=10)
    x = images(rng)
    warm_up_statistics(backbone, x)
    plain = backbone.subnetwork(0.5)
    np.testing.assert_allclose(plain(x, training=False),
                               backbone(x, width=0.5, training=False),
                               atol=1e-5)
    # Stem, 4 blocks of two 3x3 convolutions, 3 projection shortcuts.
    assert sum(isinstance(layer, keras.layers.Conv2D)
               for layer in plain.layers) == 1 + 4 * 2 + 3
    assert keras_slim.profile(backbone, 0.5, (16, 16, 3)).params == \
        plain.count_params()


def test_profile_of_resnet50_is_the_published_cost():
    # He et al. report 3.8 GFLOPs counting a 2-D multiply-add once; the
    # v1.5 layout (stride on the 3x3) costs 4.09 G multiply-adds, 25.6 M
    # parameters with the 1000-way classifier, 23.5 M without.
    backbone = SlimResNet(depth=50, stem="imagenet")
    cost = keras_slim.profile(backbone, 1.0, (224, 224, 3))
    assert cost.flops == 4_087_136_256
    assert cost.trainable_params == 23_508_032
    quarter = keras_slim.profile(backbone, 0.25, (224, 224, 3))
    assert quarter.flops / cost.flops == pytest.approx(0.068, abs=0.001)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: small_resnet(depth=20), "depth"),
        (lambda: small_resnet(stem="tiny"), "stem"),
        (lambda: small_resnet(widths=[]), "empty"),
        (lambda: small_resnet(widths=[0.5, 1.0]), "sorted"),
        (lambda: small_resnet(base_width=0), "base_width"),
        (lambda: small_resnet(input_shape=(32, 32)), "input_shape"),
    ],
)
def test_bad_construction_is_refused(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_bad_calls_are_refused_with_clear_messages(rng):
    backbone = small_resnet()
    with pytest.raises(ValueError, match="not one of this network's widths"):
        backbone(images(rng), width=0.6)
    with pytest.raises(ValueError, match="batch of images"):
        backbone(images(rng)[0])
    with pytest.raises(ValueError, match="3-channel images, got 1"):
        backbone(images(rng, channels=1))
    with pytest.raises(ValueError, match="numeric images"):
        backbone(tf.constant([[[["a", "b", "c"]]]]))
    with pytest.raises(ValueError, match="Python number"):
        backbone(images(rng), width=tf.constant(0.5))


def test_integer_images_are_accepted(rng):
    backbone = small_resnet()
    pixels = rng.integers(0, 255, (2, 16, 16, 3)).astype("uint8")
    features = backbone(pixels, width=0.5, training=False)
    expected = backbone(pixels.astype("float32"), width=0.5, training=False)
    np.testing.assert_array_equal(features, expected)


def test_subnetwork_trains_like_a_plain_keras_model(rng):
    backbone = small_resnet()
    plain = backbone.subnetwork(0.5)
    x = images(rng)
    plain.compile(optimizer="sgd", loss="mse")
    history = plain.fit(x, np.zeros((4, 32)), epochs=2, verbose=0)
    assert np.isfinite(history.history["loss"]).all()
    assert history.history["loss"][1] < history.history["loss"][0]


def test_largest_width_below_one_is_refused_clearly():
    with pytest.raises(ValueError, match="largest width must be 1.0"):
        SlimResNet(widths=[0.5], base_width=4)


def test_symmetric_padding_pads_like_pytorch_and_keeps_the_shapes(rng):
    # Same output sizes and parameters as "same"; the plain sub-network holds
    # explicit ZeroPadding2D layers and computes the slim network.
    x = rng.random((2, 32, 32, 3)).astype("float32")
    norm = {"mean": [0.5, 0.4, 0.3], "std": [0.2, 0.25, 0.3]}
    sym = SlimResNet(depth=18, stem="imagenet", base_width=8,
                     widths=[1.0, 0.5], padding="symmetric",
                     input_normalization=norm)
    same = SlimResNet(depth=18, stem="imagenet", base_width=8,
                      widths=[1.0, 0.5])
    for width in (1.0, 0.5):
        assert sym(x, width=width).shape == same(x, width=width).shape
        cost_sym = keras_slim.profile(sym, width, input_shape=(32, 32, 3))
        cost_same = keras_slim.profile(same, width, input_shape=(32, 32, 3))
        assert cost_sym.params == cost_same.params
        assert cost_sym.flops == cost_same.flops
        plain = sym.subnetwork(width, input_shape=(32, 32, 3))
        assert any(isinstance(layer, keras.layers.ZeroPadding2D)
                   for layer in plain.layers)
        np.testing.assert_allclose(plain(x), sym(x, width=width), rtol=1e-5,
                                   atol=1e-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"padding": "reflect"}, "`padding` must be one of"),
    ({"input_normalization": {"mean": [0.5] * 3}}, "keys 'mean' and 'std'"),
    ({"input_normalization": {"mean": [0.5] * 2, "std": [1.0] * 2}},
     "one value per image channel"),
    ({"input_normalization": {"mean": [0.5] * 3, "std": [1.0, 0.0, 1.0]}},
     "must be positive"),
    ({"input_normalization": {"mean": "grey", "std": [1.0] * 3}},
     "list of numbers"),
])
def test_bad_padding_and_normalization_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        SlimResNet(depth=18, base_width=4, widths=[1.0, 0.5], **kwargs)
