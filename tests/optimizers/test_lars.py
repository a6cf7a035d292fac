"""Tests of keras_slim.optimizers.LARS against a numpy reference."""

import json
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_slim import Widths
from keras_slim.backbones import SlimResNet
from keras_slim.layers import SlimConv2D
from keras_slim.layers import SlimDense
from keras_slim.layers import SlimDepthwiseConv2D
from keras_slim.layers._roles import WeightGroup
from keras_slim.layers._roles import tag_groups
from keras_slim.optimizers import LARS
from keras_slim.optimizers import WarmupCosine
from keras_slim.optimizers import parameter_groups
from keras_slim.optimizers._lars_plan import LEGACY_DEFAULT_PATTERNS
from tests._two_cpus import two_cpu_result


# ------------------------------------------------------------------- helpers
def _untagged_variable(value, *scopes, name):
    """A keras.Variable whose path is `scope1/scope2/.../name`, untagged."""
    def make(remaining):
        if not remaining:
            return keras.Variable(np.asarray(value, "float32"), name=name)
        with keras.name_scope(remaining[0]):
            return make(remaining[1:])

    return make(list(scopes))


def _variable(value, *scopes, name):
    """`_untagged_variable`, tagged as a layer would tag that weight.

    A `bias`, `beta` or `gamma` as a no-decay weight, anything else as a
    kernel (decayed and adapted whatever its rank): the role is this test's
    statement, LARS never sees the name.
    """
    variable = _untagged_variable(value, *scopes, name=name)
    tag_groups([WeightGroup((variable,), name in ("bias", "beta", "gamma"))])
    return variable


def _reference_step(w, g, v, lr, momentum, weight_decay, eta, nesterov,
                    adapt=True, decay=True):
    """One LARS step in float64 numpy (SimCLR's formulation)."""
    w, g, v = (np.asarray(a, "float64") for a in (w, g, v))
    if decay:
        g = g + weight_decay * w
    trust = 1.0
    if adapt:
        w_norm, g_norm = np.linalg.norm(w), np.linalg.norm(g)
        if w_norm > 0 and g_norm > 0:
            trust = eta * w_norm / g_norm
    v = momentum * v + lr * trust * g
    update = momentum * v + lr * trust * g if nesterov else v
    return w - update, v


def _apply(optimizer, grads, variables):
    optimizer.apply_gradients(
        [(tf.constant(np.asarray(g, "float32")), v)
         for g, v in zip(grads, variables)]
    )


# ------------------------------------------------------------- hand-computed
@pytest.mark.parametrize("rate_in_velocity, velocity", [
    (False, 0.005),   # official: v = trust * g, w -= lr * v
    (True, 0.0005),   # v = lr * trust * g, w -= v
])
def test_single_step_hand_computed(rate_in_velocity, velocity):
    # ||w|| = 5, ||g|| = 1: trust = 0.001 * 5 / 1 = 0.005, step 0.1*0.005*g.
    kernel = _variable([3.0, 4.0], "dense", name="kernel")
    opt = LARS(learning_rate=0.1, momentum=0.9, eta=0.001,
               learning_rate_in_velocity=rate_in_velocity)
    _apply(opt, [[0.0, 1.0]], [kernel])
    np.testing.assert_allclose(kernel.numpy(), [3.0, 4.0 - 0.0005], rtol=1e-7)
    np.testing.assert_allclose(opt.velocities[0].numpy(), [0.0, velocity],
                               rtol=1e-6)


