"""keras_slim.evaluation on JAX: TensorFlow's numbers, without TensorFlow.

Each scenario below runs on either backend and returns plain numbers. The
golden values are what the TensorFlow backend computes for the same
scenario; print them with

    KERAS_BACKEND=tensorflow python -m tests.jax.test_evaluation

Every weight is set from a seeded NumPy generator (Keras's seeded
initializers draw different numbers per backend), so both backends start
from the same network. Imports no TensorFlow.
"""

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_slim import Widths
from keras_slim import evaluation
from keras_slim.methods import SlimCLR
from tests.methods._tiny_slim_net import TinySlimNet

_COLOURS = np.array([[0.9, 0.1, 0.1], [0.1, 0.9, 0.1], [0.1, 0.1, 0.9]],
                    dtype="float32")
RANGE = {"min_width": 0.25, "max_width": 1.0, "stat_widths": [1.0, 0.5]}
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(__file__)))


# ------------------------------------------------------------ scenarios
def seeded(variables, seed):
    """Sets every variable from a seeded NumPy generator, by its kind."""
    rng = np.random.default_rng(seed)
    for variable in variables:
        name = variable.path.rsplit("/", 1)[-1]
        shape = tuple(variable.shape)
        if name.startswith("kernel"):
            fan_in = int(np.prod(shape[:-1]))
            value = rng.normal(0.0, np.sqrt(2.0 / fan_in), shape)
        elif name == "gamma":
            value = 1.0 + 0.1 * rng.normal(size=shape)
        elif name.startswith("moving_variance"):
            value = rng.uniform(0.5, 1.5, shape)
        elif name.startswith(("beta", "moving_mean", "bias")):
            value = 0.1 * rng.normal(size=shape)
        else:  # a range's calibration counts stay 0
            continue
        variable.assign(value.astype("float32"))


def tiny_net(widths, seed=0):
    """A TinySlimNet (stem of 2 channels, a block of 16), seeded weights."""
    if isinstance(widths, dict):
        widths = Widths(**widths)
    backbone = TinySlimNet(widths=widths, base_width=2,
                           input_shape=(None, None, 3))
    seeded(backbone.weights, seed)
    return backbone


