"""The released SlimCLR checkpoints as keras_slim presets.

Each preset names an official release file of `mzhaoshuai/SlimCLR`
(GitHub release 1.0.0). keras_slim never re-hosts them (the repository has
no licence file): `load_preset` downloads from the official URL with
`keras.utils.get_file`, checks the file's SHA-256 against the hash pinned
here, converts it once and caches the converted `.keras` model; later calls
load the cache. Offline, the error says where to put a file downloaded
elsewhere.

The pinned hashes are the hexadecimal prefixes in the official file names
(torch.hub's naming convention: `<name>-<first hex digits of the SHA-256>`):
a download whose SHA-256 does not start with them is refused.
"""

import dataclasses
import difflib
import hashlib
import os

import keras

from keras_slim.backbones import SlimResNet
from keras_slim.convert.slimclr import load_slimclr
from keras_slim.convert.slimclr import load_slimclr_lincls
from keras_slim.io import atomic_path

__all__ = ["Preset", "PRESETS", "PresetError", "load_preset",
           "preset_checkpoint", "save_classifiers", "load_classifiers"]

RELEASE_URL = "https://github.com/mzhaoshuai/SlimCLR/releases/download/1.0.0/"


class PresetError(ValueError):
    """An unknown preset, a failed download, or a file with a wrong hash."""


@dataclasses.dataclass(frozen=True)
class Preset:
    """One released checkpoint pair: pretraining and linear evaluation.

    Attributes:
        name: the preset name.
        description: one line for tables.
        file: the pretraining checkpoint's file name in the release.
        sha256: the pinned SHA-256 prefix of `file`.
        lincls_file, lincls_sha256: the linear-evaluation checkpoint.
        base: the SlimCLR base method.
        epochs: pretraining epochs.
        widths: the width list, largest first.
    """

    name: str
    description: str
    file: str
    sha256: str
    lincls_file: str
    lincls_sha256: str
    base: str
    epochs: int
    widths: tuple = (1.0, 0.75, 0.5, 0.25)

    def url(self, lincls=False):
        return RELEASE_URL + (self.lincls_file if lincls else self.file)


PRESETS = {
    preset.name: preset for preset in (
        Preset("slimclr_mocov2_r50_ep200",
               "SlimCLR-MoCo v2, ResNet-50, ImageNet, 200 epochs",
               "slimclr-mocov2-ep200-48213217.pth.tar", "48213217",
               "slimclr-mocov2-ep200-lincls-789b1a3b17.pth.tar", "789b1a3b17",
               "mocov2", 200),
        Preset("slimclr_mocov2_r50_ep800",
               "SlimCLR-MoCo v2, ResNet-50, ImageNet, 800 epochs",
               "slimclr-mocov2-ep800-eda810a6a9.pth.tar", "eda810a6a9",
               "slimclr-mocov2-ep800-lincls-35600f623f.pth.tar", "35600f623f",
               "mocov2", 800),
        Preset("slimclr_mocov3_r50_ep300",
               "SlimCLR-MoCo v3, ResNet-50, ImageNet, 300 epochs",
               "slimclr-mocov3-ep300-57e298e9cd.pth.tar", "57e298e9cd",
               "slimclr-mocov3-ep300-lincls-e35321e95c.pth.tar", "e35321e95c",
               "mocov3", 300),
    )
}


