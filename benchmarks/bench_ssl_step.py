"""A slimmable SSL training step vs. the sum of plain single-width steps.

One SlimCLR-MoCo v2 step over widths [1.0, 0.75, 0.5, 0.25] (one key-encoder
pass, one queue update, one optimizer update) against the sum of the same
MoCo v2 step on plain Keras networks of each width (`subnetwork(w)` with a
plain head, its own key encoder and queue), timed in alternation. Target:
ratio slim / sum <= 1.0. The same for US3L (4 sampled widths, SimCLR base) vs.
the sum of plain US3L steps at 1.0, 0.75, 0.5, 0.25 (`PlainUS3L`: both views
online, a full-width EMA teacher on both views, the width's US3L loss).

    python -m benchmarks.bench_ssl_step               # timing
    python -m benchmarks.bench_ssl_step --memory-only # peak tensor memory
    TF_ENABLE_ONEDNN_OPTS=0 python -m benchmarks.bench_ssl_step
"""

import argparse
import json
import os
import subprocess
import sys

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks import _common  # noqa: E402
from keras_slim import Widths  # noqa: E402
from keras_slim import losses  # noqa: E402
from keras_slim.backbones import SlimResNet  # noqa: E402
from keras_slim.methods import SlimCLR  # noqa: E402
from keras_slim.methods import US3L  # noqa: E402

WIDTHS = [1.0, 0.75, 0.5, 0.25]
QUEUE = 4096


def views(batch, size=32, seed=0):
    rng = np.random.default_rng(seed)
    shape = (batch, size, size, 3)
    return (tf.constant(rng.random(shape, dtype="float32")),
            tf.constant(rng.random(shape, dtype="float32")))


class PlainMoCo:
    """MoCo v2 on a plain Keras network of one width: the reference step."""

    def __init__(self, backbone, width, jit):
        net = backbone.subnetwork(width, input_shape=(32, 32, 3))
        dim = net.output_shape[-1]
        head = keras.Sequential([
            keras.layers.Dense(dim, activation="relu"),
            keras.layers.Dense(128),
        ])
        images = keras.Input((32, 32, 3))
        self.online = keras.Model(images, head(net(images)))
        self.key = keras.models.clone_model(self.online)
        self.key.set_weights(self.online.get_weights())
        rng = np.random.default_rng(0)
        queue = rng.standard_normal((QUEUE, 128)).astype("float32")
        self.queue = tf.Variable(queue / np.linalg.norm(queue, axis=1,
                                                        keepdims=True))
        self.pointer = tf.Variable(0)
        self.optimizer = keras.optimizers.SGD(0.03, momentum=0.9)
        self.optimizer.build(self.online.trainable_variables)
        self.step = tf.function(self._step, jit_compile=jit)

    def _step(self, v1, v2):
        k = tf.stop_gradient(losses.l2_normalize(self.key(v2, training=True)))
        with tf.GradientTape() as tape:
            q = self.online(v1, training=True)
            logits = losses.moco_logits(q, k, self.queue, 0.2)
            loss = tf.reduce_mean(losses.contrastive_loss(logits))
        variables = self.online.trainable_variables
        self.optimizer.apply(tape.gradient(loss, variables), variables)
        for t, s in zip(self.key.trainable_variables, variables):
            t.assign(0.999 * t + 0.001 * s)
        batch = tf.shape(k)[0]
        index = tf.reshape(self.pointer + tf.range(batch), (-1, 1))
        self.queue.assign(tf.tensor_scatter_nd_update(self.queue, index, k))
        self.pointer.assign((self.pointer + batch) % QUEUE)
        return loss


class PlainUS3L:
    """US3L's step on a plain Keras network of one width: the reference.

    Both views through the online network and its projector, both views
    through a full-width EMA teacher, then the width's US3L loss: the
    momentum-SimCLR loss at width 1.0, predictor distillation to the teacher
    below it. The slimmable step runs the teacher and the update once for
    all widths; the sum of these runs them once per width.
    """

    def __init__(self, backbone, width, jit, hidden=2048, dim=256):
        net = backbone.subnetwork(width, input_shape=(32, 32, 3))
        images = keras.Input((32, 32, 3))
        self.online = keras.Model(images, _mlp(hidden, dim)(net(images)))
        full = backbone.subnetwork(1.0, input_shape=(32, 32, 3))
        self.teacher = keras.Model(images, _mlp(hidden, dim)(full(images)))
        self.predictor = None if width == 1.0 else _mlp(hidden, dim)
        trainable = self.online.trainable_variables
        if self.predictor is not None:
            self.predictor.build((None, dim))
            trainable = trainable + self.predictor.trainable_variables
        self.variables = trainable
        self.optimizer = keras.optimizers.SGD(0.03, momentum=0.9)
        self.optimizer.build(trainable)
        self.step = tf.function(self._step, jit_compile=jit)

    def _step(self, v1, v2):
        t1 = tf.stop_gradient(self.teacher(v1, training=True))
        t2 = tf.stop_gradient(self.teacher(v2, training=True))
        with tf.GradientTape() as tape:
            z1 = self.online(v1, training=True)
            z2 = self.online(v2, training=True)
            if self.predictor is None:
                la, labels = losses.key_logits(z1, t2, 0.5)
                lb, _ = losses.key_logits(z2, t1, 0.5)
                per_example = 0.5 * (losses.contrastive_loss(la, labels)
                                     + losses.contrastive_loss(lb, labels))
            else:
                p1 = self.predictor(z1, training=True)
                p2 = self.predictor(z2, training=True)
                per_example = (losses.negative_cosine(p1, t2)
                               + losses.negative_cosine(p2, t1))
            loss = tf.reduce_mean(per_example)
        self.optimizer.apply(tape.gradient(loss, self.variables),
                             self.variables)
        online = self.online.trainable_variables
        for t, s in zip(self.teacher.trainable_variables, online):
            if t.shape == s.shape:  # the teacher is full width
                t.assign(0.99 * t + 0.01 * s)
        return loss


