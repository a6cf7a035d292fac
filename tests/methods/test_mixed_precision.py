import keras
import numpy as np
import pytest

from keras_slim.methods import SlimCLR
from tests.methods._helpers import compile_sgd
from tests.methods._helpers import random_pairs
from tests.methods._helpers import tiny_backbone


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_trains_without_nan(policy):
    keras.config.set_dtype_policy(policy)
    try:
        model = SlimCLR(tiny_backbone(), base="mocov2", queue_size=32)
        compile_sgd(model, lr=0.01)
        assert model.backbone.compute_dtype == policy.split("_")[1]
        logs = model.fit(random_pairs(steps=3), epochs=1, verbose=0).history
    finally:
        keras.config.set_dtype_policy("float32")
    for key, values in logs.items():
        assert np.isfinite(values).all(), key
    assert logs["w0.5/ssl_loss"][0] > 0.0
