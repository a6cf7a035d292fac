"""Tests of keras_slim.losses against plain numpy references."""

import textwrap

import numpy as np
import pytest
import tensorflow as tf

from keras_slim import losses
from tests._two_cpus import two_cpu_result

ATOL = 1e-5


# --------------------------------------------------------------------------
# numpy references
# --------------------------------------------------------------------------


def np_normalize(x):
    x = np.asarray(x, dtype=np.float64)
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def np_log_softmax(x):
    x = np.asarray(x, dtype=np.float64)
    m = x.max(axis=-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=-1, keepdims=True))


def np_nt_xent(z1, z2, temperature):
    """Per-example NT-Xent over the 2N x 2N similarity matrix (paper form).

    Returns a vector of 2N losses: first the view-1 anchors, then view-2.
    """
    z = np_normalize(np.concatenate([z1, z2]))
    n = len(z1)
    sim = z @ z.T / temperature
    losses_ = []
    for i in range(2 * n):
        positive = (i + n) % (2 * n)
        others = [j for j in range(2 * n) if j != i]
        denominator = np.log(np.exp(sim[i, others]).sum())
        losses_.append(denominator - sim[i, positive])
    return np.array(losses_)


def np_group_regularization(kernel, strength, alpha, group_channels):
    """`group_channels`: explicit list of channel lists, one per group."""
    kernel = np.asarray(kernel, dtype=np.float64)
    total = 0.0
    for i, channels in enumerate(group_channels):
        squares = (kernel[..., channels] ** 2).sum()
        total += strength * (1 - alpha * i) * squares
    return total


def _np(x):
    return np.asarray(x, dtype=np.float64)


# --------------------------------------------------------------------------
# l2_normalize
# --------------------------------------------------------------------------


def test_l2_normalize_matches_numpy_and_zero_vector_stays_finite(rng):
    x = rng.standard_normal((5, 7)).astype("float32")
    np.testing.assert_allclose(
        _np(losses.l2_normalize(x)), np_normalize(x), atol=ATOL)
    # Other axis.
    np.testing.assert_allclose(
        _np(losses.l2_normalize(x, axis=0)),
        np_normalize(x.T).T, atol=ATOL)
    zero = losses.l2_normalize(np.zeros((2, 3), "float32"))
    np.testing.assert_array_equal(_np(zero), 0.0)


# --------------------------------------------------------------------------
# MoCo
# --------------------------------------------------------------------------


def test_moco_logits_match_numpy(rng):
    q = rng.standard_normal((6, 8)).astype("float32") * 3.0
    k = rng.standard_normal((6, 8)).astype("float32") * 0.5
    queue = np_normalize(rng.standard_normal((11, 8))).astype("float32")
    logits = _np(losses.moco_logits(q, k, queue, 0.2))
    qn, kn = np_normalize(q), np_normalize(k)
    expected = np.concatenate(
        [(qn * kn).sum(-1, keepdims=True), qn @ queue.T], axis=1) / 0.2
    assert logits.shape == (6, 12)
    np.testing.assert_allclose(logits, expected, atol=1e-4)

    loss = _np(losses.contrastive_loss(logits))
    expected_loss = -np_log_softmax(expected)[:, 0]
    np.testing.assert_allclose(loss, expected_loss, atol=ATOL)


def test_moco_loss_is_log_one_plus_queue_at_huge_temperature(rng):
    queue_size = 63
    q = rng.standard_normal((16, 32)).astype("float32")
    k = rng.standard_normal((16, 32)).astype("float32")
    queue = np_normalize(rng.standard_normal((queue_size, 32)))
    loss = _np(losses.contrastive_loss(losses.moco_logits(q, k, queue, 1e6)))
    np.testing.assert_allclose(loss, np.log(1 + queue_size), atol=ATOL)
    # At a normal temperature random keys give a different loss.
    loss = _np(losses.contrastive_loss(losses.moco_logits(q, k, queue, 0.1)))
    assert np.abs(loss - np.log(1 + queue_size)).max() > 0.1


