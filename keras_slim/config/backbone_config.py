"""`BackboneConfig`: the `backbone:` section of a run config."""

from keras_slim.config._checks import check_widths
from keras_slim.config._checks import positive
from keras_slim.config._setting import setting
from keras_slim.config.config_section import ConfigSection
from keras_slim.config.config_section import config_section

__all__ = ["BackboneConfig"]


@config_section
class BackboneConfig(ConfigSection):
    """The `backbone:` section: the slimmable network and its widths.

    `widths` is a plain list (a width list) or a plain dict (a range:
    `{min, max[, divisor, stat_widths]}`), as is `input_normalization`;
    the config holds its own copy.

    Example:

    ```python
    from keras_slim.config import BackboneConfig

    net = BackboneConfig(depth=50, widths={"min": 0.25, "max": 1.0})
    assert (net.name, net.depth, net.base_width) == ("resnet", 50, 64)
    assert net.to_dict()["widths"] == {"min": 0.25, "max": 1.0}
    ```
    """

    name: str = setting("resnet", choices=["resnet", "mobilenet_v2"])
    depth: int = setting(18, choices=[10, 18, 34, 50, 101, 152])
    stem: str = setting("cifar", choices=["cifar", "imagenet"])
    base_width: int = setting(64, check=positive)
    widths: list | dict = setting([1.0, 0.75, 0.5, 0.25], check=check_widths)
    synchronized: bool = setting(False)
    zero_init_residual: bool = setting(False, doc=(
        "resnet: start each block's last BN gamma at 0 (official "
        "SlimCLR s_resnet.py does)"))
    padding: str = setting("same", choices=["same", "symmetric"], doc=(
        "resnet: 'symmetric' pads like PyTorch (converted checkpoints)"))
    input_normalization: dict | None = setting(None, doc=(
        "resnet: {mean: [...], std: [...]} applied inside the network"))
