"""Test scripts that need two logical CPUs, run in one shared process.

TensorFlow takes logical devices only before its runtime starts, so a
`tf.distribute` scenario cannot run in a test process; it runs in a process
that splits the CPU into two logical devices first. Starting one costs a
TensorFlow start (about 6 s of CPU on the 2-core machine), and six test
files have such a scenario: `run_on_two_cpus(script)` runs them all in one
process per test worker, started on first use and kept until the worker
exits.

Each script runs as `__main__` in fresh globals that hold `json`, `os`,
`tf` and `strategy`, the process's one `MirroredStrategy` over both CPUs
(two such objects in one process reuse collective instance keys, and their
all-reduces collide), after the state a test starts from in the test
process: random seed 0, Keras's generated names restarted, the float32
policy, TensorFlow seeded without clearing its kernel cache
(`tests/_tf_seed.py`). Its printed text comes back; an exception in it fails
the calling test with its traceback, and the next script gets a new process
(a failed collective can leave the runtime unusable). Every op runs on one
thread per pool, as in the test process.
"""

import json
import os
import select
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_REPLY = "<<<two-cpus-reply>>>"

_RUNNER = textwrap.dedent(
    """
    import contextlib, io, json, os, sys, traceback
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(
        cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    from tests._gc import relax_gc
    from tests._names import restart_generated_names
    from tests._tf_seed import keep_kernels_when_seeding
    keep_kernels_when_seeding()
    relax_gc()
    strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    reply = sys.stdout
    for request in sys.stdin:
        script = json.loads(request)["script"]
        restart_generated_names()
        keras.config.set_dtype_policy("float32")
        keras.utils.set_random_seed(0)
        printed, error = io.StringIO(), None
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(script, "<two-cpus script>", "exec"),
                     {"__name__": "__main__", "json": json, "os": os,
                      "tf": tf, "strategy": strategy})
        except BaseException:
            error = traceback.format_exc()
        reply.write(%r + json.dumps({"printed": printed.getvalue(),
                                      "error": error}) + "\\n")
        reply.flush()
    """ % _REPLY
)


class _Runner:
    """The shared process: one script at a time, over its stdin/stdout."""

    def __init__(self):
        self.errors = tempfile.TemporaryFile(mode="w+")
        env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3")
        # Unbuffered bytes: `select` then sees every byte not yet read
        # (a buffered reader could hold the reply where select cannot).
        self.process = subprocess.Popen(
            [sys.executable, "-c", _RUNNER], cwd=ROOT, env=env, bufsize=0,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.errors)
        self.pending = b""

    def run(self, script, timeout):
        self.process.stdin.write(
            (json.dumps({"script": script}) + "\n").encode())
        deadline = time.monotonic() + timeout
        while True:
            line = self._next_line(deadline)
            if line.startswith(_REPLY):
                return json.loads(line[len(_REPLY):])

    def _next_line(self, deadline):
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            ready = left > 0 and select.select([self.process.stdout], [], [],
                                               left)[0]
            if not ready:
                self.close()
                raise AssertionError(f"the two-CPU script ran past its "
                                     f"time:\n{self._stderr_tail()}")
            chunk = os.read(self.process.stdout.fileno(), 1 << 16)
            if not chunk:  # the process died
                self.close()
                raise AssertionError(f"the two-CPU process exited with code "
                                     f"{self.process.returncode}:\n"
                                     f"{self._stderr_tail()}")
            self.pending += chunk
        line, self.pending = self.pending.split(b"\n", 1)
        return line.decode()

    def _stderr_tail(self):
        self.errors.seek(0)
        return self.errors.read()[-3000:]

    def close(self):
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()

    @property
    def alive(self):
        return self.process.poll() is None


_runner = None


def run_on_two_cpus(script, timeout=600):
    """What `script` printed, run on two logical CPUs (see the module)."""
    global _runner
    if _runner is None or not _runner.alive:
        _runner = _Runner()
    reply = _runner.run(textwrap.dedent(script), timeout)
    if reply["error"] is not None:
        _runner.close()
        raise AssertionError(reply["error"][-3000:])
    return reply["printed"]


def two_cpu_result(script, timeout=600):
    """The JSON a script printed after `RESULT` on its last such line."""
    lines = [line for line in run_on_two_cpus(script, timeout).splitlines()
             if line.startswith("RESULT")]
    assert lines, "the script printed no RESULT line"
    return json.loads(lines[-1][len("RESULT"):])
