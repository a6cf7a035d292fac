"""The contract every slimmable layer passes, in one helper.

In the style of keras-hub's `TestCase.run_layer_test`: each layer test file
calls `run_slim_layer_test` with a built layer, the inputs of each width and
the errors it should raise, and gets the same checks:

- slicing: at each width the output equals the plain Keras layer of
  `to_keras_layer(width)` on the same input;
- gradient bands: a width's gradient reaches only the entries (kernel
  layers: the bands) it uses;
- config: `from_config(get_config())` gives the same config and, with the
  same weights, the same output at every width;
- `.keras` save/load: the loaded layer gives the same output at every width;
- symbolic calls: on a `keras.KerasTensor` (batch and, for images, sizes
  unknown or known) the layer gives the shape and dtype of its eager output,
  the same spec as Keras's own trace of `call`;
- errors: an unknown width, an input of the wrong rank, and at every width
  but the largest an input with the largest width's channels, on arrays and
  on symbolic inputs alike.
"""

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_slim.layers import SlimBatchNormalization
from keras_slim.layers import SwitchableBatchNormalization
from keras_slim.width import width_name
from tests.layers._grads import full_gradients

TOL = 1e-5


@keras.saving.register_keras_serializable(package="tests")
class LayerHolder(keras.Model):
    """A model that holds one slim layer, to save and load it."""

    def __init__(self, layer, **kwargs):
        super().__init__(**kwargs)
        if isinstance(layer, dict):
            layer = keras.saving.deserialize_keras_object(layer)
        self.layer = layer

    def call(self, inputs):
        return self.layer(inputs)

    def build(self, input_shape):
        if not self.layer.built:  # a second build would make new weights
            self.layer.build(input_shape)

    def get_config(self):
        config = super().get_config()
        config["layer"] = keras.saving.serialize_keras_object(self.layer)
        return config


def _np(x):
    return keras.ops.convert_to_numpy(x)


def _plain(layer, width, x):
    if isinstance(layer, (SlimBatchNormalization,
                          SwitchableBatchNormalization)):
        return layer.to_keras_layer(width, input_shape=x.shape)
    return layer.to_keras_layer(width)


def image_rank_error(rng):
    """The wrong-rank input and error of a layer that reads images."""
    return {
        "bad_rank_input": rng.normal(size=(2, 7, 8)).astype("float32"),
        "rank_message": r"expects images .* of rank 4.*rank 3",
    }


def run_slim_layer_test(layer, inputs, plain_type, full_shape, tmp_path,
                        unknown_width, unknown_message, bad_rank_input,
                        rank_message):
    """Runs the whole contract on `layer` (built, with non-trivial weights).

    Args:
        layer: the slim layer under test.
        inputs: `{width: input array}` for every width to check; the largest
            width first.
        plain_type: the class `to_keras_layer` must return.
        full_shape: the input shape the layer was built with.
        tmp_path: pytest's `tmp_path`, for the `.keras` file.
        unknown_width, unknown_message: a width the layer refuses and a
            regex of its error.
        bad_rank_input, rank_message: an input of a wrong rank and a regex of
            its error.
    """
    expected = {w: _np(layer(x, width=w)) for w, x in inputs.items()}
    _check_slicing(layer, inputs, expected, plain_type)
    _check_config_round_trip(layer, inputs, expected, full_shape)
    _check_save_load(layer, inputs, expected, full_shape, tmp_path)
    _check_symbolic(layer, inputs, expected)
    for symbolic in (False, True):
        _check_errors(layer, inputs, unknown_width, unknown_message,
                      bad_rank_input, rank_message, symbolic)
    # Last: a training-mode call moves a switchable BN's statistics.
    for width, x in inputs.items():
        _check_gradient_bands(layer, width, x)


def _check_slicing(layer, inputs, expected, plain_type):
    for width, x in inputs.items():
        plain = _plain(layer, width, x)
        assert type(plain) is plain_type
        assert plain.built
        if hasattr(layer, "sliced_weights"):  # holds exactly the slice
            sliced = [v for v in layer.sliced_weights(width) if v is not None]
            for got, want in zip(plain.get_weights(), sliced, strict=True):
                np.testing.assert_array_equal(got, _np(want))
        np.testing.assert_allclose(_np(plain(x, training=False)),
                                   expected[width], rtol=0, atol=TOL,
                                   err_msg=f"width {width}")
        assert np.abs(expected[width]).mean() > 1e-3  # not trivially zero


def _check_gradient_bands(layer, width, x):
    x = tf.constant(x)
    upstream = tf.constant(np.random.default_rng(7).normal(
        size=layer(x, width=width).shape).astype("float32"))
    with tf.GradientTape(persistent=True) as tape:
        loss = tf.reduce_sum(layer(x, width=width, training=True) * upstream)
    if isinstance(layer, SwitchableBatchNormalization):
        _check_switchable_gradients(layer, width, tape, loss)
    elif isinstance(layer, SlimBatchNormalization):
        _check_leading_gradients(tape, loss, [layer.gamma, layer.beta],
                                 layer.channels_at(width))
    else:
        _check_kernel_gradients(layer, width, tape, loss)
    del tape


