"""US3L checkpoints: parity with the official PyTorch code, calibration,
serialization and refusals.

The fixtures come from tools/make_us3l_fixture.py, which runs the official
US3L modules (channel counts scaled by 1/8, forward code unchanged) and
records their pooled features on fixed 8-bit images.
"""

import os
import types
import zipfile

import keras
import numpy as np
import pytest

from keras_slim import Widths
from keras_slim.backbones import SlimResNet
from keras_slim.convert import CheckpointFormatError
from keras_slim.convert import ConversionError
from keras_slim.convert import read_torch_checkpoint
from keras_slim.convert import us3l_state_dict
from keras_slim.convert import write_torch_checkpoint
from keras_slim.convert._us3l_layout import check_rounding
from keras_slim.convert.us3l import CIFAR_NORMALIZATION
from keras_slim.convert.us3l import inspect_us3l
from keras_slim.convert.us3l import load_us3l
from keras_slim.evaluation import calibrate_batch_norm
from keras_slim.evaluation import with_stat_widths
from keras_slim.width import make_divisible

FIXTURES = os.path.join(os.path.dirname(__file__), os.pardir, "fixtures",
                        "convert")
CIFAR = "us3l_simclr_cifar_resnet18_tiny.pth.tar"
IMAGENET = "us3l_lincls_imagenet_resnet50_tiny.pth.tar"
# Official float32 vs keras float32: measured <= 4e-5 (the official float32
# features themselves differ from a float64 run of the official code by up
# to 4.5e-5 on the ResNet-50 fixture: 16 batch-normalized blocks).
PARITY = 1e-4


def fixture(name):
    return os.path.join(FIXTURES, name)


def reference(name):
    ref = np.load(fixture(name.replace(".pth.tar", "_reference.npz")))
    return ref, ref["pixels"].astype(np.float32) / 255.0


def relative(actual, expected):
    actual = np.asarray(actual, np.float64)
    expected = np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, (actual.shape, expected.shape)
    return float(np.max(np.abs(actual - expected)) / np.max(np.abs(expected)))


@pytest.fixture(scope="module")
def calibrated():
    """The CIFAR backbone with statistics at the recorded widths, calibrated
    on the reference batch itself (one batch) while converting."""
    ref, x = reference(CIFAR)
    widths = [float(w) for w in ref["widths"]]
    backbone = load_us3l(fixture(CIFAR), stat_widths=widths,
                         calibration_images=x, calibration_batch_size=len(x))
    return backbone, ref, x, widths


def test_cifar_file_is_described_from_its_tensors():
    info = inspect_us3l(fixture(CIFAR))
    assert info == {"prefix": "encoder_q.", "depth": 18, "stem": "cifar",
                    "base_width": 8, "bottleneck": False,
                    "running_statistics": False, "momentum_encoder": False,
                    "arch": "us_cifar_resnet18", "epoch": 400}


def test_cifar_batch_statistics_features_match_the_official_code():
    ref, x = reference(CIFAR)
    backbone = load_us3l(fixture(CIFAR))
    assert backbone.widths.is_range and backbone.widths.min_width == 0.25
    assert (backbone.depth, backbone.stem, backbone.base_width,
            backbone.padding) == (18, "cifar", 8, "symmetric")
    # Normalized inside like US3L's CIFAR loaders: it takes [0, 1] images.
    assert backbone.input_normalization == CIFAR_NORMALIZATION
    np.testing.assert_allclose(CIFAR_NORMALIZATION["mean"], ref["mean"])
    np.testing.assert_allclose(CIFAR_NORMALIZATION["std"], ref["std"])
    for w in ref["widths"]:
        expected = ref[f"features_{w:g}"]
        actual = backbone(x, width=float(w), training=True)
        assert actual.shape == expected.shape
        assert relative(actual, expected) <= PARITY, w
    # The check has teeth: Keras' "same" padding (0 before, 1 after a
    # stride-2 3x3 convolution) instead of PyTorch's symmetric 1 is far off.
    same = SlimResNet(widths=backbone.widths, depth=18, stem="cifar",
                      base_width=8, padding="same",
                      input_normalization=CIFAR_NORMALIZATION)
    same.set_weights(backbone.get_weights())
    assert relative(same(x, width=1.0, training=True),
                    ref["features_1"]) > 0.1


