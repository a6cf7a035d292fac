"""`python -m keras_slim.cli ...`: the `keras-slim` command."""

import sys

from keras_slim.cli.commands import main

sys.exit(main())