def test_moco_perfect_positives_have_accuracy_one_and_small_loss(rng):
    q = rng.standard_normal((16, 32)).astype("float32")
    queue = np_normalize(rng.standard_normal((128, 32)))
    # The key is the query (scaled: normalization happens inside).
    logits = losses.moco_logits(q, 4.0 * q, queue, 0.05)
    np.testing.assert_array_equal(_np(losses.contrastive_accuracy(logits)), 1)
    assert _np(losses.contrastive_loss(logits)).max() < 1e-3
    # A wrong positive (key = -query) is never top-1.
    logits = losses.moco_logits(q, -q, queue, 0.05)
    np.testing.assert_array_equal(_np(losses.contrastive_accuracy(logits)), 0)


def test_moco_logits_stop_gradient_into_key_and_queue(rng):
    q = tf.constant(rng.standard_normal((4, 8)), tf.float32)
    k = tf.constant(rng.standard_normal((4, 8)), tf.float32)
    queue = tf.constant(np_normalize(rng.standard_normal((5, 8))), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([q, k, queue])
        loss = tf.reduce_sum(
            losses.contrastive_loss(losses.moco_logits(q, k, queue, 0.2)))
    gq, gk, gqueue = tape.gradient(loss, [q, k, queue])
    assert np.abs(gq.numpy()).max() > 1e-3
    assert gk is None and gqueue is None


# --------------------------------------------------------------------------
# contrastive_loss / accuracy
# --------------------------------------------------------------------------


def test_contrastive_loss_and_accuracy_match_numpy(rng):
    logits = rng.standard_normal((9, 5)).astype("float32") * 4
    labels = rng.integers(0, 5, size=9)
    loss = _np(losses.contrastive_loss(logits, labels))
    expected = -np_log_softmax(logits)[np.arange(9), labels]
    np.testing.assert_allclose(loss, expected, atol=ATOL)
    acc = _np(losses.contrastive_accuracy(logits, labels))
    np.testing.assert_array_equal(acc, logits.argmax(-1) == labels)
    assert 0 < acc.sum() < 9  # the random case exercises both outcomes
    # Default labels are 0.
    np.testing.assert_allclose(
        _np(losses.contrastive_loss(logits)),
        -np_log_softmax(logits)[:, 0], atol=ATOL)
    np.testing.assert_array_equal(
        _np(losses.contrastive_accuracy(logits)), logits.argmax(-1) == 0)


def test_contrastive_loss_is_stable_for_large_logits():
    logits = np.array([[1000.0, 0.0, -1000.0], [0.0, 1000.0, 0.0]], "float32")
    loss = _np(losses.contrastive_loss(logits))
    np.testing.assert_allclose(loss, [0.0, 1000.0], atol=ATOL)


# --------------------------------------------------------------------------
# SimCLR
# --------------------------------------------------------------------------


def test_simclr_logits_layout_on_one_device(rng):
    z1 = rng.standard_normal((5, 6)).astype("float32")
    z2 = rng.standard_normal((5, 6)).astype("float32")
    logits_a, logits_b, labels = losses.simclr_logits(z1, z2, 0.5)
    logits_a, logits_b = _np(logits_a), _np(logits_b)
    assert logits_a.shape == logits_b.shape == (5, 10)
    np.testing.assert_array_equal(labels.numpy(), np.arange(5))
    n1, n2 = np_normalize(z1), np_normalize(z2)
    np.testing.assert_allclose(logits_a[:, :5], n1 @ n2.T / 0.5, atol=ATOL)
    np.testing.assert_allclose(logits_b[:, :5], n2 @ n1.T / 0.5, atol=ATOL)
    off = ~np.eye(5, dtype=bool)
    np.testing.assert_allclose(
        logits_a[:, 5:][off], (n1 @ n1.T / 0.5)[off], atol=ATOL)
    np.testing.assert_allclose(
        logits_b[:, 5:][off], (n2 @ n2.T / 0.5)[off], atol=ATOL)
    assert (np.diag(logits_a[:, 5:]) <= -1e8).all()
    assert (np.diag(logits_b[:, 5:]) <= -1e8).all()


def test_simclr_loss_matches_paper_nt_xent(rng):
    z1 = rng.standard_normal((8, 16)).astype("float32")
    z2 = (z1 + 0.7 * rng.standard_normal((8, 16))).astype("float32")
    for temperature in (0.1, 0.5):
        logits_a, logits_b, labels = losses.simclr_logits(z1, z2, temperature)
        got = np.concatenate([
            _np(losses.contrastive_loss(logits_a, labels)),
            _np(losses.contrastive_loss(logits_b, labels)),
        ])
        np.testing.assert_allclose(
            got, np_nt_xent(z1, z2, temperature), atol=1e-4)
    # Local-only negatives are the same on one device.
    a, b, lab = losses.simclr_logits(z1, z2, 0.5, gather_across_replicas=False)
    a2, b2, _ = losses.simclr_logits(z1, z2, 0.5)
    np.testing.assert_allclose(_np(a), _np(a2), atol=0)
    np.testing.assert_array_equal(lab.numpy(), np.arange(8))


def test_simclr_perfect_positives_have_accuracy_one(rng):
    z = rng.standard_normal((16, 64)).astype("float32")
    logits_a, logits_b, labels = losses.simclr_logits(z, 2.0 * z, 0.05)
    for logits in (logits_a, logits_b):
        acc = _np(losses.contrastive_accuracy(logits, labels))
        np.testing.assert_array_equal(acc, 1.0)


DISTRIBUTED_SCRIPT = textwrap.dedent(
    """
    import numpy as np
    from keras_slim import losses

    rng = np.random.default_rng(0)
    global_batch, dim, temperature = 8, 16, 0.2
    z1 = rng.standard_normal((global_batch, dim)).astype("float32")
    z2 = (z1 + 0.8 * rng.standard_normal((global_batch, dim))).astype(
        "float32")

    def step(a, b, gather=True):
        with tf.GradientTape() as tape:
            tape.watch([a, b])
            la, lb, labels = losses.simclr_logits(
                a, b, temperature, gather_across_replicas=gather)
            per_example = (losses.contrastive_loss(la, labels)
                           + losses.contrastive_loss(lb, labels))
            loss = tf.reduce_sum(per_example) / global_batch
        ga, gb = tape.gradient(loss, [a, b])
        return per_example, labels, tf.shape(la)[1], ga, gb

    out = {}
    local = global_batch // 2
    d1 = strategy.experimental_distribute_values_from_function(
        lambda ctx: z1[ctx.replica_id_in_sync_group * local:
                       (ctx.replica_id_in_sync_group + 1) * local])
    d2 = strategy.experimental_distribute_values_from_function(
        lambda ctx: z2[ctx.replica_id_in_sync_group * local:
                       (ctx.replica_id_in_sync_group + 1) * local])
    for gather in (True, False):
        fn = tf.function(lambda a, b: step(a, b, gather))
        result = strategy.run(fn, args=(d1, d2))
        parts = [strategy.experimental_local_results(r) for r in result]
        key = "gather" if gather else "local"
        out[key] = {
            "loss": np.concatenate([p.numpy() for p in parts[0]]).tolist(),
            "labels": np.concatenate([p.numpy() for p in parts[1]]).tolist(),
            "columns": [int(p.numpy()) for p in parts[2]],
            "grad1": np.concatenate([p.numpy() for p in parts[3]]).tolist(),
            "grad2": np.concatenate([p.numpy() for p in parts[4]]).tolist(),
        }
    # One device, whole batch, default replica context.
    single = tf.function(step)(tf.constant(z1), tf.constant(z2))
    out["single"] = {
        "loss": single[0].numpy().tolist(),
        "labels": single[1].numpy().tolist(),
        "columns": [int(single[2].numpy())],
        "grad1": single[3].numpy().tolist(),
        "grad2": single[4].numpy().tolist(),
    }
    print("RESULT" + json.dumps(out))
    """
)


def test_simclr_two_replicas_equal_one_device_full_batch():
    out = two_cpu_result(DISTRIBUTED_SCRIPT, timeout=300)
    gathered, single, local = out["gather"], out["single"], out["local"]

    # Each replica sees the 2 x global batch columns and offset labels.
    assert gathered["columns"] == [16, 16]
    assert gathered["labels"] == [0, 1, 2, 3, 4, 5, 6, 7]
    assert single["columns"] == [16]
    np.testing.assert_allclose(gathered["loss"], single["loss"], atol=ATOL)
    # all_gather's gradient sums over replicas: per-replica gradients of
    # sum(loss) / global_batch are the single-device gradient.
    np.testing.assert_allclose(gathered["grad1"], single["grad1"], atol=ATOL)
    np.testing.assert_allclose(gathered["grad2"], single["grad2"], atol=ATOL)

    # Without gathering, each replica only sees its own half: different loss.
    assert local["columns"] == [8, 8]
    assert local["labels"] == [0, 1, 2, 3, 0, 1, 2, 3]
    assert np.abs(np.array(local["loss"]) - single["loss"]).max() > 1e-2


# --------------------------------------------------------------------------
# Distillation
# --------------------------------------------------------------------------


def test_distillation_loss_is_zero_when_student_matches_teacher(rng):
    t = rng.standard_normal((3, 7)).astype("float32")
    np.testing.assert_allclose(
        _np(losses.distillation_loss(t, t, 5.0)), np.zeros(3), atol=1e-5
    )


def test_distillation_loss_matches_numpy(rng):
    s = rng.standard_normal((6, 10)).astype("float32") * 3
    t = rng.standard_normal((6, 10)).astype("float32") * 3
    for temperature in (1.0, 5.0):
        got = _np(losses.distillation_loss(s, t, temperature))
        p_t = np.exp(np_log_softmax(t / temperature))
        log_p_t = np_log_softmax(t / temperature)
        expected = (p_t * (log_p_t - np_log_softmax(s / temperature))).sum(-1)
        expected *= temperature ** 2
        np.testing.assert_allclose(got, expected, atol=1e-4)


def test_distillation_gradients(rng):
    t = tf.constant(rng.standard_normal((4, 12)) * 2, tf.float32)
    s = tf.constant(rng.standard_normal((4, 12)) * 2, tf.float32)
    temperature = 5.0
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([s, t])
        loss = tf.reduce_sum(losses.distillation_loss(s, t, temperature))
    g_teacher = tape.gradient(loss, t)
    assert g_teacher is None or np.abs(g_teacher.numpy()).max() == 0
    # Gradient w.r.t. the student: T * (softmax(s/T) - softmax(t/T)).
    g_student = tape.gradient(loss, s).numpy()
    p_s = np.exp(np_log_softmax(s.numpy() / temperature))
    p_t = np.exp(np_log_softmax(t.numpy() / temperature))
    expected = temperature * (p_s - p_t)
    np.testing.assert_allclose(g_student, expected, atol=ATOL)
    assert np.abs(g_student).max() > 1e-3

    # At student == teacher the gradient vanishes ...
    same = tf.identity(t)
    with tf.GradientTape() as tape:
        tape.watch(same)
        loss_at_teacher = losses.distillation_loss(same, t, temperature)
        total = tf.reduce_sum(loss_at_teacher)
    np.testing.assert_allclose(
        tape.gradient(total, same).numpy(), 0, atol=1e-6)
    # ... and it is the minimum: any perturbed student has a larger loss.
    for _ in range(5):
        perturbed = t + rng.standard_normal(t.shape).astype("float32")
        assert (_np(losses.distillation_loss(perturbed, t, temperature))
                > _np(loss_at_teacher)).all()


# --------------------------------------------------------------------------
# SimSiam / BYOL
# --------------------------------------------------------------------------


def test_negative_cosine_and_byol_match_numpy(rng):
    p = rng.standard_normal((7, 9)).astype("float32")
    z = rng.standard_normal((7, 9)).astype("float32") * 5
    cos = (np_normalize(p) * np_normalize(z)).sum(-1)
    np.testing.assert_allclose(_np(losses.negative_cosine(p, z)), -cos,
                               atol=ATOL)
    np.testing.assert_allclose(_np(losses.byol_loss(p, z)), 2 - 2 * cos,
                               atol=ATOL)
    # BYOL is the squared distance of the normalized vectors.
    np.testing.assert_allclose(
        _np(losses.byol_loss(p, z)),
        ((np_normalize(p) - np_normalize(z)) ** 2).sum(-1), atol=ATOL)
    # Identical directions: -1 and 0.
    np.testing.assert_allclose(_np(losses.negative_cosine(p, 3 * p)), -1,
                               atol=ATOL)
    np.testing.assert_allclose(_np(losses.byol_loss(p, 3 * p)), 0, atol=ATOL)


@pytest.mark.parametrize("fn", [losses.negative_cosine, losses.byol_loss])
def test_no_gradient_flows_into_target(fn, rng):
    p = tf.constant(rng.standard_normal((4, 6)), tf.float32)
    z = tf.constant(rng.standard_normal((4, 6)), tf.float32)
    with tf.GradientTape() as tape:
        tape.watch([p, z])
        loss = tf.reduce_sum(fn(p, z))
    gp, gz = tape.gradient(loss, [p, z])
    assert gz is None or np.abs(gz.numpy()).max() == 0
    assert np.abs(gp.numpy()).max() > 1e-3


# --------------------------------------------------------------------------
# Group regularization
# --------------------------------------------------------------------------


def test_group_regularization_eight_equal_groups_by_hand():
    # Dense kernel (1, 16): channel c has value c + 1, 2 channels per group.
    kernel = np.arange(1, 17, dtype="float32")[None, :]
    strength, alpha = 0.5, 0.1
    # Group i holds channels 2i, 2i+1 -> sum of squares (2i+1)^2 + (2i+2)^2.
    expected = sum(
        strength * (1 - alpha * i) * ((2 * i + 1) ** 2 + (2 * i + 2) ** 2)
        for i in range(8))
    got = float(losses.group_regularization(kernel, strength, alpha))
    np.testing.assert_allclose(got, expected, rtol=1e-6)
    # alpha = 0 is plain L2: strength * sum(kernel ** 2).
    got = float(losses.group_regularization(kernel, strength, 0.0))
    np.testing.assert_allclose(got, strength * (kernel ** 2).sum(), rtol=1e-6)


def test_group_regularization_with_remainder(rng):
    # Conv kernel with 19 output channels: 8 groups of 2, the last has 2 + 3.
    kernel = rng.standard_normal((3, 3, 2, 19)).astype("float32")
    group_channels = [[2 * i, 2 * i + 1] for i in range(7)] + [
        list(range(14, 19))]
    strength = 5e-2
    alpha = tf.Variable(0.05)  # a tensor that ramps during training
    got = float(losses.group_regularization(kernel, strength, alpha))
    expected = np_group_regularization(kernel, strength, 0.05, group_channels)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    alpha.assign(0.1)
    got = float(losses.group_regularization(kernel, strength, alpha))
    expected = np_group_regularization(kernel, strength, 0.1, group_channels)
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    # Other group counts.
    got = float(losses.group_regularization(kernel, strength, 0.1, groups=4))
    expected = np_group_regularization(
        kernel, strength, 0.1,
        [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], list(range(12, 19))])
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_group_regularization_fewer_channels_than_groups(rng):
    # The official GroupReg: every channel gets the last group's coefficient.
    kernel = rng.standard_normal((5, 3)).astype("float32")
    got = float(losses.group_regularization(kernel, 1.0, 0.1, groups=8))
    expected = np_group_regularization(kernel, 1.0, 0.1,
                                       [[]] * 7 + [[0, 1, 2]])
    np.testing.assert_allclose(got, expected, rtol=1e-5)


