"""What a converted SlimCLR backbone costs: PyTorch padding and normalization.

A checkpoint converted by `keras_slim.convert` runs a `SlimResNet` with
`padding="symmetric"` (explicit zero padding before each strided layer, as
PyTorch pads) and the ImageNet normalization inside the network. This times
inference of each width's plain sub-network (the model export ships) against
the same ResNet-50 with Keras' own `"same"` padding and no normalization,
alternating the two (ratio converted / plain, target <= 1.05), and times the
conversion of the tiny official-layout checkpoint of the tests (read without
torch, every weight and statistic assigned).

    python -m benchmarks.bench_convert --size 224 --batch 8 --repeats 5
"""

import argparse
import os
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_slim  # noqa: E402,F401
from benchmarks import _common  # noqa: E402
from keras_slim import convert  # noqa: E402
from keras_slim.backbones import SlimResNet  # noqa: E402

WIDTHS = [1.0, 0.75, 0.5, 0.25]
FIXTURE = os.path.join(os.path.dirname(__file__), os.pardir, "tests",
                       "fixtures", "convert", "slimclr_mocov2_tiny.pth.tar")


def backbones():
    common = dict(widths=WIDTHS, depth=50, stem="imagenet")
    converted = SlimResNet(padding="symmetric",
                           input_normalization=convert.IMAGENET_NORMALIZATION,
                           **common)
    plain = SlimResNet(**common)
    return converted, plain


def inference(model):
    fn = tf.function(lambda x: model(x, training=False), jit_compile=False)
    return fn


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    images = tf.constant(np.random.default_rng(0).random(
        (args.batch, args.size, args.size, 3), dtype="float32"))
    converted, plain = backbones()
    rows = []
    shape = (args.size, args.size, 3)
    for width in WIDTHS:
        a = inference(converted.subnetwork(width, input_shape=shape))
        b = inference(plain.subnetwork(width, input_shape=shape))
        t_a, t_b = _common.interleaved_medians(
            [lambda: a(images), lambda: b(images)], args.repeats)
        rows.append({"width": width, "converted_s": t_a, "plain_s": t_b,
                     "ratio": t_a / t_b})
        print(f"width {width:g}: converted {t_a * 1e3:.1f} ms, plain "
              f"{t_b * 1e3:.1f} ms, ratio {t_a / t_b:.3f}")
    start = time.perf_counter()
    convert.load_slimclr(FIXTURE, as_method=True)
    load_s = time.perf_counter() - start
    print(f"load_slimclr(tiny MoCo v2 checkpoint, as_method=True): "
          f"{load_s:.2f} s")
    path = _common.write_result("convert", {
        "machine": _common.machine(), "size": args.size,
        "batch": args.batch, "repeats": args.repeats, "widths": rows,
        "load_tiny_as_method_s": load_s})
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
