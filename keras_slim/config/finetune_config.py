"""`FinetuneConfig`: the `finetune:` section of a run config."""

from keras_slim.config._checks import crop_area_range
from keras_slim.config._checks import fraction
from keras_slim.config._checks import non_negative
from keras_slim.config._checks import open_fraction
from keras_slim.config._checks import positive
from keras_slim.config._setting import setting
from keras_slim.config.config_section import ConfigSection
from keras_slim.config.config_section import config_section

__all__ = ["FinetuneConfig"]


@config_section
class FinetuneConfig(ConfigSection):
    """The `finetune:` section: supervised fine-tuning of a pretrained run.

    The defaults are the official SlimCLR `main_slim.py`'s
    (`scripts/slimmable.sh`).

    Example:

    ```python
    from keras_slim.config import FinetuneConfig

    finetune = FinetuneConfig(source="runs/quickstart", label_fraction=0.1)
    assert (finetune.epochs, finetune.learning_rate) == (100, 0.1)
    assert finetune.crop_scale == [0.08, 1.0]
    ```
    """

    source: str | None = setting(None, doc=(
        "the pretraining run directory (or `keras-slim convert` output) "
        "whose backbone.keras is fine-tuned; set by `keras-slim finetune "
        "RUN_DIR`"))
    epochs: int = setting(100, check=positive, doc=(
        "official SlimCLR main_slim.py (scripts/slimmable.sh): 100"))
    batch_size: int = setting(256, check=positive)
    optimizer: str = setting("sgd", choices=["sgd", "sgd_decoupled",
                                             "adamw"], doc=(
        "sgd: torch.optim.SGD's coupled L2 decay, as main_slim.py"))
    learning_rate: float = setting(0.1, check=positive, doc=(
        "peak of the cosine (main_slim.py: 0.1)"))
    momentum: float = setting(0.9, check=fraction)
    weight_decay: float = setting(1e-4, check=non_negative, doc=(
        "main_slim.py: 1e-4, none on BatchNorm and biases"))
    warmup_fraction: float = setting(0.05, check=fraction, doc=(
        "linear warm-up, as a fraction of all steps (main_slim.py: 0.05)"))
    label_smoothing: float = setting(0.0, check=fraction)
    inplace_distillation: bool | None = setting(None, doc=(
        "null: labels at every width of a list, in-place distillation "
        "for a range (the official codes); true / false forces either"))
    num_random_widths: int = setting(2, check=non_negative, doc=(
        "width range: widths drawn per step between the largest and the "
        "smallest (US-Nets' sandwich rule: 2)"))
    label_fraction: float | None = setting(None, check=open_fraction, doc=(
        "fine-tune on a seeded, class-balanced fraction of the training "
        "labels (semi-supervised: 0.01, 0.1); null: all"))
    crop_scale: list = setting([0.08, 1.0], check=crop_area_range, doc=(
        "random-resized crop area range (torchvision's default)"))
    random_baseline: bool = setting(True, doc=(
        "also fine-tune the same architecture from random init, "
        "reported beside the pretrained one"))