def test_group_regularization_gradient_is_per_group_weight_decay(rng):
    kernel = tf.Variable(rng.standard_normal((4, 16)).astype("float32"))
    with tf.GradientTape() as tape:
        penalty = losses.group_regularization(kernel, 0.5, 0.1)
    grad = tape.gradient(penalty, kernel).numpy()
    coefficient = 0.5 * (1 - 0.1 * (np.arange(16) // 2))
    np.testing.assert_allclose(
        grad, 2 * coefficient * kernel.numpy(), atol=ATOL)


# --------------------------------------------------------------------------
# Alignment, uniformity, embedding std
# --------------------------------------------------------------------------


def test_alignment_matches_numpy(rng):
    z1 = rng.standard_normal((10, 5)).astype("float32")
    z2 = rng.standard_normal((10, 5)).astype("float32")
    dist = np.linalg.norm(np_normalize(z1) - np_normalize(z2), axis=-1)
    for alpha in (2, 1):
        np.testing.assert_allclose(
            float(losses.alignment(z1, z2, alpha)), (dist ** alpha).mean(),
            atol=ATOL)
    np.testing.assert_allclose(float(losses.alignment(z1, 2 * z1)), 0,
                               atol=ATOL)


def test_uniformity_matches_numpy(rng):
    z = rng.standard_normal((12, 6)).astype("float32")
    zn = np_normalize(z)
    sq = ((zn[:, None, :] - zn[None, :, :]) ** 2).sum(-1)
    off = ~np.eye(12, dtype=bool)
    for t in (2, 1):
        expected = np.log(np.exp(-t * sq[off]).mean())
        np.testing.assert_allclose(float(losses.uniformity(z, t)), expected,
                                   atol=ATOL)
    collapsed = np.tile(z[:1], (12, 1))
    np.testing.assert_allclose(float(losses.uniformity(collapsed)), 0,
                               atol=ATOL)


def test_embedding_std_healthy_and_collapsed(rng):
    dim = 64
    z = rng.standard_normal((4096, dim)).astype("float32")
    std = float(losses.embedding_std(z))
    np.testing.assert_allclose(std, 1 / np.sqrt(dim), rtol=0.03)
    np.testing.assert_allclose(
        std, np_normalize(z).std(axis=0).mean(), atol=ATOL)
    collapsed = np.tile(z[:1] * 7.0, (256, 1))
    assert float(losses.embedding_std(collapsed)) < 1e-6


# --------------------------------------------------------------------------
# XLA and half precision
# --------------------------------------------------------------------------


def _cases(rng):
    b, d, k = 8, 16, 32
    x = lambda *s: rng.standard_normal(s).astype("float32")  # noqa: E731
    queue = np_normalize(x(k, d)).astype("float32")
    logits = x(b, 10)
    return {
        "l2_normalize": (lambda a: losses.l2_normalize(a), (x(b, d),)),
        "moco": (
            lambda q, kk, qu: losses.contrastive_loss(
                losses.moco_logits(q, kk, qu, 0.2)),
            (x(b, d), x(b, d), queue)),
        "moco_accuracy": (
            lambda q, kk, qu: losses.contrastive_accuracy(
                losses.moco_logits(q, kk, qu, 0.2)),
            (x(b, d), x(b, d), queue)),
        "simclr": (
            lambda a, c: _simclr_loss(a, c, 0.1), (x(b, d), x(b, d))),
        "distillation": (
            lambda s, t: losses.distillation_loss(s, t, 5.0),
            (logits, x(b, 10))),
        "negative_cosine": (losses.negative_cosine, (x(b, d), x(b, d))),
        "byol": (losses.byol_loss, (x(b, d), x(b, d))),
        "group_regularization": (
            lambda w: losses.group_regularization(w, 5e-5, 0.05),
            (x(3, 3, 4, 19),)),
        "alignment": (losses.alignment, (x(b, d), x(b, d))),
        "uniformity": (losses.uniformity, (x(b, d),)),
        "embedding_std": (losses.embedding_std, (x(b, d),)),
    }


def _simclr_loss(a, c, temperature):
    logits_a, logits_b, labels = losses.simclr_logits(a, c, temperature)
    return (losses.contrastive_loss(logits_a, labels)
            + losses.contrastive_loss(logits_b, labels))


CASE_NAMES = sorted(_cases(np.random.default_rng(0)))


@pytest.mark.parametrize("name", CASE_NAMES)
@pytest.mark.parametrize("dtype", ["float32", "float16", "bfloat16"])
def test_runs_under_xla_and_half_precision(name, dtype, rng):
    fn, args = _cases(rng)[name]
    reference = fn(*args)
    compiled = tf.function(fn, jit_compile=True)
    out = compiled(*[tf.cast(tf.constant(a), dtype) for a in args])
    assert out.dtype == tf.float32
    assert out.shape == reference.shape
    assert np.isfinite(out.numpy()).all()
    tolerance = {"float32": 1e-5, "float16": 2e-2, "bfloat16": 2e-1}[dtype]
    np.testing.assert_allclose(
        out.numpy(), reference.numpy(),
        atol=tolerance * max(1.0, np.abs(reference.numpy()).max()))


def test_xla_with_tensor_temperature_and_alpha(rng):
    z1 = tf.constant(rng.standard_normal((8, 16)), tf.float16)
    z2 = tf.constant(rng.standard_normal((8, 16)), tf.float16)
    kernel = tf.constant(rng.standard_normal((4, 16)), tf.bfloat16)

    @tf.function(jit_compile=True)
    def f(temperature, alpha):
        return (_simclr_loss(z1, z2, temperature),
                losses.distillation_loss(z1, z2, temperature),
                losses.group_regularization(kernel, 1e-4, alpha))

    a, b, c = f(tf.constant(0.2), tf.constant(0.05))
    eager = (_simclr_loss(z1, z2, 0.2), losses.distillation_loss(z1, z2, 0.2),
             losses.group_regularization(kernel, 1e-4, 0.05))
    for x, y in zip((a, b, c), eager):
        np.testing.assert_allclose(x.numpy(), y.numpy(), rtol=1e-5,
                                   atol=1e-5)
