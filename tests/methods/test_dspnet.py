import numpy as np

from keras_slim.methods import DSPNet
from tests.methods._helpers import compile_sgd
from tests.methods._helpers import random_pairs
from tests.methods._helpers import tiny_backbone


def test_sub_widths_train_by_distillation_only():
    model = DSPNet(tiny_backbone(), queue_size=32, feature_weight=0.5)
    assert model.distill_weight == 1.0 and model.base == "mocov2"
    compile_sgd(model)
    logs = model.fit(random_pairs(), epochs=1, verbose=0).history
    # The sub-width loss is its distillation loss alone (weight 1).
    np.testing.assert_allclose(
        logs["w0.5/loss"], logs["w0.5/distill_loss"], rtol=1e-5
    )
    assert logs["w1/distill_loss"] == [0.0]
    assert model.get_config()["feature_weight"] == 0.5
    assert "base" not in model.get_config()


def test_save_and_load_round_trip(tmp_path):
    import keras

    model = DSPNet(tiny_backbone(), queue_size=32, feature_weight=0.25)
    path = str(tmp_path / "dspnet.keras")
    model.save(path)
    loaded = keras.saving.load_model(path)
    assert isinstance(loaded, DSPNet)
    assert loaded.get_config() == model.get_config()
    x = np.random.default_rng(2).random((2, 16, 16, 3), dtype="float32")
    np.testing.assert_array_equal(loaded.backbone(x, width=0.5),
                                  model.backbone(x, width=0.5))