def colour_data(count, seed, noise=0.3):
    """Noisy one-colour images of 3 classes: separable, not trivially."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, count)
    images = _COLOURS[labels][:, None, None, :] + rng.normal(
        0.0, noise, (count, 8, 8, 3))
    return np.clip(images, 0, 1).astype("float32"), labels


def _rounded(values):
    return [round(float(v), 6) for v in np.ravel(values)]


def calibration_scenario():
    """Calibrates a range, then a width added by `with_stat_widths`."""
    backbone = tiny_net(RANGE)
    x, _ = colour_data(40, seed=1)
    counts = evaluation.calibrate_batch_norm(backbone, x, batch_size=8)
    stem, bn2 = backbone.stem_norm, backbone.block.norms[1]
    wider = evaluation.with_stat_widths(backbone, [0.75])
    evaluation.calibrate_batch_norm(wider, x, widths=[0.75], batch_size=16)
    return {
        "counts": {str(w): c for w, c in counts.items()},
        "stem_mean_w1": _rounded(stem.moving_means[0]),
        "stem_variance_w1": _rounded(stem.moving_variances[0]),
        "stem_mean_w0.5": _rounded(stem.moving_means[1]),
        "stem_variance_w0.5": _rounded(stem.moving_variances[1]),
        "block_mean_w0.5": _rounded(bn2.moving_means[1]),
        "block_variance_w0.5": _rounded(bn2.moving_variances[1]),
        "features_w0.5": _rounded(
            evaluation.extract_features(backbone, x[:1], 0.5)),
        "features_w0.75": _rounded(
            evaluation.extract_features(wider, x[:1], 0.75)),
    }


def knn_scenario():
    """kNN top-1 and predictions at each width of a seeded width list."""
    backbone = tiny_net((1.0, 0.5))
    (x, y), (xt, yt) = colour_data(48, seed=2), colour_data(24, seed=3)
    top1 = evaluation.evaluate_knn(backbone, x, y, xt, yt, k=5,
                                   batch_size=16)
    bank = evaluation.extract_features(backbone, x, 0.5)
    queries = evaluation.extract_features(backbone, xt, 0.5)
    return {
        "top1": {str(w): a for w, a in top1.items()},
        "predicted_w0.5": evaluation.knn_classify(
            bank, y, queries, 3, k=5).tolist(),
        "features_w1": _rounded(
            evaluation.extract_features(backbone, xt[:1], 1.0)),
    }


def probe_scenario():
    """Linear probes (independent and joint) and alignment/uniformity."""
    backbone = tiny_net((1.0, 0.5))
    (x, y), (xt, yt) = colour_data(48, seed=2), colour_data(24, seed=3)
    result = {}
    for joint in (False, True):
        probe = evaluation.linear_probe(
            backbone, x, y, xt, yt, epochs=5, batch_size=16,
            learning_rate=0.05, joint=joint)
        kind = "joint" if joint else "independent"
        result[kind] = {str(w): a for w, a in probe.items()}
        result[kind + "_kernel_w0.5"] = _rounded(
            probe.classifiers[0.5].kernel[:2])
    metrics = evaluation.alignment_uniformity(
        backbone, x[:16], np.flip(x[:16], axis=2), width=0.5)
    result.update({k: round(v, 6) for k, v in metrics.items()})
    return result


def monitor_scenario():
    """KNNMonitor during `fit` of a range backbone: every epoch, and once
    in the middle of an epoch (while JAX's trainer holds the weights)."""
    backbone = tiny_net(RANGE)
    head = keras.layers.Dense(3)
    model = keras.Sequential([keras.Input((8, 8, 3)), backbone, head])
    seeded(head.weights, seed=1)
    model.compile(keras.optimizers.SGD(0.1),
                  keras.losses.SparseCategoricalCrossentropy(True))
    (x, y), (xt, yt) = (colour_data(32, seed=4, noise=0.6),
                        colour_data(16, seed=5, noise=0.6))
    monitor = evaluation.KNNMonitor(x, y, xt, yt, k=5, batch_size=16,
                                    backbone=backbone)
    middle = {}

    def in_the_middle(batch, logs):
        if batch == 1 and not middle:
            middle["top1"] = monitor.evaluate()
            middle["weights"] = [keras.ops.convert_to_numpy(v)
                                 for v in backbone.weights]

    history = model.fit(x, y, epochs=2, batch_size=8, shuffle=False,
                        verbose=0, callbacks=[
                            keras.callbacks.LambdaCallback(
                                on_train_batch_end=in_the_middle),
                            monitor])
    return {
        "history": {k: [round(v, 6) for v in values]
                    for k, values in sorted(history.history.items())},
        "middle": {str(w): a for w, a in middle["top1"].items()},
    }, middle["weights"]


def recipe_monitor_scenario():
    """KNNMonitor on `model.backbone` while a SlimCLR (SimCLR base) trains."""
    model = SlimCLR(tiny_net((1.0, 0.5)), base="simclr", hidden_dim=16)
    seeded(model.weights, seed=2)
    model.compile(optimizer=keras.optimizers.SGD(0.05, momentum=0.9))
    x, y = colour_data(32, seed=6, noise=0.6)
    monitor = evaluation.KNNMonitor(x, y, x[::-1], y[::-1], k=5,
                                    batch_size=16)
    history = model.fit(x, np.flip(x, axis=2), epochs=2, batch_size=16,
                        shuffle=False, verbose=0, callbacks=[monitor])
    return {k: [round(v, 6) for v in values]
            for k, values in sorted(history.history.items())
            if k == "loss" or k.endswith("knn_top1")}


SCENARIOS = {
    "calibration": calibration_scenario,
    "knn": knn_scenario,
    "probe": probe_scenario,
    "monitor": lambda: monitor_scenario()[0],
    "recipe_monitor": recipe_monitor_scenario,
}

# What `KERAS_BACKEND=tensorflow python -m tests.jax.test_evaluation` prints
# (TensorFlow 2.21, Keras 3.15.1, CPU).
GOLDEN = {
    "calibration": {
        "counts": {"1.0": 5, "0.5": 5},
        # The stem takes all input channels: the same at both widths.
        "stem_mean_w1": [-0.086643, 0.689855],
        "stem_variance_w1": [0.205315, 0.281092],
        "stem_mean_w0.5": [-0.086643, 0.689855],
        "stem_variance_w0.5": [0.205315, 0.281092],
        "block_mean_w0.5": [-0.391389, 0.039059, -0.608423, -0.236902,
                            -0.038653, -0.604618, 0.029927, -0.343527],
        "block_variance_w0.5": [0.312351, 0.227581, 0.511413, 0.322733,
                                0.329159, 0.35738, 0.207, 0.239457],
        "features_w0.5": [0.16369, 0.371446, 0.427299, 0.896455, 0.0,
                          0.813278, 0.027105, 0.396267],
        "features_w0.75": [0.180654, 0.439313, 0.231212, 0.840855, 0.040337,
                           0.369181, 0.137223, 0.317777, 0.081911, 0.115768,
                           1.402377, 0.919268, 0.0, 1.884426, 0.206011, 0.0],
    },
    "knn": {
        "top1": {"1.0": 0.7916666666666666, "0.5": 0.75},
        "predicted_w0.5": [2, 0, 2, 0, 0, 2, 2, 1, 0, 0, 1, 1, 1, 0, 0, 0, 2,
                           2, 0, 0, 2, 0, 2, 2],
        "features_w1": [0.0, 3.294405, 5.962389, 0.0, 4.90097, 0.368549,
                        0.091227, 0.375281, 0.492949, 5.979885, 1.725424,
                        0.0, 2.028864, 0.142325, 0.051061, 0.490482],
    },
    "probe": {
        "independent": {"1.0": 0.8333333333333334, "0.5": 0.5833333333333334},
        "independent_kernel_w0.5": [-15.002061, -8.935515, 20.589491,
                                    24.229527, -1.207819, -33.7771],
        "joint": {"1.0": 0.8333333333333334, "0.5": 0.5416666666666666},
        "joint_kernel_w0.5": [-14.208656, -11.437604, 20.99851, 20.060009,
                              7.190943, -33.248554],
        "alignment": 0.026708,
        "uniformity": -0.132475,
    },
    "monitor": {
        "history": {"loss": [1.175596, 0.918978],
                    "w0.5/knn_top1": [0.875, 0.9375],
                    "w1/knn_top1": [0.875, 0.9375]},
        "middle": {"1.0": 0.875, "0.5": 0.9375},
    },
    "recipe_monitor": {"loss": [50.633404, 48.137444],
                       "w0.5/knn_top1": [0.8125, 0.78125],
                       "w1/knn_top1": [0.90625, 1.0]},
}


def assert_matches(result, golden, rtol=1e-5, atol=2e-6):
    """Same keys; equal counts and accuracies; floats to ~1e-5."""
    assert result.keys() == golden.keys()
    for key, expected in golden.items():
        if isinstance(expected, dict):
            assert_matches(result[key], expected, rtol, atol)
        else:
            np.testing.assert_allclose(result[key], expected, rtol=rtol,
                                       atol=atol, err_msg=key)


def test_calibration_gives_tensorflows_statistics():
    assert_matches(calibration_scenario(), GOLDEN["calibration"])


def test_knn_gives_tensorflows_accuracy_and_votes():
    assert_matches(knn_scenario(), GOLDEN["knn"])


def test_linear_probes_and_alignment_uniformity_give_tensorflows_numbers():
    # The probe kernels fold in the standardization (large values): 1e-5
    # relative.
    assert_matches(probe_scenario(), GOLDEN["probe"], atol=1e-5)


def test_monitor_evaluates_the_weights_being_trained():
    result, middle_weights = monitor_scenario()
    # Every evaluation, also one in the middle of an epoch (where JAX's
    # trainer holds the weights), as on TensorFlow.
    assert_matches(result, GOLDEN["monitor"])
    # The mid-epoch evaluation saw the weights after that step: a copy of
    # the backbone holding them gives the same top-1.
    copy = tiny_net(RANGE)
    for variable, value in zip(copy.weights, middle_weights):
        variable.assign(value)
    (x, y), (xt, yt) = (colour_data(32, seed=4, noise=0.6),
                        colour_data(16, seed=5, noise=0.6))
    top1 = evaluation.evaluate_knn(copy, x, y, xt, yt, k=5, batch_size=16)
    assert {str(w): a for w, a in top1.items()} == result["middle"]


def test_monitor_on_a_recipe_reads_model_backbone():
    assert_matches(recipe_monitor_scenario(), GOLDEN["recipe_monitor"],
                   atol=1e-4)


def test_one_compiled_function_per_width_never_another_widths():
    compiled = importlib.import_module("keras_slim.evaluation._compiled")
    backbone = tiny_net((1.0, 0.5))
    x, _ = colour_data(10, seed=0)
    for width in (1.0, 0.5, 1.0, 0.5):  # switching back and forth
        features = evaluation.extract_features(backbone, x, width,
                                               batch_size=5)
        assert features.shape == (10, backbone.feature_dim(width))
        np.testing.assert_allclose(
            features, backbone(x, width=width, training=False), atol=1e-5)
    one, half = (compiled.forward_function(backbone, w) for w in (1.0, 0.5))
    assert one is not half and (one.width, half.width) == (1.0, 0.5)
    # Two batches of 5 images, four calls at each width: compiled once.
    assert one._compiled._cache_size() == half._compiled._cache_size() == 1


# Runs where importing TensorFlow fails, whether it is installed or not.
NO_TENSORFLOW = textwrap.dedent("""
    import json
    import sys

    sys.modules["tensorflow"] = None  # any import of TensorFlow now fails
    import keras_slim
    from keras_slim import evaluation
    from tests.jax import test_evaluation as scenarios

    result = {"calibration": scenarios.calibration_scenario(),
              "knn": scenarios.knn_scenario()}
    x, y = scenarios.colour_data(8, seed=0)
    backbone = scenarios.tiny_net((1.0, 0.5))
    for name, run in [
            ("paper_linear_probe", lambda: evaluation.paper_linear_probe(
                backbone, x, y, x, y, epochs=1)),
            ("fine_tune_semi_supervised",
             lambda: evaluation.fine_tune_semi_supervised(
                 backbone, 0.5, x, y, x, y, epochs=1))]:
        try:
            run()
        except ImportError as error:
            result[name] = str(error)
    print(json.dumps(result))
""")


def test_no_tensorflow_needed_for_arrays():
    result = run_script(NO_TENSORFLOW)
    assert_matches(result.pop("calibration"), GOLDEN["calibration"])
    assert_matches(result.pop("knn"), GOLDEN["knn"])
    # What needs TensorFlow says so.
    assert sorted(result) == ["fine_tune_semi_supervised",
                              "paper_linear_probe"]
    for name, needs in [("paper_linear_probe", "its random crops"),
                        ("fine_tune_semi_supervised",
                         "its tf.data augmentation")]:
        assert result[name].startswith(
            f"{name} ({needs}) needs TensorFlow, which is not installed.")


# Runs only where TensorFlow is installed: its image ops make the crops of
# these two protocols on either backend. Their heads start from Keras's
# seeded initializers, which draw per backend: no TensorFlow numbers to
# compare with, only what the TensorFlow tests assert.
WITH_TENSORFLOW = textwrap.dedent("""
    import json

    import keras
    import numpy as np

    from keras_slim import evaluation
    from tests.jax import test_evaluation as scenarios

    keras.utils.set_random_seed(0)
    x, y = scenarios.colour_data(60, seed=7, noise=0.1)
    xt, yt = scenarios.colour_data(30, seed=8, noise=0.1)
    # Keras's initialization: BatchNorm statistics of a fresh network.
    backbone = scenarios.TinySlimNet(widths=(1.0, 0.5), base_width=4,
                                     input_shape=(None, None, 3))
    before = [keras.ops.convert_to_numpy(v) for v in backbone.weights]
    probe = evaluation.paper_linear_probe(
        backbone, x, y, xt, yt, epochs=10, batch_size=30, learning_rate=2.0,
        milestones=(7,))
    top1 = evaluation.fine_tune_semi_supervised(
        backbone, 0.5, x, y, xt, yt, label_fraction=0.5, epochs=10,
        batch_size=16, learning_rate=0.01)
    print(json.dumps({
        "paper": list(probe.values()),
        "semi_supervised": top1,
        "untouched": all(np.array_equal(a, keras.ops.convert_to_numpy(v))
                         for a, v in zip(before, backbone.weights)),
    }))
""")


@pytest.mark.skipif(importlib.util.find_spec("tensorflow") is None,
                    reason="the crops of these protocols need TensorFlow")
def test_protocols_with_crops_train_on_jax_with_tensorflows_image_ops():
    result = run_script(WITH_TENSORFLOW)
    # Colours: separable (the TensorFlow tests' thresholds).
    assert min(result["paper"]) >= 0.9, result
    assert result["semi_supervised"] >= 0.9, result
    assert result["untouched"]  # frozen, BatchNorm statistics included


def run_script(script):
    """Runs `script` in a JAX process; returns its last line, as JSON."""
    env = dict(os.environ, KERAS_BACKEND="jax")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


if __name__ == "__main__":
    keras.utils.set_random_seed(0)
    for name, scenario in SCENARIOS.items():
        print(f"{name} = {json.dumps(scenario())}")
