"""`keras-slim` starts with its own output, not TensorFlow's log lines."""

import os
import re
import subprocess
import sys
import textwrap

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), os.pardir,
                                    os.pardir))

# What the `keras-slim` console script does (its argv[0] is the command),
# then the environment TensorFlow was imported with.
COMMAND = textwrap.dedent(
    """
    import os, sys
    sys.argv[0] = os.path.join(os.path.dirname(sys.executable), "keras-slim")
    from keras_slim.cli import main
    try:
        main(["--help"])
    except SystemExit:
        pass
    print("ONEDNN=" + os.environ["TF_ENABLE_ONEDNN_OPTS"])
    """
)
TENSORFLOW_LINE = re.compile(
    r"oneDNN|absl::InitializeLog|cpu_feature_guard|^[IWEF]\d{4} ", re.M)


def _keras_slim_help(**env):
    clean = {k: v for k, v in os.environ.items()
             if k not in ("TF_CPP_MIN_LOG_LEVEL", "TF_ENABLE_ONEDNN_OPTS")}
    clean.update(env, PYTHONPATH=ROOT)
    return subprocess.run([sys.executable, "-c", COMMAND], env=clean,
                          capture_output=True, text=True, timeout=300)


def test_help_prints_no_tensorflow_log_line_and_keeps_onednn_on():
    done = _keras_slim_help()
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: keras-slim"), done.stdout[:500]
    assert TENSORFLOW_LINE.search(done.stdout + done.stderr) is None, (
        done.stderr)
    assert "ONEDNN=1" in done.stdout  # the fast CPU kernels stay on


def test_a_log_level_the_user_set_wins():
    done = _keras_slim_help(TF_CPP_MIN_LOG_LEVEL="0")
    assert done.returncode == 0, done.stderr
    assert "oneDNN custom operations are on" in done.stderr
    assert done.stdout.startswith("usage: keras-slim")
