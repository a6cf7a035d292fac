"""`TrainConfig`: the `train:` section of a run config."""

from keras_slim.config._checks import fraction
from keras_slim.config._checks import non_negative
from keras_slim.config._checks import positive
from keras_slim.config._setting import setting
from keras_slim.config.config_section import ConfigSection
from keras_slim.config.config_section import config_section

__all__ = ["TrainConfig"]


@config_section
class TrainConfig(ConfigSection):
    """The `train:` section: pretraining length, optimizer and schedule.

    Example:

    ```python
    from keras_slim.config import TrainConfig

    train = TrainConfig(epochs=200, optimizer="lars", learning_rate=1)
    assert train.learning_rate == 1.0  # an integer is read as a number
    assert train.batch_size == 256
    ```
    """

    epochs: int = setting(100, check=positive)
    batch_size: int = setting(256, check=positive)
    optimizer: str = setting("sgd", choices=[
        "sgd", "sgd_decoupled", "lars", "adamw", "lamb"], doc=(
        "sgd: torch.optim.SGD's coupled L2 decay (the official code); "
        "sgd_decoupled: Keras' SGD (decay outside the momentum)"))
    learning_rate: float = setting(0.06, check=positive)
    momentum: float = setting(0.9, check=fraction)
    weight_decay: float = setting(5e-4, check=non_negative)
    warmup_epochs: float = setting(0.0, check=non_negative)
    final_learning_rate: float = setting(0.0, check=non_negative)
    slow_start_schedule: str = setting("official", choices=[
        "official", "restart"], doc=(
        "official: one cosine over the run whose scale becomes "
        "restart_learning_rate at slim start (SlimCLR's main_ssl.py); "
        "restart: a second warm cosine from restart_learning_rate"))
    learning_rate_per: str = setting("auto", choices=[
        "auto", "batch", "epoch"], doc=(
        "when the rate changes: auto follows the recipe's official code "
        "(us3l: epoch, workers/ssl.py adjust_learning_rate; slimclr and "
        "dspnet: batch)"))
    restart_learning_rate: float | None = setting(None, doc=(
        "official: the cosine's scale after slim start (default 1e-4, "
        "the official --slim_start_lr default); restart: the restart's "
        "peak (default learning_rate)"))
    jit_compile: bool = setting(False)
    mixed_precision: str | None = setting(None, choices=[
        None, "mixed_float16", "mixed_bfloat16"])
    strategy: str = setting("default", choices=[
        "default", "mirrored", "multi_worker"])
    checkpoint_every_steps: int = setting(0, check=non_negative, doc=(
        "also back up mid-epoch every N steps (0: at epoch ends)"))
    verbose: int = setting(1, choices=[0, 1, 2], doc=(
        "1: compact per-width progress; 2: Keras' line per epoch with "
        "every metric; 0: silent"))
