"""keras_slim says which Keras backends it runs on."""

import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_an_unsupported_backend_is_refused_with_how_to_fix_it():
    env = dict(os.environ, KERAS_BACKEND="numpy")
    done = subprocess.run([sys.executable, "-c", "import keras_slim"],
                          cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert done.returncode != 0
    assert ("ImportError: keras_slim runs on the TensorFlow or JAX backend "
            "of Keras, not on 'numpy'. Set KERAS_BACKEND=tensorflow or "
            "KERAS_BACKEND=jax") in done.stderr
