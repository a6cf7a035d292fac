"""The README's JAX example runs as printed, with TensorFlow unavailable."""

import os
import re
import subprocess
import sys

ROOT = __file__.rsplit("/tests/", 1)[0]


def test_the_readme_jax_example_trains_without_tensorflow():
    with open(os.path.join(ROOT, "README.md")) as f:
        section = f.read().split("## TensorFlow or JAX", 1)[1]
    section = section.split("\n## ", 1)[0]
    (example,) = re.findall(r"```python\n(.*?)```", section, re.S)
    script = ("import sys\nsys.modules['tensorflow'] = None\n" + example
              + "\nprint('steps', int(model.ssl_step.numpy()))\n")
    env = dict(os.environ, KERAS_BACKEND="jax")
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split()[-2:] == ["steps", "2"]
