"""Every recipe trains on real images (Fashion-MNIST) without collapse."""

import math
import os

import numpy as np
import pytest

from keras_slim import Widths
from keras_slim.methods import DSPNet
from keras_slim.methods import SlimCLR
from keras_slim.methods import US3L
from tests.methods._helpers import FASHION
from tests.methods._helpers import compile_sgd
from tests.methods._helpers import fashion_view_pairs
from tests.methods._helpers import resnet_backbone

pytestmark = pytest.mark.skipif(
    not os.path.isdir(FASHION), reason="../shared/data/fashion-mnist absent"
)

RECIPES = {
    "slimclr_mocov2": lambda b: SlimCLR(b, base="mocov2", queue_size=256),
    "slimclr_simclr": lambda b: SlimCLR(b, base="simclr"),
    "dspnet": lambda b: DSPNet(b, queue_size=256),
    "us3l_byol": lambda b: US3L(b, base="byol", num_widths=3, grid_step=0.375,
                                hidden_dim=64, projection_dim=32),
}


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recipe_trains_on_fashion_mnist_without_collapse(name):
    widths = [1.0, 0.5]
    if name.startswith("us3l"):
        widths = Widths(min_width=0.25, max_width=1.0, stat_widths=[1.0, 0.25])
    model = RECIPES[name](resnet_backbone(widths=widths, channels=1, depth=10))
    compile_sgd(model, lr=0.03)
    logs = model.fit(fashion_view_pairs(256, 32), epochs=1, verbose=0).history
    dim = model.projector.output_units
    healthy = 1.0 / math.sqrt(dim)
    slots = [k[: -len("/embedding_std")] for k in logs if
             k.endswith("/embedding_std")]
    assert len(slots) >= 2
    for slot in slots:
        assert np.isfinite(logs[f"{slot}/loss"]).all(), slot
        # Collapsed embeddings have std ~0; healthy ones ~1/sqrt(dim).
        assert logs[f"{slot}/embedding_std"][0] > 0.25 * healthy, (slot, logs)
