"""Training step of a slimmable backbone at width w vs. its plain sub-network.

For each width, times one training step (forward, backward, SGD-momentum
update) of `backbone(x, width=w)` and of `backbone.subnetwork(w)` (a plain
Keras model of that width), alternating the two, with and without XLA. The
ratio slim/plain is the price of slimmability (target <= 1.05).

    python benchmarks/bench_backbone_step.py --model resnet18
    python benchmarks/bench_backbone_step.py --model mobilenet_v2
"""

import argparse
import os

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import keras_slim  # noqa: E402
from benchmarks import _common  # noqa: E402
from keras_slim.backbones import SlimMobileNetV2  # noqa: E402
from keras_slim.backbones import SlimResNet  # noqa: E402

SETTINGS = {
    "resnet18": dict(size=32, batch=128),
    "mobilenet_v2": dict(size=96, batch=64),
}


def make_backbone(name, widths):
    if name == "resnet18":
        return SlimResNet(depth=18, stem="cifar", widths=widths)
    return SlimMobileNetV2(widths=widths)


def make_step(forward, variables, jit):
    """A compiled SGD step on the mean squared feature (a stand-in loss)."""
    optimizer = keras.optimizers.SGD(0.01, momentum=0.9)
    optimizer.build(variables)

    def step(images):
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(forward(images)))
        grads = tape.gradient(loss, variables)
        used = [(g, v) for g, v in zip(grads, variables) if g is not None]
        optimizer.apply([g for g, _ in used], [v for _, v in used])
        return loss

    return tf.function(step, jit_compile=jit)


def run(model, widths, repeats):
    keras.utils.set_random_seed(0)
    setting = SETTINGS[model]
    backbone = make_backbone(model, widths)
    shape = (setting["size"], setting["size"], 3)
    images = tf.constant(
        np.random.default_rng(0).random((setting["batch"],) + shape, "float32")
    )
    rows = []
    for jit in (False, True):
        for width in widths:
            plain = backbone.subnetwork(width, input_shape=shape)
            slim_step = make_step(
                lambda x, w=width: backbone(x, width=w, training=True),
                backbone.trainable_variables, jit,
            )
            plain_step = make_step(
                lambda x: plain(x, training=True),
                plain.trainable_variables, jit,
            )
            slim_s, plain_s = _common.interleaved_medians(
                [lambda: slim_step(images), lambda: plain_step(images)],
                repeats,
            )
            cost = keras_slim.profile(backbone, width, shape)
            rows.append(
                dict(
                    jit=jit, width=width, slim_s=slim_s, plain_s=plain_s,
                    ratio=slim_s / plain_s, flops=cost.flops,
                )
            )
            print(
                f"jit={jit!s:5} w={width:<5g} slim {slim_s * 1e3:8.1f} ms  "
                f"plain {plain_s * 1e3:8.1f} ms  ratio {slim_s / plain_s:.3f}",
                flush=True,
            )
    return rows, setting


def table(rows):
    lines = [
        "| jit | width | slim step (ms) | plain step (ms) | ratio slim/plain "
        "| time vs. w=1 | FLOPs vs. w=1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for jit in (False, True):
        subset = [r for r in rows if r["jit"] == jit]
        full = subset[0]
        for r in subset:
            lines.append(
                f"| {'on' if jit else 'off'} | {r['width']:g} "
                f"| {r['slim_s'] * 1e3:.1f} | {r['plain_s'] * 1e3:.1f} "
                f"| {r['ratio']:.3f} | {r['slim_s'] / full['slim_s']:.3f} "
                f"| {r['flops'] / full['flops']:.3f} |"
            )
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(SETTINGS), default="resnet18")
    parser.add_argument("--widths", default="1.0,0.75,0.5,0.25")
    parser.add_argument("--repeats", type=int, default=10)
    args = parser.parse_args()
    widths = [float(w) for w in args.widths.split(",")]
    rows, setting = run(args.model, widths, args.repeats)
    path = _common.write_result(
        f"backbone_step_{args.model}",
        dict(model=args.model, machine=_common.machine(), repeats=args.repeats,
             **setting, rows=rows),
    )
    print(table(rows))
    print(f"written {path}")


if __name__ == "__main__":
    main()
