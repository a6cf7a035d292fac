"""`AugmentationConfig`: the `augmentation:` section of a run config."""

from keras_slim.config._checks import image_side
from keras_slim.config._setting import setting
from keras_slim.config.config_section import ConfigSection
from keras_slim.config.config_section import config_section

__all__ = ["AugmentationConfig"]


@config_section
class AugmentationConfig(ConfigSection):
    """The `augmentation:` section: how the two training views are drawn.

    `options` is a plain dict (the config's own copy) of
    `keras_slim.data.TwoViewAugmentation` arguments; the run config checks
    its keys.

    Example:

    ```python
    from keras_slim.config import AugmentationConfig

    views = AugmentationConfig(preset="cifar",
                               options={"blur_probability": 0.5})
    assert views.crop_size is None  # data.image_size
    assert views.options == {"blur_probability": 0.5}
    ```
    """

    preset: str = setting("mocov2", choices=[
        "simclr", "mocov2", "byol", "small", "cifar"])
    crop_size: int | None = setting(None, check=image_side, doc=(
        "view side (default: data.image_size)"))
    options: dict = setting({}, doc="overrides of the preset's fields")
