"""`DataConfig`: the `data:` section of a run config."""

from keras_slim.config._checks import image_side
from keras_slim.config._setting import setting
from keras_slim.config.config_section import ConfigSection
from keras_slim.config.config_section import config_section

__all__ = ["DataConfig"]


@config_section
class DataConfig(ConfigSection):
    """The `data:` section: the images a run trains and evaluates on.

    Example:

    ```python
    from keras_slim.config import DataConfig

    data = DataConfig(source="cifar10", image_size=32)
    assert (data.train_split, data.image_size) == ("train", 32)
    assert data["source"] == "cifar10"  # read-only mapping access
    ```
    """

    source: str = setting("digits", doc=(
        "digits | a TFDS name (cifar10, ...) | a folder of class "
        "subfolders | a .zip of one | a folder of IDX files"))
    data_dir: str | None = setting(None)
    train_split: str = setting("train")
    test_split: str = setting("test")
    image_size: int | None = setting(None, check=image_side, doc=(
        "square side the images are resized to"))
    channels: int | None = setting(None, choices=[None, 1, 3])
    max_examples: int | None = setting(None, doc=(
        "use a seeded subset of this many training images"))
    max_test_examples: int | None = setting(None, doc=(
        "use a seeded subset of this many test images"))
    on_corrupt: str = setting("fail", choices=["fail", "skip"])
    cache_dir: str | None = setting(None)
    stream: bool = setting(False, doc=(
        "leave the training images on disk and decode them batch by "
        "batch (a folder source too large for memory, e.g. ImageNet); "
        "needs data.image_size"))