def test_imagenet_bottleneck_linear_eval_file_with_its_statistics():
    ref, x = reference(IMAGENET)
    info = inspect_us3l(fixture(IMAGENET))
    assert (info["prefix"], info["depth"], info["stem"], info["bottleneck"],
            info["running_statistics"]) == ("", 50, "imagenet", True, True)
    width = float(ref["calibrated_width"])
    backbone = load_us3l(fixture(IMAGENET), statistics_width=width)
    assert width in backbone.widths.stat_widths
    np.testing.assert_allclose(backbone.input_normalization["mean"],
                               ref["mean"])
    for w in ref["widths"]:
        assert relative(backbone(x, width=float(w), training=True),
                        ref[f"features_{w:g}"]) <= PARITY, w
    # Eval mode at the width the file was calibrated at: the official
    # running statistics, sliced.
    assert relative(backbone(x, width=width, training=False),
                    ref["eval_features"]) <= PARITY


def test_calibration_makes_inference_equal_batch_statistics(calibrated):
    backbone, ref, x, widths = calibrated
    uncalibrated = load_us3l(fixture(CIFAR), stat_widths=widths)
    for w in widths:
        train = np.asarray(backbone(x, width=w, training=True))
        infer = np.asarray(backbone(x, width=w, training=False))
        # One calibration batch, the same images: the stored statistics are
        # that batch's mean and (biased) variance, which training mode uses,
        # so only float rounding differs (measured ~1e-6).
        assert relative(infer, train) <= 1e-5, w
        assert relative(infer, ref[f"features_{w:g}"]) <= PARITY, w
        # Without calibration, inference (mean 0, variance 1) is far off.
        assert relative(uncalibrated(x, width=w, training=False),
                        train) > 0.5, w


def test_the_documented_calibration_route_gives_the_same_statistics(
        calibrated):
    backbone, _, x, _ = calibrated
    plain = load_us3l(fixture(CIFAR))
    assert 0.6 not in plain.widths.stat_widths
    wider = with_stat_widths(plain, [0.6])
    assert calibrate_batch_norm(wider, x, widths=[0.6],
                                batch_size=len(x)) == {0.6: 1}
    np.testing.assert_allclose(wider(x, width=0.6, training=False),
                               backbone(x, width=0.6, training=False),
                               rtol=1e-5, atol=1e-6)


def test_keras_save_and_load_keeps_the_outputs(calibrated, tmp_path):
    backbone, _, x, _ = calibrated
    path = str(tmp_path / "us3l.keras")
    backbone.save(path)
    loaded = keras.saving.load_model(path)
    assert loaded.widths == backbone.widths
    for w, training in ((0.6, True), (0.5, False), (0.25, False)):
        np.testing.assert_allclose(loaded(x, width=w, training=training),
                                   backbone(x, width=w, training=training),
                                   rtol=1e-6, atol=1e-6)


