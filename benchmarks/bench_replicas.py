"""Training throughput of SlimCLR-MoCo v2 on 1 vs. 2 logical CPU replicas.

Each setting runs in a fresh process (logical devices are fixed when
TensorFlow starts): `fit` on a synthetic dataset of view pairs, images/s over
the timed steps after a warm-up epoch. No target on a 2-core machine; it shows
what MirroredStrategy costs or gains here.

    python -m benchmarks.bench_replicas
"""

import argparse
import json
import os
import subprocess
import sys

CHILD = """
import json, os, time
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
replicas = {replicas}
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * replicas)
import keras, numpy as np
from keras_slim.backbones import SlimResNet
from keras_slim.methods import SlimCLR
strategy = (tf.distribute.MirroredStrategy([f"/cpu:{{i}}" for i in
            range(replicas)]) if replicas > 1 else tf.distribute.get_strategy())
with strategy.scope():
    keras.utils.set_random_seed(0)
    model = SlimCLR(SlimResNet(widths=[1.0, 0.5, 0.25], base_width={base},
                               synchronized=replicas > 1),
                    base="mocov2", queue_size=4096)
    model.compile(optimizer=keras.optimizers.SGD(0.03, momentum=0.9))
x = np.random.default_rng(0).random(({batch} * {steps}, 32, 32, 3),
                                    dtype="float32")
data = tf.data.Dataset.from_tensor_slices((x, x[::-1])).batch(
    {batch}, drop_remainder=True).cache()
model.fit(data.take(2), epochs=1, verbose=0)
start = time.perf_counter()
model.fit(data, epochs=1, verbose=0)
seconds = time.perf_counter() - start
print("RESULT" + json.dumps({{"replicas": replicas,
                             "images_per_s": {batch} * {steps} / seconds}}))
"""


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--base-width", type=int, default=16)
    args = parser.parse_args()
    sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
    from benchmarks import _common

    rows = []
    for replicas in (1, 2, 1, 2):  # alternated, each twice
        code = CHILD.format(replicas=replicas, batch=args.batch,
                            steps=args.steps, base=args.base_width)
        out = subprocess.run([sys.executable, "-c", code], check=True,
                             capture_output=True, text=True)
        line = [l for l in out.stdout.splitlines()
                if l.startswith("RESULT")][-1]
        rows.append(json.loads(line[len("RESULT"):]))
        print(json.dumps(rows[-1]), flush=True)
    path = _common.write_result("replicas", dict(
        machine=_common.machine(), batch=args.batch, steps=args.steps,
        base_width=args.base_width, rows=rows))
    print(f"written {path}")


if __name__ == "__main__":
    main()
