"""One training step of each recipe on one backend, for the cross-backend test.

    KERAS_BACKEND=tensorflow python -m tests.methods._cross_backend OUT_DIR
    KERAS_BACKEND=jax python -m tests.methods._cross_backend OUT_DIR

The TensorFlow run writes each scenario's initial weights and views to
`OUT_DIR/<scenario>_init.npz`; the JAX run loads them, so both backends
start from the same numbers (Keras's initializers draw differently per
backend). Each run then takes one `train_on_batch` step and writes the
step's logs and every weight after it to `OUT_DIR/<scenario>_<backend>.npz`.

`save_files` writes `.keras` files and their outputs at every width: the
TensorFlow run saves `OUT_DIR/<name>_tensorflow.keras`, the JAX run loads
those and saves its own `<name>_jax.keras` (which the test, on TensorFlow,
loads back). Imports no TensorFlow itself.
"""

import os
import sys

import keras
import numpy as np

from keras_slim.methods import DSPNet
from keras_slim.methods import SlimCLR
from keras_slim.methods import US3L
from tests.methods._tiny_slim_net import TinySlimNet

LIST = (1.0, 0.5)
RANGE = {"min_width": 0.25, "max_width": 1.0}

# name: (recipe, widths, options, the step the model starts at)
SCENARIOS = {
    "slimclr_mocov2": (SlimCLR, LIST, {"base": "mocov2", "queue_size": 16}, 0),
    "slimclr_mocov3": (SlimCLR, LIST, {"base": "mocov3", "hidden_dim": 16,
                                       "momentum_total_steps": 10}, 0),
    "slimclr_simclr": (SlimCLR, LIST, {"base": "simclr", "hidden_dim": 16},
                       0),
    # One update per width: a width's update leaves the bands it did not
    # read alone (no gradient on TensorFlow, no momentum step either).
    "slimclr_per_width_update": (
        SlimCLR, (1.0, 0.75, 0.5), {"base": "mocov2", "queue_size": 16,
                                    "per_width_update": True}, 0),
    # Past the slow start: the phase is chosen inside the compiled step.
    "slimclr_after_slow_start": (
        SlimCLR, LIST, {"base": "mocov2", "queue_size": 16,
                        "slow_start_steps": 2, "key_bn_splits": 2}, 3),
    # US3L's sandwich (the slots of its last dynamic-sampling phase): a
    # drawn width, one update per width. No phase schedule: TensorFlow would
    # trace all four phases (~4x the time) and phase switching is
    # `slimclr_after_slow_start`'s. A coarse grid: one compiled branch per
    # grid width.
    "us3l_simclr": (US3L, RANGE, {"base": "simclr", "hidden_dim": 16,
                                  "grid_step": 0.25}, 7),
    "us3l_byol": (US3L, RANGE, {"base": "byol", "hidden_dim": 16,
                                "grid_step": 0.25,
                                "per_width_update": False}, 5),
    "dspnet": (DSPNet, LIST, {"queue_size": 16}, 0),
}
# Scenarios about the compiled step itself (per-width updates ordered by
# control dependencies, the phase and the drawn width chosen in the graph):
# TensorFlow traces their step. The others check the recipes' math, and
# TensorFlow takes their one step eagerly, as the official-step tests do
# (the same step code, 3.5x faster than tracing it once). JAX always
# compiles: its eager dispatch is slower than the compile.
COMPILED_ON_TENSORFLOW = {"slimclr_per_width_update",
                          "slimclr_after_slow_start", "us3l_simclr"}


def build(name):
    recipe, widths, options, _ = SCENARIOS[name]
    keras.utils.set_random_seed(0)
    backbone = TinySlimNet(widths=widths, base_width=2,
                           input_shape=(None, None, 3))
    model = recipe(backbone, **options)
    eager = (keras.backend.backend() == "tensorflow"
             and name not in COMPILED_ON_TENSORFLOW)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  run_eagerly=eager)
    return model


def views():
    rng = np.random.default_rng(0)
    x = rng.random((8, 12, 12, 3), dtype="float32")
    return x, np.flip(x, axis=2) + rng.normal(0, 0.05, x.shape).astype(
        "float32")


# name: (builder, the widths whose outputs are compared)
SAVED = {
    "slimclr": (lambda: build("slimclr_mocov2"), LIST),
    "backbone_range": (
        lambda: TinySlimNet(widths=RANGE, base_width=2,
                            input_shape=(None, None, 3)),
        (1.0, 0.5714, 0.25)),
}


def saved_outputs(model, widths):
    """`{width: features}` of a recipe's or a backbone's `.keras` file."""
    backbone = getattr(model, "backbone", model)
    images = views()[0]
    return {w: keras.ops.convert_to_numpy(backbone(images, width=w))
            for w in widths}


def save_files(out_dir):
    backend = keras.backend.backend()
    for name, (make, widths) in SAVED.items():
        if backend != "tensorflow":
            loaded = keras.saving.load_model(
                os.path.join(out_dir, f"{name}_tensorflow.keras"))
            np.savez(os.path.join(out_dir, f"{name}_loaded_on_{backend}.npz"),
                     **{str(w): v for w, v in
                        saved_outputs(loaded, widths).items()})
        keras.utils.set_random_seed(0)
        model = make()
        model.save(os.path.join(out_dir, f"{name}_{backend}.keras"))
        np.savez(os.path.join(out_dir, f"{name}_saved_on_{backend}.npz"),
                 **{str(w): v for w, v in
                    saved_outputs(model, widths).items()})


def run(name, out_dir):
    backend = keras.backend.backend()
    model = build(name)
    init = os.path.join(out_dir, f"{name}_init.npz")
    if backend == "tensorflow":
        first, second = views()
        np.savez(init, first=first, second=second, *[
            keras.ops.convert_to_numpy(v) for v in model.weights])
    with np.load(init) as saved:
        first, second = saved["first"], saved["second"]
        for i, variable in enumerate(model.weights):
            variable.assign(saved[f"arr_{i}"])
    model.ssl_step.assign(SCENARIOS[name][3])
    logs = model.train_on_batch((first, second), return_dict=True)
    result = {f"log:{k}": np.float64(v) for k, v in logs.items()}
    result.update({f"weight:{i}:{v.path}": keras.ops.convert_to_numpy(v)
                   for i, v in enumerate(model.weights)})
    np.savez(os.path.join(out_dir, f"{name}_{backend}.npz"), **result)


if __name__ == "__main__":
    from tests._gc import relax_gc

    relax_gc()
    for scenario in (sys.argv[2:] or SCENARIOS):
        run(scenario, sys.argv[1])
    save_files(sys.argv[1])
