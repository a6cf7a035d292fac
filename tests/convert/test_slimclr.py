"""Official SlimCLR checkpoints convert with per-width parity.

The references are the official PyTorch models' outputs (SlimCLR's
s_resnet / s_moco / s_mocov3 code run by tools/make_convert_fixtures.py) on
the same images, with random weights and BatchNorm statistics.
"""

import keras
import numpy as np
import pytest

import keras_slim
from keras_slim.convert import ConversionError
from keras_slim.convert import inspect_slimclr
from keras_slim.convert import load_slimclr
from keras_slim.convert import load_slimclr_lincls
from tests.convert._fixtures import fixture
from tests.convert._fixtures import reference
from tests.convert._fixtures import relative_difference
from tests.convert._fixtures import width_key

MOCOV2 = "slimclr_mocov2_tiny.pth.tar"
MOCOV3 = "slimclr_mocov3_tiny.pth.tar"
LINCLS = "slimclr_lincls_tiny.pth.tar"
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def mocov2():
    return load_slimclr(fixture(MOCOV2), as_method=True)


@pytest.fixture(scope="module")
def mocov3():
    return load_slimclr(fixture(MOCOV3), as_method=True)


@pytest.fixture(scope="module")
def lincls():
    return load_slimclr_lincls(fixture(LINCLS))


def _per_width(model, ref):
    for index, width in enumerate(model.backbone.widths.values):
        yield width, width_key(ref["widths"], index)


def test_widths_and_depth_are_read_from_the_file():
    info = inspect_slimclr(fixture(MOCOV2))
    # Stem BatchNorms of 4/3/2/1 channels: the list [1, .75, .5, .25] of a
    # base width of 4 (the official [1/16, 3/64, 1/32, 1/64]).
    assert info == {"layout": "mocov2", "widths": [1.0, 0.75, 0.5, 0.25],
                    "base_width": 4, "depth": 50, "epoch": 200}
    assert inspect_slimclr(fixture(MOCOV3))["layout"] == "mocov3"
    assert inspect_slimclr(fixture(LINCLS))["classes"] == 10


def test_mocov2_every_width_equals_the_official_model(mocov2):
    ref = reference(MOCOV2)
    x = ref["images"]
    assert mocov2.base == "mocov2" and mocov2.queue_size == 24
    for width, key in _per_width(mocov2, ref):
        features = mocov2.backbone(x, width=width, training=False)
        assert relative_difference(features, ref[f"features_{key}"]) < TOLERANCE
        projection = mocov2.projector(features, width=width, training=False)
        assert relative_difference(
            projection, ref[f"projection_{key}"]) < TOLERANCE


def test_mocov2_key_encoder_and_queue_are_the_official_ones(mocov2):
    ref = reference(MOCOV2)
    keys = mocov2.key_backbone(ref["images"], width=1.0, training=False)
    assert relative_difference(keys, ref["key_features"]) < TOLERANCE
    key_projection = mocov2.key_projector(keys, width=1.0, training=False)
    assert relative_difference(key_projection, ref["key_projection"]) < TOLERANCE
    np.testing.assert_array_equal(np.asarray(mocov2.queue), ref["queue"])
    assert int(mocov2.queue_pointer) == int(ref["queue_ptr"])


def test_mocov3_without_module_prefix_every_width_and_predictor(mocov3):
    ref = reference(MOCOV3)
    x = ref["images"]
    assert mocov3.base == "mocov3" and mocov3.hidden_dim == 256
    for width, key in _per_width(mocov3, ref):
        features = mocov3.backbone(x, width=width, training=False)
        z = mocov3.projector(features, width=width, training=False)
        p = mocov3.predictor(z, width=width, training=False)
        assert relative_difference(features, ref[f"features_{key}"]) < TOLERANCE
        assert relative_difference(z, ref[f"projection_{key}"]) < TOLERANCE
        assert relative_difference(p, ref[f"prediction_{key}"]) < TOLERANCE
    keys = mocov3.key_backbone(x, width=1.0, training=False)
    assert relative_difference(keys, ref["key_features"]) < TOLERANCE
    assert relative_difference(
        mocov3.key_projector(keys, width=1.0, training=False),
        ref["key_projection"]) < TOLERANCE


def test_lincls_probe_logits_equal_the_official_ones(lincls):
    backbone, classifiers = lincls
    ref = reference(LINCLS)
    assert sorted(classifiers) == sorted(backbone.widths.values)
    for index, width in enumerate(backbone.widths.values):
        key = width_key(ref["widths"], index)
        features = backbone(ref["images"], width=width)
        assert relative_difference(features, ref[f"features_{key}"]) < TOLERANCE
        logits = classifiers[width](features)
        assert logits.shape == (2, 10)
        assert relative_difference(logits, ref[f"logits_{key}"]) < TOLERANCE


