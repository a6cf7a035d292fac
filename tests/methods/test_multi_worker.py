"""`fit` under MultiWorkerMirroredStrategy: two worker processes on loopback.

The backbone is the recipe tests' `TinySlimNet` (synchronized BatchNorm):
the workers' step traces are what this costs. examples/ runs a SlimResNet
through the same strategy (`multi_worker_pretrain.py --launch-local 2`).
"""

import json
import os
import socket
import subprocess
import sys
import textwrap

import numpy as np

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))

WORKER = textwrap.dedent(
    """
    import json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    os.environ["TF_CONFIG"] = json.dumps({
        "cluster": {"worker": ["127.0.0.1:%d", "127.0.0.1:%d"]},
        "task": {"type": "worker", "index": %d},
    })
    import tensorflow as tf, keras, numpy as np
    strategy = tf.distribute.MultiWorkerMirroredStrategy()
    from keras_slim.methods import SlimCLR
    from tests.methods._tiny_slim_net import TinySlimNet
    from tests._gc import relax_gc
    relax_gc()
    with strategy.scope():
        keras.utils.set_random_seed(0)
        backbone = TinySlimNet(widths=[1.0, 0.5], base_width=4,
                               synchronized=True)
        model = SlimCLR(backbone, base="mocov2", queue_size=64)
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9))
    initial = model.get_weights()
    rng = np.random.default_rng(0)
    x = rng.random((64, 16, 16, 3), dtype="float32")
    data = tf.data.Dataset.from_tensor_slices((x, x[::-1])).batch(
        8, drop_remainder=True)
    history = model.fit(data, epochs=1, verbose=0)
    np.savez(sys.argv[1], *model.get_weights())
    print("RESULT" + json.dumps({
        "loss": float(np.ravel(history.history["loss"])[-1]),
        "moved": max(float(np.abs(a - b).max())
                     for a, b in zip(initial, model.get_weights())),
    }))
    """
)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


def test_fit_under_multi_worker_strategy_keeps_workers_identical(tmp_path):
    ports = _free_ports(2)
    env = dict(os.environ, PYTHONPATH=ROOT)
    procs = []
    for index in range(2):
        script = WORKER % (ports[0], ports[1], index)
        out = str(tmp_path / f"worker{index}.npz")
        procs.append((out, subprocess.Popen(
            [sys.executable, "-c", script, out], env=env, text=True,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        )))
    results = []
    for out, proc in procs:
        stdout, stderr = proc.communicate(timeout=600)
        assert proc.returncode == 0, stderr[-4000:]
        line = [l for l in stdout.splitlines() if l.startswith("RESULT")][-1]
        results.append(json.loads(line[len("RESULT"):]))
        results[-1]["weights"] = np.load(out)
    first, second = results
    assert np.isfinite(first["loss"]) and first["moved"] > 1e-3
    for key in first["weights"].files:
        np.testing.assert_array_equal(first["weights"][key],
                                      second["weights"][key])
