"""Tests of keras_slim.optimizers.LARS against a numpy reference."""

import json
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_slim.optimizers import LARS
from keras_slim.optimizers import WarmupCosine
from keras_slim.optimizers.lars import DEFAULT_EXCLUDE_PATTERNS


# ------------------------------------------------------------------- helpers
def _variable(value, *scopes, name):
    """A keras.Variable whose path is `scope1/scope2/.../name`."""
    def make(remaining):
        if not remaining:
            return keras.Variable(np.asarray(value, "float32"), name=name)
        with keras.name_scope(remaining[0]):
            return make(remaining[1:])

    return make(list(scopes))


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
def test_single_step_hand_computed():
    # ||w|| = 5, ||g|| = 1: trust = 0.001 * 5 / 1 = 0.005, v = 0.1*0.005*g.
    kernel = _variable([3.0, 4.0], "dense", name="kernel")
    opt = LARS(learning_rate=0.1, momentum=0.9, eta=0.001)
    _apply(opt, [[0.0, 1.0]], [kernel])
    np.testing.assert_allclose(kernel.numpy(), [3.0, 4.0 - 0.0005], rtol=1e-7)
    np.testing.assert_allclose(opt.velocities[0].numpy(), [0.0, 0.0005])


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
    np.testing.assert_allclose(opt.velocities[0].numpy(), v, rtol=1e-5,
                               atol=1e-7)
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


def test_default_patterns_on_keras_slim_paths():
    paths = {
        ("slim_res_net", "stem_bn", "bn_w0.5", "gamma"): False,
        ("slim_res_net", "stage1_block1_bn1", "bn_w1", "beta"): False,
        ("slim_res_net", "stage2_block1_proj_bn", "bn_w1", "gamma"): False,
        ("batch_normalization", "gamma"): False,
        ("head", "bias"): False,
        ("slim_res_net", "stage1_block1_conv1", "kernel"): True,
        ("slim_res_net", "stage1_block1_conv1", "kernel_0_1"): True,
        ("slim_res_net", "stem_conv", "kernel"): True,
        ("head", "kernel"): True,
        ("cbnet", "kernel"): True,  # a `bn` inside a word is not BatchNorm
    }
    variables = [_variable(np.ones(2), *p[:-1], name=p[-1]) for p in paths]
    opt = LARS(weight_decay=1e-4)
    opt.build(variables)
    for var, included in zip(variables, paths.values()):
        assert opt.uses_adaptation(var) is included, var.path
        assert opt.uses_weight_decay(var) is included, var.path
    assert opt.get_config()["exclude_from_adaptation"] == list(
        DEFAULT_EXCLUDE_PATTERNS)


def test_custom_exclusion_lists_are_independent(rng):
    # `head` kernel: decayed but not adapted; `bias`: adapted but not decayed.
    kernel = _variable(rng.standard_normal(4), "head", name="kernel")
    bias = _variable(rng.standard_normal(4), "head", name="bias")
    opt = LARS(learning_rate=0.2, momentum=0.5, weight_decay=0.1, eta=0.01,
               exclude_from_adaptation=["head/kernel"],
               exclude_from_weight_decay=[r"bias$"])
    g_k, g_b = rng.standard_normal(4), rng.standard_normal(4)
    wk, wb = kernel.numpy(), bias.numpy()
    _apply(opt, [g_k, g_b], [kernel, bias])
    ek, _ = _reference_step(wk, g_k, 0 * wk, 0.2, 0.5, 0.1, 0.01, False,
                            adapt=False, decay=True)
    eb, _ = _reference_step(wb, g_b, 0 * wb, 0.2, 0.5, 0.1, 0.01, False,
                            adapt=True, decay=False)
    np.testing.assert_allclose(kernel.numpy(), ek, rtol=1e-5)
    np.testing.assert_allclose(bias.numpy(), eb, rtol=1e-5)


def test_empty_exclusion_lists_adapt_everything(rng):
    bias = _variable(rng.standard_normal(3), "dense", name="bias")
    opt = LARS(exclude_from_adaptation=[], exclude_from_weight_decay=[],
               weight_decay=0.1)
    opt.build([bias])
    assert opt.uses_adaptation(bias) and opt.uses_weight_decay(bias)


def test_exclude_from_weight_decay_method(rng):
    kernel = _variable(rng.standard_normal(3), "proj", name="kernel")
    other = _variable(rng.standard_normal(3), "conv", name="kernel")
    opt = LARS(weight_decay=0.1)
    opt.exclude_from_weight_decay(var_names=["proj"])
    opt.build([kernel, other])
    assert not opt.uses_weight_decay(kernel)
    assert opt.uses_weight_decay(other)
    assert opt.uses_adaptation(kernel)
    with pytest.raises(ValueError, match="before the optimizer is built"):
        opt.exclude_from_weight_decay(var_names=["conv"])


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
               exclude_from_adaptation=["bias", "bn"],
               exclude_from_weight_decay=[r"gamma$"], clipnorm=1.0,
               name="my_lars")
    config = opt.get_config()
    for key, value in {
        "momentum": 0.8, "weight_decay": 1e-6, "eta": 0.002,
        "nesterov": True, "exclude_from_adaptation": ["bias", "bn"],
        "exclude_from_weight_decay": [r"gamma$"], "clipnorm": 1.0,
        "name": "my_lars",
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
        (dict(exclude_from_adaptation=["("]), r"invalid regex"),
        (dict(exclude_from_weight_decay=[3]), r"must contain only strings"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        LARS(**kwargs)


# ------------------------------------------------------ MirroredStrategy
DISTRIBUTED = textwrap.dedent(
    """
    import json, os
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras, numpy as np
    from keras_slim.optimizers import LARS

    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 4)).astype("float32")
    y = (x @ np.array([[1.0], [-2.0], [0.5], [3.0]]) + 0.7).astype("float32")

    def train(strategy):
        replicas.append(strategy.num_replicas_in_sync)
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3),
                                      keras.layers.Dense(1)])
            model.compile(optimizer=LARS(0.5, weight_decay=1e-3, eta=0.01),
                          loss="mse")
        model.fit(x, y, batch_size=16, epochs=2, shuffle=False, verbose=0)
        return [w.numpy().tolist() for w in model.trainable_weights]

    replicas = []
    mirrored = train(tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
    single = train(tf.distribute.get_strategy())
    print("RESULT" + json.dumps(
        {"mirrored": mirrored, "single": single, "replicas": replicas}))
    """
)


def test_mirrored_strategy_matches_single_device():
    proc = subprocess.run([sys.executable, "-c", DISTRIBUTED],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    line = [l for l in proc.stdout.splitlines() if l.startswith("RESULT")][0]
    out = json.loads(line[len("RESULT"):])
    assert out["replicas"] == [2, 1]
    assert len(out["mirrored"]) == len(out["single"]) == 4
    for m, s in zip(out["mirrored"], out["single"]):
        np.testing.assert_allclose(m, s, rtol=1e-4, atol=1e-5)