def _check_kernel_gradients(layer, width, tape, loss):
    kernel, bias = layer.sliced_weights(width)
    grad_k, grad_b = full_gradients(tape, loss, layer)
    used = tuple(slice(0, n) for n in kernel.shape)
    _assert_only_inside(grad_k, used)
    if bias is not None:
        _assert_only_inside(grad_b, (slice(0, bias.shape[0]),))
    # The bands outside the slice get no gradient at all (None), so an
    # optimizer leaves them, and their cost, alone.
    weights = [(layer._kernel, kernel.shape)]
    if bias is not None:
        weights.append((layer._bias, bias.shape))
    for banded, shape in weights:
        grads = tape.gradient(loss, banded.variables)
        for index, grad in zip(banded.bands, grads):
            region = banded._region(index)
            inside = all((r.start or 0) < n for r, n in zip(region, shape))
            assert (grad is not None) is inside, (width, index)


def _assert_only_inside(grad, used):
    inside = grad[used]
    assert np.count_nonzero(inside) == inside.size
    outside = grad.copy()
    outside[used] = 0
    assert np.count_nonzero(outside) == 0


def _check_leading_gradients(tape, loss, variables, channels):
    for variable, grad in zip(variables, tape.gradient(loss, variables)):
        if variable is None:
            continue
        grad = _np(grad)
        assert np.count_nonzero(grad[:channels]) == channels
        assert np.count_nonzero(grad[channels:]) == 0


def _check_switchable_gradients(layer, width, tape, loss):
    own = layer.norm_at(width)
    for norm in layer.norms:
        grads = tape.gradient(loss, norm.trainable_variables)
        for grad in grads:
            assert (grad is not None) is (norm is own)


def _check_config_round_trip(layer, inputs, expected, full_shape):
    config = layer.get_config()
    clone = type(layer).from_config(config)
    assert clone.get_config() == config
    clone.build(full_shape)
    clone.set_weights(layer.get_weights())
    for width, x in inputs.items():
        np.testing.assert_array_equal(_np(clone(x, width=width)),
                                      expected[width])


def _check_save_load(layer, inputs, expected, full_shape, tmp_path):
    holder = LayerHolder(layer)
    holder.build(full_shape)
    path = tmp_path / f"{layer.name}.keras"
    holder.save(path)
    loaded = keras.saving.load_model(path).layer
    assert type(loaded) is type(layer)
    for got, want in zip(loaded.get_weights(), layer.get_weights()):
        np.testing.assert_array_equal(got, want)
    for width, x in inputs.items():
        np.testing.assert_array_equal(_np(loaded(x, width=width)),
                                      expected[width])


def _symbolic_shapes(shape):
    """Shapes of symbolic inputs like an array of `shape`: the batch unknown,
    and for images also the image sizes."""
    shapes = [(None,) + tuple(shape[1:])]
    if len(shape) == 4:
        shapes.append((None, None, None, shape[-1]))
    return shapes


def _check_symbolic(layer, inputs, expected):
    for width, x in inputs.items():
        for shape in _symbolic_shapes(x.shape):
            symbolic = keras.KerasTensor(shape, dtype="float32")
            spec = layer(symbolic, width=width)
            known = [n is not None for n in shape]
            want = tuple(None if not known[i] and i < len(shape) - 1 else n
                         for i, n in enumerate(expected[width].shape))
            assert spec.shape == want, (width, shape, spec.shape)
            assert spec.dtype == str(expected[width].dtype)
            traced = keras.Operation.compute_output_spec(
                layer, symbolic, width=width)
            assert (spec.shape, spec.dtype) == (traced.shape, traced.dtype)


def _check_errors(layer, inputs, unknown_width, unknown_message,
                  bad_rank_input, rank_message, symbolic):
    def call(x, width):
        if symbolic:
            x = keras.KerasTensor(x.shape, dtype="float32")
        return layer(x, width=width)

    full = next(iter(inputs.values()))
    for width, x in inputs.items():
        if x.shape[-1] == full.shape[-1]:
            continue
        message = (rf"at width {width:g} \({width_name(width)}\) expects "
                   rf"{x.shape[-1]} input channels, got {full.shape[-1]}")
        with pytest.raises(ValueError, match=message.replace(".", r"\.")):
            call(full, width)
    with pytest.raises(ValueError, match=unknown_message):
        call(full, unknown_width)
    with pytest.raises(ValueError, match=rank_message):
        call(bad_rank_input, max(inputs))
