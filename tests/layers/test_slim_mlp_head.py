import keras
import numpy as np
import pytest

from keras_slim import Widths
from keras_slim.heads import SlimMLPHead

RANGE = Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.5, 0.25])


def _head(**kwargs):
    head = SlimMLPHead(16, 8, widths=RANGE, **kwargs)
    head.build((None, 32))
    return head


def test_hidden_and_input_follow_the_width_output_does_not():
    head = _head(batch_norm=True)
    x = np.random.default_rng(0).random((4, 32), dtype="float32")
    assert head(x, width=1.0, training=True).shape == (4, 8)
    first = head.dense_layers[0]
    assert first.input_channels_at(0.5) == 16
    assert first.output_channels_at(0.5) == 8
    out = head(x[:, :16], width=0.5, training=True)
    assert out.shape == (4, 8)


def test_biases_before_batch_norm_only_where_asked():
    plain = _head(batch_norm=True, num_layers=3)
    assert [d.use_bias for d in plain.dense_layers] == [False, False, True]
    torch_like = _head(batch_norm=True, num_layers=3,
                       bias_before_norm=[True, False, False])
    assert [d.use_bias for d in torch_like.dense_layers] == [True, False,
                                                             True]
    # Training BN cancels the bias: same outputs with any bias value.
    x = np.random.default_rng(1).random((6, 32), dtype="float32")
    before = np.asarray(torch_like(x, width=1.0, training=True))
    bias = torch_like.dense_layers[0].bias
    bias.assign(np.full(bias.shape, 3.0, "float32"))
    np.testing.assert_allclose(torch_like(x, width=1.0, training=True),
                               before, atol=1e-5)


def test_config_round_trip_and_bad_flags():
    head = _head(batch_norm=True, num_layers=3, bias_before_norm=True)
    config = head.get_config()
    assert config["bias_before_norm"] == [True, True, True]
    again = SlimMLPHead.from_config(config)
    again.build((None, 32))
    assert [v.shape for v in again.weights] == [v.shape for v in head.weights]
    restored = keras.saving.deserialize_keras_object(
        keras.saving.serialize_keras_object(head))
    assert restored.bias_before_norm == (True, True, True)
    with pytest.raises(ValueError, match="one bool per dense layer"):
        SlimMLPHead(16, 8, widths=RANGE, num_layers=3,
                    bias_before_norm=[True, False])
