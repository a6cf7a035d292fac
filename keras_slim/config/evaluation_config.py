"""`EvaluationConfig`: the `evaluation:` section of a run config."""

from keras_slim.config._checks import fractions
from keras_slim.config._checks import non_negative
from keras_slim.config._checks import positive
from keras_slim.config._setting import setting
from keras_slim.config.config_section import ConfigSection
from keras_slim.config.config_section import config_section

__all__ = ["EvaluationConfig"]


@config_section
class EvaluationConfig(ConfigSection):
    """The `evaluation:` section: kNN monitor, probes and fine-tuning per width.

    Example:

    ```python
    from keras_slim.config import EvaluationConfig

    evaluation = EvaluationConfig(knn_k=20, semi_supervised=[0.01, 0.1])
    assert evaluation.linear_epochs == 100
    assert evaluation.semi_supervised == [0.01, 0.1]
    ```
    """

    knn_every_epochs: int = setting(0, check=non_negative, doc=(
        "kNN monitor period (0: off)"))
    knn_k: int = setting(200, check=positive)
    knn_temperature: float = setting(0.1, check=positive)
    max_train_examples: int | None = setting(None, doc=(
        "cap on the labelled training images used by kNN and probes"))
    linear_epochs: int = setting(100, check=positive)
    linear_learning_rate: float = setting(0.01, check=positive)
    paper_learning_rate: float = setting(60.0, check=positive, doc=(
        "SGD rate of the 'paper' linear protocol (MoCo v2 script: 60; "
        "x0.1 at 60% and 80% of evaluation.linear_epochs)"))
    joint_probe: bool = setting(False)
    random_baseline: bool = setting(True)
    require_beating_baseline: bool = setting(False, doc=(
        "fail the run (exit status 3) if a width's pretrained kNN or "
        "linear accuracy does not beat the random-init baseline"))
    semi_supervised: list = setting([], check=fractions, doc=(
        "label fractions for semi-supervised fine-tuning, e.g. [0.01, 0.1]"))
    semi_supervised_epochs: int = setting(30, check=positive)
    calibration_batches: int = setting(20, check=positive, doc=(
        "BN calibration batches per width (width ranges only)"))
    eval_widths: list | None = setting(None, doc=(
        "widths to evaluate (default: the list, or the range's "
        "stat_widths)"))