def _us3l_channels(c, w):
    # The official slimmable_ops.make_divisible(c * w) (min_value=1),
    # sliced at most to c channels.
    v = c * w
    kept = max(1, int(v + 4) // 8 * 8)
    if kept < 0.9 * v:
        kept += 8
    return min(c, kept)


@pytest.mark.parametrize("base, bottleneck", [(8, False), (16, True),
                                              (64, False)])
def test_the_rounding_check_accepts_exactly_the_agreeing_ranges(base,
                                                                 bottleneck):
    counts = {base * 2 ** s for s in range(4)}
    if bottleneck:
        counts |= {4 * c for c in counts}
    grid = np.linspace(0.02, 1.0, 491)
    for lo in np.round(np.arange(0.02, 0.5, 0.01), 2):
        widths = Widths(min_width=float(lo), max_width=1.0)
        agree = all(widths.channels(c, float(w)) == _us3l_channels(c, w)
                    for c in counts for w in grid[grid >= lo])
        encoder = types.SimpleNamespace(path="x.pth.tar")
        info = {"base_width": base, "bottleneck": bottleneck}
        if agree:
            check_rounding(encoder, info, widths)
        else:
            with pytest.raises(ConversionError, match="min_width of at"):
                check_rounding(encoder, info, widths)
    assert make_divisible(3.0, 8, min_value=1) == 9  # the official quirk


def test_a_min_width_whose_channels_differ_is_refused():
    with pytest.raises(ConversionError, match=r"8 channels keeps 1 in US3L .* "
                                              r"but 8 in keras_slim.*0\.1389"):
        load_us3l(fixture(CIFAR), min_width=0.1)
    with pytest.raises(ValueError, match="max_width"):
        load_us3l(fixture(CIFAR), max_width=0.8)


def test_a_slimclr_file_points_to_load_slimclr():
    with pytest.raises(ConversionError, match="load_slimclr"):
        load_us3l(fixture("slimclr_mocov2_tiny.pth.tar"))


def test_a_us3l_mobilenet_is_refused_as_another_architecture():
    with pytest.raises(ConversionError, match="MobileNetV2.*ResNets only"):
        load_us3l(fixture("us3l_mobilenetv2_tiny.pth.tar"))


def test_an_incomplete_state_dict_is_refused():
    with pytest.raises(ConversionError, match=r"stages \[1, 2\]"):
        load_us3l(fixture("us3l_cifar_resnet18_incomplete.pth.tar"))


def test_statistics_are_not_invented_for_a_file_without_them():
    with pytest.raises(ConversionError, match="track_running_stats=False"):
        load_us3l(fixture(CIFAR), statistics_width=0.5)


def test_truncated_and_damaged_files_are_refused(tmp_path):
    data = open(fixture(CIFAR), "rb").read()
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointFormatError, match="truncated"):
        load_us3l(str(truncated))
    # A complete archive that lost one tensor record.
    damaged = tmp_path / "damaged.pth.tar"
    with zipfile.ZipFile(fixture(CIFAR)) as src, zipfile.ZipFile(
            damaged, "w") as dst:
        for info in src.infolist():
            if not info.filename.endswith("/data/5"):
                dst.writestr(info, src.read(info))
    with pytest.raises(CheckpointFormatError, match="data/5"):
        load_us3l(str(damaged))


def test_files_that_are_no_checkpoint_are_refused(tmp_path):
    text = tmp_path / "notes.pth.tar"
    text.write_text("epoch 400, top-1 62.3\n")
    with pytest.raises(CheckpointFormatError, match="not a ZIP"):
        load_us3l(str(text))
    with pytest.raises(CheckpointFormatError, match="not a PyTorch"):
        load_us3l(fixture(CIFAR.replace(".pth.tar", "_reference.npz")))


def test_as_method_needs_a_pretraining_file_with_its_teacher():
    # The CIFAR fixture has encoder_q and the predictor but no encoder_k
    # (its teacher is in tests/golden/us3l_step_before.pth.tar, used by
    # tests/methods/test_us3l_official_step.py).
    with pytest.raises(ConversionError, match="no EMA teacher"):
        load_us3l(fixture(CIFAR), as_method=True)
    with pytest.raises(ConversionError, match="bare backbone"):
        load_us3l(fixture(IMAGENET), as_method=True)
    with pytest.raises(TypeError, match="as_method=True"):
        load_us3l(fixture(CIFAR), num_widths=3)


def test_weights_named_the_official_way_are_the_file_and_load_back(
        tmp_path):
    backbone = load_us3l(fixture(CIFAR))
    state = us3l_state_dict(backbone)
    source = read_torch_checkpoint(fixture(CIFAR))["state_dict"]
    source = {k.removeprefix("module."): v for k, v in source.items()}
    prefix = "encoder_q."
    # The backbone's convolutions and affines (the file has no statistics).
    source = {k[len(prefix):]: np.asarray(v) for k, v in source.items()
              if k.startswith(prefix) and not k.startswith(prefix + "fc.")
              and k.rsplit(".", 1)[-1] != "num_batches_tracked"}
    assert sorted(state) == sorted(source)
    for key, value in state.items():
        np.testing.assert_array_equal(value, source[key], err_msg=key)
    # Written as a file of its own, it converts back to the same network.
    path = tmp_path / "written.pth.tar"
    write_torch_checkpoint({"state_dict": state, "arch": "cifar_resnet18"},
                           path)
    again = load_us3l(path)
    ref, x = reference(CIFAR)
    for width in (1.0, 0.25):
        np.testing.assert_array_equal(
            np.asarray(again(x, width=width, training=True)),
            np.asarray(backbone(x, width=width, training=True)))