def test_single_step_with_decay_hand_computed():
    # g' = [0, 1] + 0.1 * [3, 4] = [0.3, 1.4]; ||g'|| = sqrt(2.05).
    kernel = _variable([3.0, 4.0], "dense", name="kernel")
    opt = LARS(learning_rate=0.1, momentum=0.9, weight_decay=0.1, eta=0.001)
    _apply(opt, [[0.0, 1.0]], [kernel])
    trust = 0.001 * 5.0 / np.sqrt(2.05)
    expected = np.array([3.0, 4.0]) - 0.1 * trust * np.array([0.3, 1.4])
    np.testing.assert_allclose(kernel.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("nesterov", [False, True])
def test_three_steps_match_numpy(rng, nesterov):
    w0 = rng.standard_normal((3, 4))
    grads = [rng.standard_normal((3, 4)) for _ in range(3)]
    kernel = _variable(w0, "stage1_block1_conv1", name="kernel")
    opt = LARS(learning_rate=0.5, momentum=0.8, weight_decay=0.01,
               eta=0.02, nesterov=nesterov)
    w, v = w0, np.zeros_like(w0)
    for g in grads:
        _apply(opt, [g], [kernel])
        w, v = _reference_step(w, g, v, 0.5, 0.8, 0.01, 0.02, nesterov)
        np.testing.assert_allclose(kernel.numpy(), w, rtol=1e-5, atol=1e-6)
    # The reference folds the (constant) rate into its velocity.
    np.testing.assert_allclose(0.5 * opt.velocities[0].numpy(), v,
                               rtol=1e-5, atol=1e-7)
    # Nesterov takes a different (larger) step than heavy-ball momentum.
    w_other = w0
    v_other = np.zeros_like(w0)
    for g in grads:
        w_other, v_other = _reference_step(
            w_other, g, v_other, 0.5, 0.8, 0.01, 0.02, not nesterov)
    assert np.abs(w - w_other).max() > 1e-4


# ----------------------------------------------------------------- exclusion
@pytest.mark.parametrize(
    "scopes, name",
    [
        (("dense",), "bias"),
        (("slim_res_net", "stem_bn", "bn_w0.5"), "gamma"),
        (("slim_res_net", "stage1_block1_bn1", "bn_w1"), "beta"),
    ],
)
def test_excluded_variable_is_plain_momentum_sgd(rng, scopes, name):
    w0 = rng.standard_normal(5)
    grads = [rng.standard_normal(5) for _ in range(2)]
    var = _variable(w0, *scopes, name=name)
    opt = LARS(learning_rate=0.3, momentum=0.9, weight_decay=0.5, eta=0.001)
    w, v = w0, np.zeros(5)
    for g in grads:
        _apply(opt, [g], [var])
        v = 0.9 * v + 0.3 * g  # no decay, trust ratio 1
        w = w - v
    np.testing.assert_allclose(var.numpy(), w, rtol=1e-5, atol=1e-6)
    assert not opt.uses_weight_decay(var)
    assert not opt.uses_adaptation(var)


def test_untagged_variables_follow_the_rank_rule_not_their_names():
    # Official rule (SlimCLR's / MoCo v3's LARS): decay and adapt p.ndim > 1.
    shapes = {
        ("net", "conv", "kernel"): (3, 3, 2, 4),
        ("net", "head", "kernel"): (4, 2),
        ("net", "head", "bias"): (2,),
        ("net", "stem_bn", "bn_w0.5", "gamma"): (4,),
        ("net", "renamed", "beta"): (4,),
        ("net", "cbnet", "kernel"): (4, 2),  # a `bn` in a word is nothing
        ("net", "bn", "gamma"): (2, 2),  # rank 2: decayed, names ignored
        ("net", "layer", "kernel"): (5,),  # rank 1: excluded, names ignored
        ("net", "temperature"): (),
    }
    variables = [_untagged_variable(np.ones(shape), *p[:-1], name=p[-1])
                 for p, shape in shapes.items()]
    opt = LARS(weight_decay=1e-4)
    opt.build(variables)
    for var, shape in zip(variables, shapes.values()):
        included = len(shape) > 1
        assert opt.uses_adaptation(var) is included, var.path
        assert opt.uses_weight_decay(var) is included, var.path
        assert opt.trust_ratio_group(var) == [var]
    assert not {"exclude_from_adaptation", "exclude_from_weight_decay"} & set(
        opt.get_config())


def test_variable_exclusions_are_independent(rng):
    # `head` kernel: decayed but not adapted; `proj` kernel: adapted, not
    # decayed.
    kernel = _variable(rng.standard_normal(4), "head", name="kernel")
    other = _variable(rng.standard_normal(4), "proj", name="kernel")
    opt = LARS(learning_rate=0.2, momentum=0.5, weight_decay=0.1, eta=0.01)
    opt.exclude_from_adaptation(var_list=[kernel])
    opt.exclude_from_weight_decay(var_list=[other])
    g_k, g_o = rng.standard_normal(4), rng.standard_normal(4)
    wk, wo = kernel.numpy(), other.numpy()
    _apply(opt, [g_k, g_o], [kernel, other])
    ek, _ = _reference_step(wk, g_k, 0 * wk, 0.2, 0.5, 0.1, 0.01, False,
                            adapt=False, decay=True)
    eo, _ = _reference_step(wo, g_o, 0 * wo, 0.2, 0.5, 0.1, 0.01, False,
                            adapt=True, decay=False)
    np.testing.assert_allclose(kernel.numpy(), ek, rtol=1e-5)
    np.testing.assert_allclose(other.numpy(), eo, rtol=1e-5)


def test_exclude_from_weight_decay_method(rng):
    kernel = _variable(rng.standard_normal(3), "proj", name="kernel")
    other = _variable(rng.standard_normal(3), "conv", name="kernel")
    opt = LARS(weight_decay=0.1)
    opt.exclude_from_weight_decay(var_list=[kernel])
    with pytest.raises(ValueError, match=r"reads no variable names.*var_list"):
        opt.exclude_from_weight_decay(var_names=["conv"])
    opt.build([kernel, other])
    assert not opt.uses_weight_decay(kernel)
    assert opt.uses_weight_decay(other)
    assert opt.uses_adaptation(kernel)
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_weight_decay(var_list=[other])
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_adaptation(var_list=[other])


def test_configs_saved_with_the_old_default_patterns_load():
    opt = LARS(weight_decay=1e-4, eta=0.01)
    old = dict(opt.get_config(),
               exclude_from_adaptation=list(LEGACY_DEFAULT_PATTERNS),
               exclude_from_weight_decay=list(LEGACY_DEFAULT_PATTERNS))
    assert LARS.from_config(old).get_config() == opt.get_config()
    again = keras.optimizers.deserialize(
        {"module": "keras_slim.optimizers.lars", "class_name": "LARS",
         "config": old, "registered_name": "keras_slim>LARS"})
    assert again.get_config() == opt.get_config()
    none = dict(opt.get_config(), exclude_from_adaptation=None)
    assert LARS.from_config(none).get_config() == opt.get_config()


@pytest.mark.parametrize("key, value", [
    ("exclude_from_adaptation", ["bias", "bn"]),
    ("exclude_from_weight_decay", []),
    ("exclude_from_weight_decay", [r"gamma$"]),
])
def test_old_custom_patterns_are_refused_with_the_new_way(key, value):
    config = dict(LARS().get_config(), **{key: value})
    with pytest.raises(ValueError, match=rf"no longer takes `{key}` patterns"
                                         rf".*{key}\(var_list="):
        LARS.from_config(config)
    with pytest.raises(ValueError, match="reads no names"):
        LARS(**{key: value})


# -------------------------------------------------------------- weight decay
def test_weight_decay_alone_shrinks_kernel_geometrically(rng):
    # g = 0: g' = wd * w, trust = eta / wd, update = lr * eta * w.
    w0 = rng.standard_normal(6)
    kernel = _variable(w0, "dense", name="kernel")
    bias = _variable(w0, "dense", name="bias")
    opt = LARS(learning_rate=0.5, momentum=0.0, weight_decay=1e-3, eta=0.01)
    for _ in range(3):
        _apply(opt, [np.zeros(6), np.zeros(6)], [kernel, bias])
    np.testing.assert_allclose(kernel.numpy(), w0 * (1 - 0.5 * 0.01) ** 3,
                               rtol=1e-5)
    # The bias is excluded: no decay, and a zero gradient.
    np.testing.assert_array_equal(bias.numpy(), w0.astype("float32"))
    # The Keras base class's decoupled decay is never switched on.
    assert opt.weight_decay is None
    assert opt.lars_weight_decay == 1e-3


def test_weight_decay_changes_the_update(rng):
    w0, g = rng.standard_normal(4), rng.standard_normal(4)
    results = []
    for wd in (0.0, 0.5):
        kernel = _variable(w0, "dense", name="kernel")
        opt = LARS(learning_rate=1.0, weight_decay=wd, eta=0.1)
        _apply(opt, [g], [kernel])
        results.append(kernel.numpy())
    expected, _ = _reference_step(w0, g, 0 * w0, 1.0, 0.9, 0.5, 0.1, False)
    np.testing.assert_allclose(results[1], expected, rtol=1e-5)
    assert np.abs(results[0] - results[1]).max() > 1e-3


# ------------------------------------------------------------------- safety
def test_zero_gradient_and_zero_weight_are_safe():
    zero_w = _variable(np.zeros(3), "a", name="kernel")
    zero_g = _variable([1.0, 2.0, 2.0], "b", name="kernel")
    both = _variable(np.zeros(3), "c", name="kernel")
    opt = LARS(learning_rate=0.1, momentum=0.9, eta=0.001)
    _apply(opt, [[1.0, -1.0, 2.0], np.zeros(3), np.zeros(3)],
           [zero_w, zero_g, both])
    # ||w|| = 0 -> trust 1: plain SGD step.
    np.testing.assert_allclose(zero_w.numpy(), [-0.1, 0.1, -0.2], rtol=1e-6)
    np.testing.assert_array_equal(zero_g.numpy(), [1.0, 2.0, 2.0])
    np.testing.assert_array_equal(both.numpy(), np.zeros(3))
    for v in opt.variables:
        assert np.all(np.isfinite(v.numpy()))


def test_sparse_gradient_matches_dense_reference():
    emb = keras.layers.Embedding(6, 3, name="embedding")
    emb.build((None,))
    w0 = emb.embeddings.numpy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(emb(tf.constant([1, 4, 4])))
    (grad,) = tape.gradient(loss, emb.trainable_variables)
    assert isinstance(grad, tf.IndexedSlices)
    opt = LARS(learning_rate=0.1, weight_decay=0.01, eta=0.01)
    opt.apply_gradients([(grad, emb.embeddings)])
    dense = np.zeros_like(w0)
    dense[1], dense[4] = 1.0, 2.0
    expected, _ = _reference_step(w0, dense, 0 * w0, 0.1, 0.9, 0.01, 0.01,
                                  False)
    np.testing.assert_allclose(emb.embeddings.numpy(), expected, rtol=1e-5)


def test_jit_compiled_apply_matches_eager(rng):
    w0 = rng.standard_normal((4, 3))
    g_values = [rng.standard_normal((4, 3)) for _ in range(2)] + [
        np.zeros((4, 3))]
    eager_var = _variable(w0, "dense", name="kernel")
    eager_bias = _variable(np.zeros(3), "dense", name="bias")
    jit_var = _variable(w0, "dense", name="kernel")
    jit_bias = _variable(np.zeros(3), "dense", name="bias")
    kwargs = dict(learning_rate=WarmupCosine(0.5, 10, warmup_steps=2),
                  weight_decay=1e-2, eta=0.05, nesterov=True)
    eager_opt, jit_opt = LARS(**kwargs), LARS(**kwargs)
    jit_opt.build([jit_var, jit_bias])

    @tf.function(jit_compile=True)
    def step(g, gb):
        jit_opt.apply_gradients([(g, jit_var), (gb, jit_bias)])

    for g in g_values:
        gb = g[0]
        _apply(eager_opt, [g, gb], [eager_var, eager_bias])
        step(tf.constant(g, "float32"), tf.constant(gb, "float32"))
    np.testing.assert_allclose(jit_var.numpy(), eager_var.numpy(), rtol=1e-5,
                               atol=1e-6)
    np.testing.assert_allclose(jit_bias.numpy(), eager_bias.numpy(),
                               rtol=1e-5, atol=1e-6)
    assert int(jit_opt.iterations.numpy()) == 3
    assert np.all(np.isfinite(jit_var.numpy()))


# --------------------------------------------------------------- model.fit
def _regression_data():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((256, 4)).astype("float32")
    w = np.array([[1.0], [-2.0], [0.5], [3.0]], "float32")
    return x, x @ w + 0.7


def test_fit_linear_regression_to_low_loss():
    x, y = _regression_data()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(
        optimizer=LARS(WarmupCosine(0.5, 200, warmup_steps=10), eta=0.01),
        loss="mse", jit_compile=True,
    )
    assert model.jit_compile  # the LARS step runs under XLA
    history = model.fit(x, y, batch_size=64, epochs=50, verbose=0)
    assert history.history["loss"][0] > 5.0
    assert history.history["loss"][-1] < 1e-4
    np.testing.assert_allclose(model.layers[0].bias.numpy(), [0.7], atol=5e-3)


# ----------------------------------------------------------- serialization
def test_config_round_trip():
    opt = LARS(learning_rate=WarmupCosine(0.3, 100, warmup_steps=5),
               momentum=0.8, weight_decay=1e-6, eta=0.002, nesterov=True,
               learning_rate_in_velocity=True, clipnorm=1.0, name="my_lars")
    config = opt.get_config()
    for key, value in {
        "momentum": 0.8, "weight_decay": 1e-6, "eta": 0.002,
        "nesterov": True, "learning_rate_in_velocity": True,
        "clipnorm": 1.0, "name": "my_lars",
    }.items():
        assert config[key] == value, key
    json.dumps(keras.optimizers.serialize(opt))  # JSON-able
    restored = LARS.from_config(config)
    assert restored.get_config() == config
    again = keras.optimizers.deserialize(keras.optimizers.serialize(opt))
    assert isinstance(again, LARS)
    assert again.get_config() == config
    assert isinstance(again._learning_rate, WarmupCosine)
    assert again.weight_decay is None


def test_keras_save_and_load_with_compile(tmp_path):
    x, y = _regression_data()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1)])
    model.compile(optimizer=LARS(WarmupCosine(0.5, 40, warmup_steps=2),
                                 weight_decay=1e-4, eta=0.01), loss="mse")
    model.fit(x, y, batch_size=64, epochs=2, verbose=0)
    path = tmp_path / "lars_model.keras"
    model.save(path)
    loaded = keras.saving.load_model(path, compile=True)
    opt = loaded.optimizer
    assert isinstance(opt, LARS)
    assert opt.get_config() == model.optimizer.get_config()
    assert int(opt.iterations.numpy()) == 8
    for a, b in zip(opt.velocities, model.optimizer.velocities):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    # Training continues identically from the restored state.
    model.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    loaded.fit(x, y, batch_size=64, epochs=1, shuffle=False, verbose=0)
    for a, b in zip(loaded.weights, model.weights):
        np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-6)


