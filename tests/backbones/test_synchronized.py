"""Cross-replica BatchNorm: two replicas with half batches == one full batch.

Logical devices must be configured before TensorFlow starts, so the
distributed part runs on the two logical CPUs of `tests/_two_cpus.py` (one
script for both width kinds).
"""

import textwrap

import numpy as np

from tests._two_cpus import two_cpu_result

SCRIPT = textwrap.dedent(
    """
    import keras, numpy as np
    from keras_slim import Widths
    from keras_slim.backbones import SlimResNet

    rng = np.random.default_rng(0)
    x = rng.standard_normal((8, 16, 16, 3)).astype("float32")
    # Shift one half so that per-replica statistics differ from global ones.
    x[4:] = x[4:] * 3.0 + 2.0


    # One strategy for every model: strategies made one after another in a
    # process reuse collective instance keys, which clash once the shapes
    # differ (here: between the two width kinds).


    def run(widths):
        out = {}
        for synchronized in (True, False):
            with strategy.scope():
                keras.utils.set_random_seed(0)
                model = SlimResNet(widths=widths, depth=10, base_width=4,
                                   synchronized=synchronized)
            dist = strategy.experimental_distribute_dataset(
                tf.data.Dataset.from_tensor_slices(x).batch(8))
            batch = next(iter(dist))
            result = strategy.run(
                lambda b: model(b, width=0.5, training=True), args=(batch,))
            parts = strategy.experimental_local_results(result)
            out[str(synchronized)] = np.concatenate(
                [p.numpy() for p in parts]).tolist()
        keras.utils.set_random_seed(0)
        single = SlimResNet(widths=widths, depth=10, base_width=4)
        out["single"] = single(x, width=0.5, training=True).numpy().tolist()
        return out


    print("RESULT" + json.dumps({
        "list": run([1.0, 0.5]),
        "range": run(Widths(min_width=0.25, max_width=1.0)),
    }))
    """
)


def _run():
    return {kind: {k: np.array(v) for k, v in out.items()}
            for kind, out in two_cpu_result(SCRIPT, timeout=300).items()}


def test_synchronized_batch_norm_equals_one_device_full_batch():
    results = _run()
    assert sorted(results) == ["list", "range"]
    for out in results.values():
        np.testing.assert_allclose(out["True"], out["single"], atol=1e-4)
        # Without synchronization each replica normalizes its own half.
        assert np.abs(out["False"] - out["single"]).max() > 1e-2
