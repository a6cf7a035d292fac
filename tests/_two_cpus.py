"""The first lines of a test subprocess that runs on two logical CPUs.

TensorFlow takes logical devices only before its runtime starts, so a
`tf.distribute` test runs its scenario in a fresh process whose script
begins with `TWO_CPUS` (it imports `json`, `os` and `tensorflow as tf`, and
tunes the garbage collector as `tests/_gc.py` says).
"""

TWO_CPUS = """\
import json, os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from tests._gc import relax_gc
relax_gc()
"""