# --------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(momentum=1.0), r"`momentum` must be >= 0.0 and < 1.0"),
        (dict(momentum=-0.1), r"`momentum` must be >= 0.0"),
        (dict(weight_decay=-1e-4), r"`weight_decay` must be >= 0.0"),
        (dict(eta=0.0), r"`eta` must be > 0.0"),
        (dict(nesterov="yes"), r"`nesterov` must be a bool"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LARS(**kwargs)


# ------------------------------------------------- banded weights (one ratio)
def _banded_layer(kind):
    """A built slimmable layer of a width list, so its weights are banded."""
    if kind == "conv2d":
        layer = SlimConv2D(8, 3, widths=[1.0, 0.5, 0.25], use_bias=True)
        layer.build((None, 5, 5, 4))
        inputs = np.random.default_rng(1).standard_normal((2, 5, 5, 4))
    elif kind == "dense":  # fixed input: one banded axis, `kernel_0`, ...
        layer = SlimDense(6, widths=[1.0, 0.5], slice_input=False)
        layer.build((None, 3))
        inputs = np.random.default_rng(1).standard_normal((4, 3))
    else:  # depthwise: `depthwise_kernel_0`, `depthwise_kernel_1`
        layer = SlimDepthwiseConv2D(3, widths=[1.0, 0.5], use_bias=False)
        layer.build((None, 4, 4, 6))
        inputs = np.random.default_rng(1).standard_normal((2, 4, 4, 6))
    return layer, inputs.astype("float32")


def _band_gradients(layer, inputs, seed):
    """Real gradients of a random projection of the full-width output."""
    variables = layer.trainable_variables
    with tf.GradientTape() as tape:
        outputs = layer(inputs)
        target = np.random.default_rng(seed).standard_normal(outputs.shape)
        loss = tf.reduce_sum(outputs * target.astype("float32"))
    return tape.gradient(loss, variables)


def _assemble(banded, values):
    """The full-size numpy array of `banded` (a BandedWeight) from `values`.

    `values` maps each band variable's path to an array.
    """
    full = np.zeros(banded.shape)
    for index, variable in banded.bands.items():
        full[banded._region(index)] = values[variable.path]
    return full


def _full_numpy(banded):
    return keras.ops.convert_to_numpy(banded.full()).astype("float64")


@pytest.mark.parametrize("kind, nesterov", [
    ("conv2d", False), ("dense", True), ("depthwise", False)])
def test_banded_kernel_step_equals_one_variable_step(kind, nesterov):
    layer, inputs = _banded_layer(kind)
    kernel = layer._kernel
    assert len(kernel.bands) > 1
    w0 = _full_numpy(kernel)
    hyper = (0.5, 0.8, 0.05, 0.1, nesterov)  # lr, momentum, wd, eta
    kwargs = dict(zip(
        ("learning_rate", "momentum", "weight_decay", "eta", "nesterov"),
        hyper))
    banded_opt, single_opt = LARS(**kwargs), LARS(**kwargs)
    single = _variable(w0, "plain", name="kernel")
    w, v = w0, np.zeros_like(w0)
    for step, seed in enumerate((2, 3)):  # the velocity carries over
        grads = _band_gradients(layer, inputs, seed)
        band_grads = {var.path: g.numpy() for var, g in
                      zip(layer.trainable_variables, grads)}
        g_full = _assemble(kernel, band_grads)
        if step == 0:  # what one trust ratio per band would give
            per_band = _assemble(kernel, {
                var.path: _reference_step(var.numpy(), band_grads[var.path],
                                          0 * var.numpy(), *hyper)[0]
                for var in kernel.variables})
        banded_opt.apply_gradients(zip(grads, layer.trainable_variables))
        _apply(single_opt, [g_full], [single])
        w, v = _reference_step(w, g_full, v, *hyper)
        np.testing.assert_allclose(_full_numpy(kernel), w, rtol=1e-5,
                                   atol=1e-7)
        np.testing.assert_allclose(_full_numpy(kernel), single.numpy(),
                                   rtol=1e-5, atol=1e-7)
        if step == 0:  # one ratio per band is measurably different
            assert np.abs(per_band - w).max() > 0.05 * np.abs(w - w0).max()
    velocities = {var.path: banded_opt.velocities[
        banded_opt._get_variable_index(var)].numpy()
        for var in kernel.variables}
    np.testing.assert_allclose(_assemble(kernel, velocities),
                               single_opt.velocities[0].numpy(), rtol=1e-5,
                               atol=1e-8)
    group = banded_opt.trust_ratio_group(kernel.variables[0])
    assert [g.path for g in group] == [b.path for b in kernel.variables]


def test_excluded_bands_are_plain_momentum_sgd():
    layer, inputs = _banded_layer("conv2d")
    bias = layer._bias
    b0 = _full_numpy(bias)
    opt = LARS(learning_rate=0.5, momentum=0.8, weight_decay=0.05, eta=0.1)
    grads = _band_gradients(layer, inputs, 2)
    band_grads = {var.path: g.numpy() for var, g in
                  zip(layer.trainable_variables, grads)}
    opt.apply_gradients(zip(grads, layer.trainable_variables))
    assert len(bias.variables) == 3
    for var in bias.variables:
        assert not opt.uses_adaptation(var)
        assert not opt.uses_weight_decay(var)
    # No decay, trust ratio 1: w - lr * g, band by band and assembled.
    np.testing.assert_allclose(
        _full_numpy(bias), b0 - 0.5 * _assemble(bias, band_grads),
        rtol=1e-6, atol=1e-7)


def test_band_without_gradient_is_kept_but_counts_in_weight_norm(rng):
    # Widths [1, 0.5] of 6 units: bands `kernel_0` (3 units), `kernel_1`.
    layer, _ = _banded_layer("dense")
    band0, band1 = layer._kernel.variables
    w0, w1 = band0.numpy(), band1.numpy()
    g0 = rng.standard_normal(w0.shape)
    opt = LARS(learning_rate=0.5, momentum=0.9, weight_decay=0.05, eta=0.1)
    opt.build(layer.trainable_variables)
    _apply(opt, [g0], [band0])  # a step at width 0.5 only
    coupled = g0 + 0.05 * w0
    full_w_norm = np.sqrt(np.sum(w0.astype("float64") ** 2) + np.sum(
        w1.astype("float64") ** 2))
    trust = 0.1 * full_w_norm / np.linalg.norm(coupled)
    np.testing.assert_allclose(band0.numpy(), w0 - 0.5 * trust * coupled,
                               rtol=1e-5)
    np.testing.assert_array_equal(band1.numpy(), w1)


def test_grouping_comes_from_the_layers_not_from_names():
    # Band-like names mean nothing: untagged `kernel_0`, `kernel_1` are two
    # weights; the bands a layer tagged are one, whatever their names.
    look_alike = [_untagged_variable(np.ones((2, 2)), "net", "conv",
                                     name=f"kernel_{i}") for i in (0, 1)]
    layer, _ = _banded_layer("conv2d")
    opt = LARS()
    opt.build(look_alike + layer.trainable_variables)
    for variable in look_alike:
        assert opt.trust_ratio_group(variable) == [variable]
    for banded in (layer._kernel, layer._bias):
        for variable in banded.variables:
            assert opt.trust_ratio_group(variable) == banded.variables
    groups = parameter_groups(layer)
    assert [list(g) for g in groups.trust_groups] == [
        layer._kernel.variables, layer._bias.variables]
    assert list(groups.no_decay) == layer._bias.variables


def test_a_group_is_restricted_to_the_variables_the_optimizer_has():
    layer, _ = _banded_layer("dense")
    band0, band1 = layer._kernel.variables
    opt = LARS()
    opt.build([band0])
    assert opt.trust_ratio_group(band0) == [band0]


def test_width_range_layer_is_not_banded():
    layer = SlimConv2D(8, 3, widths=Widths(min_width=0.25, max_width=1.0))
    layer.build((None, 5, 5, 4))
    (kernel,) = layer.trainable_variables
    opt = LARS()
    opt.build(layer.trainable_variables)
    assert opt.trust_ratio_group(kernel) == [kernel]


def test_excluding_only_some_bands_is_an_error():
    layer, _ = _banded_layer("dense")
    band0, band1 = layer._kernel.variables
    opt = LARS()
    opt.exclude_from_adaptation(var_list=[band1])
    with pytest.raises(ValueError, match=r"bands of one weight.*"
                                         r"exclude_from_adaptation"):
        opt.build(layer.trainable_variables)
    opt = LARS(weight_decay=0.1)
    opt.exclude_from_weight_decay(var_list=[band0])
    with pytest.raises(ValueError, match="exclude_from_weight_decay"):
        opt.build(layer.trainable_variables)
    # Excluding the whole weight (every band) is fine.
    opt = LARS()
    opt.exclude_from_adaptation(var_list=[band0, band1])
    opt.build(layer.trainable_variables)
    assert opt.trust_ratio_group(band0) == [band0, band1]
    assert not opt.uses_adaptation(band0) and not opt.uses_adaptation(band1)


def test_update_step_refuses_a_band_alone():
    layer, _ = _banded_layer("dense")
    opt = LARS(learning_rate=0.1)
    opt.build(layer.trainable_variables)
    band = layer._kernel.variables[0]
    with pytest.raises(ValueError, match="one band of a banded weight"):
        opt.update_step(tf.zeros(band.shape), band, 0.1)
    # A variable that is a weight of its own still works.
    plain = _variable([3.0, 4.0], "dense", name="kernel")
    opt2 = LARS(learning_rate=0.1, eta=0.001)
    opt2.build([plain])
    opt2.update_step(tf.constant([0.0, 1.0]), plain, 0.1)
    np.testing.assert_allclose(plain.numpy(), [3.0, 4.0 - 0.0005], rtol=1e-7)


def test_banded_step_under_jit_compile_matches_eager():
    eager_layer, inputs = _banded_layer("conv2d")
    jit_layer, _ = _banded_layer("conv2d")
    for a, b in zip(jit_layer.trainable_variables,
                    eager_layer.trainable_variables):
        a.assign(b)
    kwargs = dict(learning_rate=0.5, weight_decay=0.05, eta=0.1,
                  nesterov=True)
    eager_opt, jit_opt = LARS(**kwargs), LARS(**kwargs)
    jit_opt.build(jit_layer.trainable_variables)

    @tf.function(jit_compile=True)
    def step(grads):
        jit_opt.apply_gradients(zip(grads, jit_layer.trainable_variables))

    for seed in (2, 3):
        grads = _band_gradients(eager_layer, inputs, seed)
        eager_opt.apply_gradients(zip(grads, eager_layer.trainable_variables))
        step(grads)
    np.testing.assert_allclose(_full_numpy(jit_layer._kernel),
                               _full_numpy(eager_layer._kernel), rtol=1e-5,
                               atol=1e-7)
    assert int(jit_opt.iterations.numpy()) == 2


def test_config_round_trip_keeps_band_grouping():
    layer, _ = _banded_layer("dense")
    opt = LARS(weight_decay=1e-4, eta=0.01)
    config = opt.get_config()
    # No constructor argument: the grouping comes from the layers' tags.
    assert set(config) == set(keras.optimizers.SGD().get_config()) | {
        "eta", "learning_rate_in_velocity"}
    restored = LARS.from_config(config)
    assert restored.get_config() == config
    restored.build(layer.trainable_variables)
    band = layer._kernel.variables[0]
    assert restored.trust_ratio_group(band) == layer._kernel.variables


def test_every_banded_weight_of_a_backbone_is_one_group():
    # The stem conv has one banded axis (`kernel_0`...), the others two.
    net = SlimResNet(depth=18, stem="cifar", base_width=8,
                     widths=[1.0, 0.5, 0.25])
    opt = LARS(weight_decay=1e-4)
    opt.build(net.trainable_variables)
    expected = {}
    for layer in net._flatten_layers():
        for banded in (getattr(layer, "_kernel", None),
                       getattr(layer, "_bias", None)):
            if hasattr(banded, "bands"):
                paths = [v.path for v in banded.variables]
                expected.update({p: paths for p in paths})
    assert sum(len(g) > 1 for g in expected.values()) > 20
    for variable in net.trainable_variables:
        group = [v.path for v in opt.trust_ratio_group(variable)]
        assert group == expected.get(variable.path, [variable.path])


# ------------------------------------------------------ MirroredStrategy
# Logical CPU devices must be set before TensorFlow starts: one script on
# two logical CPUs (`tests/_two_cpus.py`) runs every scenario (a plain and a banded model, each trained under a
# 2-replica MirroredStrategy and on one device) and prints the weights.
DISTRIBUTED = textwrap.dedent(
    """
    import keras, numpy as np
    from keras_slim.layers import SlimDense
    from keras_slim.optimizers import LARS

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]]) + 0.7).astype("float32")
    xb = rng.standard_normal((32, 6)).astype("float32")
    yb = rng.standard_normal((32, 2)).astype("float32")
    widths = [1.0, 0.5, 0.25]

    def plain_model():
        return keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                                 keras.layers.Dense(1)])

    def banded_model():
        return keras.Sequential([
            keras.Input((6,)),
            SlimDense(8, widths, slice_input=False, name="hidden"),
            SlimDense(8, widths, name="middle"),
            SlimDense(2, widths, slice_output=False, name="out")])

    def train(strategy, make_model, optimizer, data, epochs):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = make_model()
            model.compile(optimizer=optimizer(), loss="mse")
        before = [w.numpy().tolist() for w in model.trainable_weights]
        model.fit(*data, batch_size=16, epochs=epochs, shuffle=False,
                  verbose=0)
        return {
            "before": before,
            "after": [w.numpy().tolist() for w in model.trainable_weights],
            "groups": [len(model.optimizer.trust_ratio_group(w))
                       for w in model.trainable_weights],
            "replicas": strategy.num_replicas_in_sync,
        }

    scenarios = {
        "plain": (plain_model,
                  lambda: LARS(0.5, weight_decay=1e-3, eta=0.01), (x, y), 2),
        # Two steps of a global batch of 16 (8 per replica when mirrored).
        "banded": (banded_model,
                   lambda: LARS(0.5, weight_decay=1e-2, eta=0.1), (xb, yb),
                   1),
    }
    mirrored = strategy  # the process's one MirroredStrategy
    out = {}
    for name, args in scenarios.items():
        out[name] = {
            "mirrored": train(mirrored, *args),
            "single": train(tf.distribute.get_strategy(), *args),
        }
    print("RESULT" + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def distributed_results():
    return two_cpu_result(DISTRIBUTED, timeout=300)


def test_mirrored_strategy_matches_single_device(distributed_results):
    out = distributed_results["plain"]
    mirrored, single = out["mirrored"], out["single"]
    assert (mirrored["replicas"], single["replicas"]) == (2, 1)
    assert len(mirrored["after"]) == len(single["after"]) == 4
    for m, s in zip(mirrored["after"], single["after"]):
        np.testing.assert_allclose(m, s, rtol=1e-4, atol=1e-5)


def test_mirrored_strategy_banded_step_matches_single_device(
        distributed_results):
    out = distributed_results["banded"]
    mirrored, single = out["mirrored"], out["single"]
    assert (mirrored["replicas"], single["replicas"]) == (2, 1)
    # hidden: 3 kernel + 3 bias bands; middle: 9 + 3; out: 3 + 1 bias.
    assert mirrored["groups"] == single["groups"] == (
        [3] * 6 + [9] * 9 + [3] * 3 + [3] * 3 + [1])
    for m0, s0 in zip(mirrored["before"], single["before"]):
        np.testing.assert_array_equal(m0, s0)
    for m, s, w in zip(mirrored["after"], single["after"], single["before"]):
        moved = np.abs(np.subtract(s, w)).max()
        assert moved > 1e-3
        # Trust ratios from local (not all-reduced) gradients would differ
        # by about `moved`; float noise is ~1e-7.
        np.testing.assert_allclose(m, s, rtol=0, atol=1e-5 * max(moved, 1))
