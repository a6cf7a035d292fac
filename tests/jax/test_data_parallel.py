"""`keras.distribution.DataParallel` over two devices equals one device.

The JAX suite runs with two host CPU devices
(`--xla_force_host_platform_device_count=2`, set in `tests/conftest.py`).
On the same global batch, a step on two devices and a step on one give the
same weights: BatchNorm statistics over the global batch (not per device),
contrastive negatives from the whole global batch (SimCLR), and one MoCo
queue that takes every device's keys.
"""

import jax
import keras
import numpy as np
import pytest

from tests.jax.test_step import _model
from tests.jax.test_step import _pairs
from tests.jax.test_step import _weights


@pytest.mark.parametrize("base", ["mocov2", "simclr"])
def test_two_devices_equal_one_device_on_the_same_global_batch(base):
    devices = jax.devices("cpu")
    assert len(devices) == 2
    options = {"hidden_dim": 16} if base == "simclr" else {}
    pairs = _pairs(16)
    one = _model(base=base, **options)
    initial = _weights(one)
    one.fit(pairs, batch_size=8, epochs=1, verbose=0, shuffle=False)

    with keras.distribution.DataParallel(devices=devices).scope():
        two = _model(base=base, **options)
        for variable, value in zip(two.weights, initial):
            variable.assign(value)
        logs = two.fit(pairs, batch_size=8, epochs=1, verbose=0,
                       shuffle=False).history
    # The weights really live on both devices.
    assert len(two.backbone.weights[0].value.sharding.device_set) == 2
    assert np.isfinite(logs["loss"][0])
    moved = 0.0
    for variable, start, expected, got in zip(one.weights, initial,
                                              _weights(one), _weights(two)):
        # Summation order differs across devices; SimCLR's temperature 0.1
        # amplifies that to ~2e-5 after two steps. Per-device BatchNorm or
        # negatives would differ by the size of the update itself.
        np.testing.assert_allclose(got, expected, atol=1e-4,
                                   err_msg=variable.path)
        if variable.trainable and np.issubdtype(start.dtype, np.floating):
            moved = max(moved, float(np.abs(expected - start).max()))
    assert moved > 1e-2