def _mlp(hidden, dim):
    return keras.Sequential([
        keras.layers.Dense(hidden),
        keras.layers.BatchNormalization(),
        keras.layers.ReLU(),
        keras.layers.Dense(dim),
    ])


def slim_model(method, jit):
    keras.utils.set_random_seed(0)
    if method == "slimclr":
        backbone = SlimResNet(depth=18, stem="cifar", widths=WIDTHS)
        model = SlimCLR(backbone, base="mocov2", queue_size=QUEUE)
    else:
        widths = Widths(min_width=0.25, max_width=1.0, stat_widths=WIDTHS)
        backbone = SlimResNet(depth=18, stem="cifar", widths=widths)
        model = US3L(backbone, base="simclr", num_widths=4, grid_step=0.125)
    model.compile(optimizer=keras.optimizers.SGD(0.03, momentum=0.9),
                  jit_compile=jit)
    return model


def time_method(method, batch, repeats, jit):
    model = slim_model(method, jit)
    data = views(batch)
    reference = SlimResNet(depth=18, stem="cifar", widths=WIDTHS)
    plain = PlainMoCo if method == "slimclr" else PlainUS3L
    plains = [plain(reference, w, jit) for w in WIDTHS]
    functions = [lambda: model.train_on_batch(data)]
    functions += [lambda p=p: p.step(*data) for p in plains]
    medians = _common.interleaved_medians(functions, repeats)
    slim_s, plain_s = medians[0], medians[1:]
    return dict(method=method, jit=jit, slim_s=slim_s,
                plain_s=dict(zip(map(str, WIDTHS), plain_s)),
                ratio=slim_s / sum(plain_s))


def peak_memory(variant, batch, steps=3):
    """Runs one variant in a fresh process; returns its peak tensor memory."""
    code = (
        "import resource, sys; sys.path.insert(0, '.');"
        "from benchmarks.bench_ssl_step import _memory_child;"
        f"_memory_child({variant!r}, {batch}, {steps})"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True,
                         text=True, check=True,
                         cwd=os.path.join(os.path.dirname(__file__), ".."))
    line = [l for l in out.stdout.splitlines() if l.startswith("PEAK")][-1]
    return json.loads(line[4:])


def _memory_child(variant, batch, steps):
    """Peak bytes held by TensorFlow's CPU allocator during training steps.

    `tf.config.experimental.get_memory_info("CPU:0")` tracks the tensors
    TensorFlow allocates (activations, gradients, temporaries); the peak is
    reset after a first (tracing) step. Process RSS (`ru_maxrss`) cannot
    tell the variants apart: it reports the allocator's retained footprint.
    """
    data = views(batch)
    if variant == "plain_full":
        runner = PlainMoCo(SlimResNet(depth=18, widths=WIDTHS), 1.0, False)
        step = lambda: runner.step(*data)
    elif variant == "plain_us3l_full":
        runner = PlainUS3L(SlimResNet(depth=18, widths=WIDTHS), 1.0, False)
        step = lambda: runner.step(*data)
    else:
        model = slim_model(variant, False)
        step = lambda: model.train_on_batch(data)
    step()
    tf.config.experimental.reset_memory_stats("CPU:0")
    for _ in range(steps):
        step()
    info = tf.config.experimental.get_memory_info("CPU:0")
    print("PEAK" + json.dumps({"variant": variant,
                               "peak_mb": info["peak"] / 2**20,
                               "current_mb": info["current"] / 2**20}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--methods", default="slimclr,us3l")
    parser.add_argument("--jit", default="off", choices=["off", "on", "both"])
    parser.add_argument("--memory-only", action="store_true",
                        help="measure peak tensor memory instead of time")
    args = parser.parse_args()
    jits = {"off": [False], "on": [True], "both": [False, True]}[args.jit]
    if args.memory_only:
        memory = []
        variants = ["plain_full", "plain_us3l_full"] + args.methods.split(",")
        for variant in variants:
            memory.append(peak_memory(variant, args.batch))
            print(json.dumps(memory[-1]), flush=True)
        path = _common.write_result("ssl_step_memory", dict(
            machine=_common.machine(), batch=args.batch, widths=WIDTHS,
            memory=memory))
        print(f"written {path}")
        return
    rows = []
    for method in args.methods.split(","):
        for jit in jits:
            row = time_method(method, args.batch, args.repeats, jit)
            rows.append(row)
            print(json.dumps(row), flush=True)
    name = "ssl_step_onednn" + os.environ.get("TF_ENABLE_ONEDNN_OPTS", "x")
    path = _common.write_result(name, dict(
        machine=_common.machine(), batch=args.batch, repeats=args.repeats,
        widths=WIDTHS, rows=rows))
    print(f"written {path}")


if __name__ == "__main__":
    main()
