"""Shared test setup: quiet TensorFlow, few threads, everything seeded."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
BACKEND = os.environ.setdefault("KERAS_BACKEND", "tensorflow")
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


def _add_xla_flags(*flags):
    """Adds each flag to XLA_FLAGS unless the variable sets it already."""
    current = os.environ.get("XLA_FLAGS", "").split()
    named = {flag.split("=")[0] for flag in current}
    os.environ["XLA_FLAGS"] = " ".join(
        current + [f for f in flags if f.split("=")[0] not in named])


# The tests' programs are tiny: XLA's compile time is their whole cost, and
# most of it is LLVM's optimization of code that then runs a few steps (a
# tiny JAX `pretrain`: 32.6 -> 18.2 s of CPU, same loss to 1e-7), and the
# CPU backend's MLIR fusion emitters, slower to compile than its classic
# ones (2026-12-05, both flags against the first alone: the JAX side of
# `tests/methods/test_cross_backend.py` 52.9 -> 30.0 s of CPU, the
# `tpu_pretrain.py --tiny --dry-run` example 24.0 -> 7.1 s, the same
# printed losses). Child processes (the JAX main job, the cross-backend
# step, the examples) inherit them; what users run keeps XLA's defaults.
_add_xla_flags("--xla_backend_optimization_level=0",
               "--xla_cpu_use_fusion_emitters=false")

if BACKEND == "jax":
    # The JAX suite (`KERAS_BACKEND=jax python -m pytest tests/jax`) runs
    # where TensorFlow may not be installed: every other file is the
    # TensorFlow suite's. Two host devices for the data-parallel tests.
    _add_xla_flags("--xla_force_host_platform_device_count=2")
    collect_ignore_glob = [
        name + ("/*" if os.path.isdir(os.path.join(TESTS_DIR, name)) else "")
        for name in os.listdir(TESTS_DIR)
        if name not in ("jax", "conftest.py", "__init__.py")
    ]
else:
    collect_ignore = ["jax"]

import numpy as np  # noqa: E402
import pytest  # noqa: E402


def pytest_configure(config):
    """Sets up a process that runs tests; not pytest-xdist's controller,
    which only hands files to the workers (a TensorFlow import there cost
    about 5 s of CPU while the workers started)."""
    distributing = getattr(config.option, "dist", "no") != "no"
    if distributing and not hasattr(config, "workerinput"):
        return
    _set_up_test_process()


def _set_up_test_process():
    global restart_generated_names
    import keras  # noqa: F401 (the backend starts here)

    if BACKEND == "tensorflow":
        import tensorflow as tf

        # The test machine is shared (2 cores): keep TensorFlow to one
        # thread each.
        try:
            tf.config.threading.set_intra_op_parallelism_threads(1)
            tf.config.threading.set_inter_op_parallelism_threads(1)
        except RuntimeError:  # already initialized by another import
            pass

        from tests._names import restart_generated_names
        from tests._tf_seed import keep_kernels_when_seeding

        keep_kernels_when_seeding()  # seeding costs no kernels: see its module
    from tests._gc import relax_gc

    relax_gc()  # after the imports: see tests/_gc.py


def restart_generated_names():  # JAX: no eager kernel cache to hit
    pass


@pytest.fixture(autouse=True)
def _seed():
    import keras

    restart_generated_names()  # see tests/_names.py
    keras.utils.set_random_seed(0)
    yield


@pytest.fixture
def rng():
    return np.random.default_rng(0)


SHARED_DATA = os.path.join(
    os.path.dirname(__file__), os.pardir, os.pardir, "shared", "data"
)

# The slowest files, slowest first (seconds of a whole-suite run on the
# 2-core machine, `pytest --durations=0`, 2026-12-05 18:30). pytest-xdist
# hands out whole files in collection order (`--dist=loadfile
# --no-loadscope-reorder` in setup.cfg), so starting these first keeps one
# long file from running alone at the end while the other worker idles. A
# stale list costs time, never a result.
SLOW_FILES_FIRST = (
    "examples/test_examples.py",             # 134 s
    "runs/test_jax_pretrain.py",             # 80 s (a JAX child pytest)
    "export/test_export.py",                 # 78 s
    "runs/test_resume.py",                   # 78 s (5 subprocesses)
    "runs/test_finetune_run.py",             # 69 s
    "test_docstring_examples.py",            # 56 s
    "methods/test_cross_backend.py",         # 54 s (a JAX subprocess)
    "convert/test_convert_run.py",           # 52 s
    "methods/test_real_data.py",             # 49 s
    "methods/test_slim_clr.py",              # 48 s
    "runs/test_pretrain.py",                 # 41 s
    "backbones/test_slim_resnet.py",         # 40 s
    "methods/test_slimclr_official_step.py",  # 37 s
    "methods/test_us3l.py",                  # 34 s
    "methods/test_distributed.py",           # 33 s
    "convert/test_slimclr.py",               # 31 s
    "tasks/test_slim_classifier.py",         # 16 s
    "backbones/test_slim_mobilenet_v2.py",   # 15 s
    "tasks/test_finetune_semi_supervised.py",  # 14 s
    "convert/test_presets.py",               # 14 s
)


def pytest_collection_modifyitems(session, config, items):
    """Slow files first; each file's tests keep their order."""
    rank = {os.path.join(TESTS_DIR, *name.split("/")): i
            for i, name in enumerate(SLOW_FILES_FIRST)}
    position = {id(item): i for i, item in enumerate(items)}
    items.sort(key=lambda item: (rank.get(str(item.path), len(rank)),
                                 position[id(item)]))