def _preset(name):
    if name not in PRESETS:
        close = difflib.get_close_matches(str(name), PRESETS, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise PresetError(
            f"Unknown preset {name!r}.{hint} Presets: {', '.join(PRESETS)}."
        )
    return PRESETS[name]


def cache_dir(cache_dir=None):
    """`KERAS_SLIM_CACHE`, else `~/.keras/keras_slim` (keras' cache root)."""
    if cache_dir:
        return os.path.abspath(cache_dir)
    if os.environ.get("KERAS_SLIM_CACHE"):
        return os.path.abspath(os.environ["KERAS_SLIM_CACHE"])
    root = os.environ.get("KERAS_HOME", os.path.join("~", ".keras"))
    return os.path.join(os.path.expanduser(root), "keras_slim")


def preset_checkpoint(name, lincls=False, cache=None, origin=None):
    """The local path of a preset's official checkpoint, downloaded if needed.

    Args:
        name: a key of `PRESETS`.
        lincls: the linear-evaluation file instead of the pretraining one.
        cache: cache folder (default: see `cache_dir`).
        origin: URL to fetch from instead of the official one (a mirror of
            the same file, or `file://...`); the hash is checked all the same.

    Returns:
        the path of the verified file, `<cache>/checkpoints/<file name>`.
    """
    preset = _preset(name)
    filename = preset.lincls_file if lincls else preset.file
    expected = preset.lincls_sha256 if lincls else preset.sha256
    folder = os.path.join(cache_dir(cache), "checkpoints")
    path = os.path.join(folder, filename)
    fetched = not os.path.isfile(path)
    if fetched:
        url = origin or preset.url(lincls)
        # keras falls back to /tmp/.keras for a cache folder not yet made.
        os.makedirs(folder, exist_ok=True)
        try:
            downloaded = keras.utils.get_file(
                fname=filename, origin=url, cache_dir=cache_dir(cache),
                cache_subdir="checkpoints",
            )
        except Exception as err:  # keras raises its own wrapped errors
            raise PresetError(
                f"Could not download {filename} for preset {name!r} from "
                f"{url} ({type(err).__name__}: {err}). Offline? Download the "
                f"file elsewhere from {preset.url(lincls)} and put it at "
                f"{path} (or set KERAS_SLIM_CACHE to a folder holding "
                f"checkpoints/{filename})."
            ) from None
        path = downloaded
    _check_hash(path, expected, name, remove=fetched)
    return path


def file_sha256(path):
    """The hexadecimal SHA-256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_hash(path, expected, name, remove):
    actual = file_sha256(path)
    if not actual.startswith(expected):
        if remove:  # our own download: never leave a bad file in the cache
            os.remove(path)
        advice = ("It was deleted; load the preset again." if remove else
                  "Delete it and load the preset again.")
        raise PresetError(
            f"{path} has SHA-256 {actual}, but preset {name!r} pins "
            f"{expected}...: the file is damaged or not the released one. "
            f"{advice}"
        )


def load_preset(name, lincls=False, cache=None, origin=None,
                lincls_origin=None):
    """A released SlimCLR backbone (and its linear probes), converted once.

    The first call downloads the official file(s), checks the SHA-256,
    converts and writes `<cache>/<name>.keras` (and `<name>_lincls/`);
    later calls load those.

    Args:
        name: a key of `PRESETS`.
        lincls: also return the per-width ImageNet classifiers of the
            preset's linear-evaluation checkpoint (and use its backbone).
        cache: cache folder (default `~/.keras/keras_slim`).
        origin, lincls_origin: URLs to fetch from instead of the official
            ones (tests use `file://` URLs).

    Returns:
        a `SlimResNet` taking RGB images in [0, 1], or with `lincls=True`
        `(backbone, {width: keras.layers.Dense})`.

    Example:

    ```python
    import os
    import tempfile

    import numpy as np
    from keras_slim.backbones import SlimResNet
    from keras_slim.convert import load_preset

    # The first call downloads the released file, checks its SHA-256, converts
    # it and caches `<cache>/<name>.keras`; later calls load that. Offline, as
    # here, a cache holding the converted model serves the preset (this one a
    # tiny untrained stand-in).
    cache = tempfile.mkdtemp()
    SlimResNet(depth=50, stem="imagenet", base_width=8, widths=[1.0, 0.5]).save(
        os.path.join(cache, "slimclr_mocov2_r50_ep800.keras"))
    backbone = load_preset("slimclr_mocov2_r50_ep800", cache=cache)
    # The same: SlimResNet.from_preset("slimclr_mocov2_r50_ep800", cache=cache)
    features = backbone(np.zeros((1, 32, 32, 3)), width=0.5)
    ```
    """
    preset = _preset(name)
    folder = cache_dir(cache)
    tag = f"{name}_lincls" if lincls else name
    model_path = os.path.join(folder, f"{tag}.keras")
    heads_dir = os.path.join(folder, tag)
    if os.path.isfile(model_path) and (not lincls or os.path.isdir(heads_dir)):
        backbone = keras.saving.load_model(model_path, compile=False)
        if not lincls:
            return backbone
        return backbone, load_classifiers(heads_dir, preset.widths)
    if lincls:
        path = preset_checkpoint(name, True, cache, lincls_origin)
        backbone, heads = load_slimclr_lincls(path, name=name)
        save_classifiers(heads, heads_dir)
    else:
        path = preset_checkpoint(name, False, cache, origin)
        backbone = load_slimclr(path, name=name)
    with atomic_path(model_path) as tmp:
        backbone.save(tmp)
    return (backbone, heads) if lincls else backbone


def save_classifiers(heads, folder):
    """Per-width classifiers as `<folder>/w<width>.keras` (one Dense each)."""
    os.makedirs(folder, exist_ok=True)
    for width, dense in heads.items():
        features = dense.kernel.shape[0]
        inputs = keras.Input((features,), name="features")
        model = keras.Model(inputs, dense(inputs), name=f"classifier_w{width:g}")
        with atomic_path(os.path.join(folder, f"w{width:g}.keras")) as tmp:
            model.save(tmp)


def load_classifiers(folder, widths=None):
    """The `{width: keras.layers.Dense}` written by `save_classifiers`."""
    heads = {}
    for name in sorted(os.listdir(folder)):
        if not (name.startswith("w") and name.endswith(".keras")):
            continue
        width = float(name[1:-len(".keras")])
        model = keras.saving.load_model(os.path.join(folder, name),
                                        compile=False)
        heads[width] = model.layers[-1]
    if widths is not None and sorted(heads) != sorted(widths):
        raise PresetError(
            f"{folder} holds classifiers for widths {sorted(heads)}, expected "
            f"{sorted(widths)}: the cache is incomplete. Delete it."
        )
    return heads


SlimResNet.preset_loader = staticmethod(load_preset)