def test_plain_subnetworks_and_saved_file_keep_the_official_outputs(
        lincls, tmp_path):
    backbone, _ = lincls
    ref = reference(LINCLS)
    path = str(tmp_path / "converted.keras")
    backbone.save(path)
    loaded = keras.saving.load_model(path, compile=False)
    assert loaded.padding == "symmetric"
    assert loaded.input_normalization == keras_slim.convert.IMAGENET_NORMALIZATION
    for index, width in enumerate(backbone.widths.values):
        key = width_key(ref["widths"], index)
        plain = backbone.subnetwork(width, input_shape=(64, 64, 3))
        assert relative_difference(
            plain(ref["images"]), ref[f"features_{key}"]) < TOLERANCE
        assert relative_difference(
            loaded(ref["images"], width=width),
            ref[f"features_{key}"]) < TOLERANCE


def test_converted_method_trains_one_step(mocov2):
    ref = reference(MOCOV2)
    views = (ref["images"], ref["images"][::-1].copy())
    model = mocov2
    # The shared model, put back as loaded afterwards (a fresh load of the
    # ResNet-50 would cost more than the step).
    loaded = [(v, np.array(v.numpy())) for v in model.variables]
    try:
        # Eager: tracing a ResNet-50 step at 4 widths takes minutes on 2 cores.
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      run_eagerly=True)
        before = np.asarray(model.queue).copy()
        logs = model.train_on_batch(views[0], views[1], return_dict=True)
        assert np.isfinite(logs["loss"])
        assert not np.array_equal(np.asarray(model.queue), before)
    finally:
        for variable, value in loaded:
            variable.assign(value)


@pytest.mark.parametrize("name, message", [
    ("other_architecture.pth.tar", "not an official SlimCLR ResNet"),
    ("slimclr_unordered_widths.pth.tar", "do not form a list"),
])
def test_wrong_files_get_a_clear_error(name, message):
    with pytest.raises(ConversionError, match=message):
        load_slimclr(fixture(name))


def test_a_lincls_file_is_no_method_and_a_pretraining_file_no_lincls():
    with pytest.raises(ConversionError, match="load_slimclr_lincls"):
        load_slimclr(fixture(LINCLS), as_method=True)
    with pytest.raises(ConversionError, match="no switchable linear probe"):
        load_slimclr_lincls(fixture(MOCOV2))


def test_a_truncated_checkpoint_is_refused(tmp_path):
    data = open(fixture(MOCOV3), "rb").read()
    path = tmp_path / "cut.pth.tar"
    path.write_bytes(data[: int(len(data) * 0.9)])
    with pytest.raises(ValueError, match="truncated|damaged"):
        load_slimclr(path)


def test_simclr_head_with_its_biases_before_batch_norm():
    # The official SimCLR head has biased linear layers before its BNs:
    # keras_slim folds each bias into the BN's moving mean (inference) and
    # training BN removes it anyway.
    ref = reference("slimclr_simclr_tiny.pth.tar")
    model = load_slimclr(fixture("slimclr_simclr_tiny.pth.tar"),
                         as_method=True)
    assert model.base == "simclr" and model.hidden_dim == 128
    for width, key in _per_width(model, ref):
        features = model.backbone(ref["images"], width=width, training=False)
        assert relative_difference(features, ref[f"features_{key}"]) < TOLERANCE
        projection = model.projector(features, width=width, training=False)
        assert relative_difference(
            projection, ref[f"projection_{key}"]) < TOLERANCE


@pytest.mark.parametrize("name", [MOCOV2, LINCLS])
def test_weights_written_back_in_the_official_layout_are_the_file(name,
                                                                  mocov2):
    from keras_slim.convert import read_torch_checkpoint
    from keras_slim.convert import slimclr_state_dict

    if name == MOCOV2:
        state = slimclr_state_dict(mocov2)
    else:
        state = slimclr_state_dict(load_slimclr(fixture(name)))
    source = read_torch_checkpoint(fixture(name))["state_dict"]
    source = {k[len("module."):]: v for k, v in source.items()
              if not k.endswith("num_batches_tracked")}
    if name == LINCLS:  # the backbone only: no probe in a SlimResNet
        source = {k: v for k, v in source.items() if not k.startswith("fc.")}
    assert sorted(state) == sorted(source)
    for key, value in state.items():
        np.testing.assert_array_equal(value, np.asarray(source[key]),
                                      err_msg=key)
