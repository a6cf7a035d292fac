"""`keras-slim`: the command line of keras_slim.

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it is imported; oneDNN
kernels made training steps about 1.5x faster on our CPUs, so the CLI
switches them on before anything imports TensorFlow (an explicit value in the
environment wins). The package's `__init__` does it, because importing this
module imports the package, and the package imports TensorFlow; for the
`keras-slim` command it imports TensorFlow through
`import_tensorflow_quietly` (`keras_slim.cli.startup`) so that the
command's output starts with its own.

This package imports nothing but the standard library at its top (the
package's `__init__` imports it before TensorFlow); each command imports
what it runs when it runs, so `--help` loads no run, data or export module.
"""

from keras_slim.cli.commands import main
from keras_slim.cli.startup import import_tensorflow_quietly

__all__ = ["import_tensorflow_quietly", "main"]
