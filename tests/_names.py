"""Keras's generated layer names, restarted before each test.

Keras names an unnamed layer or model after its class and a per-process
counter (`slim_res_net`, `slim_res_net_1`, ...), and a variable's path
includes its model's name. TensorFlow's eager kernel for a variable's
handle is cached by the variable's name, among its attributes, so a name the
process has not seen before creates that kernel again: about 0.65 ms for
each variable of a SlimResNet-50 (2026-12-05, 1,684 variables, 2.9 s to
build, 1.1 s of it the handles; a one-off timing wrapper around
`gen_resource_variable_ops.var_handle_op`, not a committed benchmark). A test worker builds the same few
networks hundreds of times, each time under a new name. Restarting the
counter before each test (`tests/conftest.py`) gives each test the names a
fresh process would give it, so its handles hit the cache.

What it changes: a test sees the names a process that ran only that test
would see. A model kept by a module fixture may share its name with a model
a later test builds; no test puts the two in one model or one file.
"""

from keras.src.backend.common import global_state


def restart_generated_names():
    """The next `keras.layers.Dense()` is named `dense` again, and so on."""
    global_state.set_global_attribute("object_name_uids", None)
