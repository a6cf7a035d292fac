"""The recipes' JAX step (`keras_slim/methods/_jax_step.py`), on JAX itself.

The numbers it must match, TensorFlow's, are checked side by side in
`tests/methods/test_cross_backend.py` (the TensorFlow suite). Here: what only
the JAX suite can see.
"""

import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest

from keras_slim._stateless_random import stateless_uniform
from keras_slim.methods import SlimCLR
from keras_slim.methods import _jax_step
from tests.methods._tiny_slim_net import TinySlimNet

ROOT = __file__.rsplit("/tests/", 1)[0]


def _model(widths=(1.0, 0.5), base="mocov2", **options):
    keras.utils.set_random_seed(0)
    backbone = TinySlimNet(widths=widths, base_width=2,
                           input_shape=(None, None, 3))
    options.setdefault("queue_size", 16)
    model = SlimCLR(backbone, base=base, **options)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    return model


def _pairs(count=16, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.random((count, 12, 12, 3), dtype="float32")
    return x, np.flip(x, axis=2).copy()


def _weights(model):
    return [keras.ops.convert_to_numpy(v).copy() for v in model.weights]


def test_the_draws_are_those_of_tensorflow():
    # Printed by the same call on KERAS_BACKEND=tensorflow (2026-12-05):
    # TensorFlow and JAX draw the same widths from (seed, step).
    expected = [0.9939431548118591, 0.3680310845375061, 0.7485862970352173,
                0.964515745639801, 0.24639058113098145]
    drawn = keras.ops.convert_to_numpy(stateless_uniform(5, 3, 7))
    np.testing.assert_array_equal(drawn, np.float32(expected))


def test_slow_start_changes_phase_inside_one_compiled_step(monkeypatch):
    traced = []
    original = _jax_step.train_step

    def counting(*args):
        traced.append(1)
        return original(*args)

    monkeypatch.setattr(_jax_step, "train_step", counting)
    model = _model(slow_start_steps=1)
    history = model.fit(_pairs(), batch_size=8, epochs=2, verbose=0,
                        shuffle=False).history
    # Four steps across the slow start's end, one trace.
    assert len(traced) == 1
    assert int(keras.ops.convert_to_numpy(model.ssl_step)) == 4
    # Step 0 trains the full width only; the half width joins at step 1.
    assert history["w0.5/loss"][0] > 0
    assert model.sampled_widths(0) == [1.0]
    assert model.sampled_widths(1) == [1.0, 0.5]


def test_a_non_finite_loss_stops_naming_width_and_step_weights_kept():
    model = _model()
    first, second = _pairs()
    model.fit((first[:8], second[:8]), batch_size=8, epochs=1, verbose=0)
    before = _weights(model)
    bad = first[:8].copy()
    bad[0, 0, 0, 0] = np.nan
    # The full width's loss stays finite here (a max drops the NaN on the
    # way forward), its gradient does not.
    with pytest.raises(FloatingPointError, match=r"Non-finite gradient at "
                                                 r"width 1 \(w1\) at training "
                                                 r"step 1 "):
        model.fit((bad, second[:8]), batch_size=8, epochs=1, verbose=0)
    for old, new in zip(before, _weights(model)):
        np.testing.assert_array_equal(old, new)
    # Training goes on from there.
    model.fit((first[:8], second[:8]), batch_size=8, epochs=1, verbose=0)
    assert int(keras.ops.convert_to_numpy(model.ssl_step)) == 2


def test_per_width_update_updates_once_per_width():
    model = _model(widths=(1.0, 0.5), per_width_update=True)
    model.fit(_pairs(8), batch_size=8, epochs=1, verbose=0)
    # Two widths, two optimizer updates in the one step.
    assert int(keras.ops.convert_to_numpy(model.optimizer.iterations)) == 2


def test_evaluate_and_predict_run_statelessly():
    model = _model()
    pairs = _pairs(8)
    logs = model.evaluate(pairs, batch_size=8, verbose=0, return_dict=True)
    assert np.isfinite(logs["w0.5/ssl_loss"]) and logs["w0.5/ssl_loss"] > 0
    features = model.predict(pairs[0], batch_size=8, verbose=0)
    assert features.shape == (8, 16)
    np.testing.assert_allclose(
        features, keras.ops.convert_to_numpy(model(pairs[0])), atol=1e-5)


NO_TENSORFLOW = textwrap.dedent(
    """
    import sys
    sys.modules["tensorflow"] = None  # importing TensorFlow now fails
    import keras
    import numpy as np
    import keras_slim
    from keras_slim.methods import SlimCLR
    from tests.methods._tiny_slim_net import TinySlimNet

    keras.utils.set_random_seed(0)
    model = SlimCLR(TinySlimNet(widths=[1.0, 0.5], base_width=2,
                                input_shape=(None, None, 3)),
                    base="mocov2", queue_size=16)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    rng = np.random.default_rng(0)
    x = rng.random((16, 12, 12, 3), dtype="float32")
    arrays = model.fit((x, x[:, :, ::-1]), batch_size=8, verbose=0)

    def view_pairs():
        for start in (0, 8):
            batch = x[start:start + 8]
            yield batch, batch[:, ::-1]

    generator = model.fit(view_pairs(), epochs=1, verbose=0)
    print(keras.backend.backend(), int(model.ssl_step.numpy()),
          arrays.history["loss"][0], generator.history["loss"][0])
    """)


def test_training_on_arrays_and_generators_needs_no_tensorflow():
    done = subprocess.run([sys.executable, "-c", NO_TENSORFLOW], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    backend, steps, *losses = done.stdout.split()[-4:]
    assert (backend, steps) == ("jax", "4")
    assert all(np.isfinite(float(v)) and float(v) > 0 for v in losses)
