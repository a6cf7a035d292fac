"""`keras-slim convert`: an official checkpoint into a run directory.

The folder it writes has what `keras-slim pretrain` leaves (`config.yaml`,
`backbone.keras`, `results.json`) plus `classifiers/w<width>.keras` when a
linear-evaluation checkpoint is given, so `keras-slim export` and
`keras-slim evaluate` work on it unchanged. SlimCLR checkpoints (a width
list) and US3L checkpoints (a width range, whose BatchNorm statistics
`export` and `evaluate` calibrate on the run's training images) both work.
"""

import os

from keras_slim import convert
from keras_slim.config import load_config
from keras_slim.configs import resolve_config_path
from keras_slim.convert import PRESETS
from keras_slim.convert import preset_checkpoint
from keras_slim.convert import save_classifiers
from keras_slim.convert.presets import file_sha256 as _sha256
from keras_slim.io import atomic_path
from keras_slim.profile import profile
from keras_slim.runs.run_directory import RunDirectory

__all__ = ["convert_run", "CONFIG_OF_LAYOUT"]

# The bundled config whose data, augmentation and evaluation settings a
# converted checkpoint of each layout gets (the paper's ImageNet settings).
CONFIG_OF_LAYOUT = {
    "mocov2": "slimclr_mocov2_imagenet_r50",
    "mocov3": "slimclr_mocov3_imagenet_r50",
    "simclr": "slimclr_simclr_imagenet_r50",
    "backbone": "slimclr_mocov2_imagenet_r50",
    "us3l": "us3l_cifar100_r18",
}


def convert_run(checkpoint, out_dir, lincls=None, config=None, overrides=(),
                image_size=224, overwrite=False, cache=None, log=print):
    """Convert an official SlimCLR checkpoint into a run directory.

    Args:
        checkpoint: a checkpoint path, or a preset name
            (`keras_slim.convert.PRESETS`, downloaded and hash-checked).
        out_dir: the run directory to write.
        lincls: optional linear-evaluation checkpoint (path or preset name):
            its per-width classifiers are written to `classifiers/`, and its
            backbone (the same weights) is used. A linear-evaluation file
            given as `checkpoint` is used the same way.
        config: a config path or bundled name whose data/evaluation settings
            the run gets (default: the paper's ImageNet config of the base).
        overrides: `key=value` strings (e.g. `data.source=/data/imagenet`);
            `backbone.*` comes from the checkpoint and cannot be overridden.
        image_size: image side for the printed FLOPs.
        overwrite: replace a converted backbone already in `out_dir`.
        cache: preset download cache (default `~/.keras/keras_slim`).

    Returns:
        the results dict written to `results.json`.
    """
    path = _resolve(checkpoint, cache)
    lincls_path = _resolve(lincls, cache, lincls=True) if lincls else None
    run = RunDirectory(out_dir)
    if os.path.isfile(run.backbone_path) and not overwrite:
        raise FileExistsError(
            f"{run.backbone_path} exists. Pass --overwrite to replace it, or "
            f"convert into another folder.")
    info = _inspect(path)
    if info["layout"] == "us3l":
        if lincls_path:
            raise ValueError(
                "--lincls takes a SlimCLR linear-evaluation checkpoint; "
                f"{path} is a US3L checkpoint (a width range).")
        backbone, heads = convert.load_us3l(path), None
    else:
        backbone, heads, lincls_path = _load_slimclr(path, info, lincls_path)
    run_config = _config(info, backbone, config, overrides, run.path)
    log(f"{os.path.basename(path)}: {info['layout']} ResNet-"
        f"{backbone.depth}, widths {backbone.widths}")
    results = _describe(backbone, info, path, lincls_path, run_config,
                        image_size)
    _write(run, run_config, backbone, heads, results)
    log(format_cost_table(results))
    log(f"run directory: {run.path}")
    return results


def _resolve(name_or_path, cache, lincls=False):
    if name_or_path in PRESETS:
        return preset_checkpoint(name_or_path, lincls=lincls, cache=cache)
    if not os.path.isfile(name_or_path):
        raise FileNotFoundError(
            f"{name_or_path} is neither a checkpoint file nor a preset "
            f"({', '.join(PRESETS)}).")
    return os.path.abspath(name_or_path)


def _inspect(path):
    """SlimCLR's `inspect_slimclr` info, or `{"layout": "us3l", ...}`."""
    try:
        return convert.inspect_slimclr(path)
    except convert.ConversionError as slimclr_error:
        if "torchvision-style names" not in str(slimclr_error):
            raise
    return dict(convert.inspect_us3l(path), layout="us3l")


def _load_slimclr(path, info, lincls_path):
    if lincls_path is None and "classes" in info:
        lincls_path = path
    if lincls_path is None:
        return convert.load_slimclr(path), None, None
    _check_same_network(info, convert.inspect_slimclr(lincls_path), path,
                        lincls_path)
    backbone, heads = convert.load_slimclr_lincls(lincls_path)
    return backbone, heads, lincls_path


def _check_same_network(info, lincls_info, path, lincls_path):
    for key in ("widths", "base_width", "depth"):
        if info[key] != lincls_info[key]:
            raise ValueError(
                f"{lincls_path} ({key} {lincls_info[key]}) is not a linear "
                f"evaluation of {path} ({key} {info[key]}).")


def _config(info, backbone, config, overrides, out_dir):
    """The run's config: the layout's bundled config, the backbone's settings
    (from the file, not overridable), then `overrides`."""
    for text in overrides:
        if text.split("=", 1)[0].strip().startswith("backbone."):
            raise ValueError(
                f"override {text!r}: the backbone comes from the checkpoint "
                f"and cannot be changed.")
    widths = backbone.widths
    if widths.is_range:
        widths_text = f"{{min: {widths.min_width:g}, max: {widths.max_width:g}}}"
    else:
        widths_text = "[" + ", ".join(f"{w:g}" for w in widths.values) + "]"
    norm = backbone.input_normalization
    norm_text = "null" if norm is None else (
        f"{{mean: {norm['mean']}, std: {norm['std']}}}")
    from_file = [
        "backbone.name=resnet", f"backbone.depth={backbone.depth}",
        f"backbone.stem={backbone.stem}",
        f"backbone.base_width={backbone.base_width}",
        f"backbone.widths={widths_text}", "backbone.synchronized=false",
        f"backbone.padding={backbone.padding}",
        f"backbone.input_normalization={norm_text}",
    ]
    if info["layout"] == "us3l":
        from_file.append("method.name=us3l")
    else:
        from_file.append("method.name=slimclr")
    if info["layout"] in ("mocov2", "mocov3", "simclr"):
        from_file.append(f"method.base={info['layout']}")
    name = os.path.basename(os.path.normpath(out_dir))
    run = [f"name={name}", f"output_dir={out_dir}"]
    path = resolve_config_path(config or CONFIG_OF_LAYOUT[info["layout"]])
    return load_config(path, from_file + run + list(overrides))


def _describe(backbone, info, path, lincls_path, config, image_size):
    shape = (image_size, image_size, 3)
    rows = []
    for width in backbone.widths.stat_widths:
        cost = profile(backbone, width, input_shape=shape)
        rows.append({"width": width, "params": int(cost.params),
                     "flops": int(cost.flops),
                     "feature_dim": backbone.feature_dim(width)})
    source = {"checkpoint": path, "sha256": _sha256(path),
              "layout": info["layout"], "epoch": info.get("epoch")}
    method = "us3l" if info["layout"] == "us3l" else "slimclr"
    if lincls_path:
        source["lincls"] = lincls_path
        source["lincls_sha256"] = _sha256(lincls_path)
    return {"run": config.name, "method": method,
            "dataset": config.data.source, "image_shape": list(shape),
            "converted_from": source, "widths": rows}


def _write(run, config, backbone, heads, results):
    run.start(config)
    with atomic_path(run.backbone_path) as tmp:
        backbone.save(tmp)
    if heads is not None:
        save_classifiers(heads, run.file("classifiers"))
    run.write_json("results.json", results)


def format_cost_table(results):
    """Per width: params, MFLOPs and feature size."""
    side = results["image_shape"][0]
    lines = [f"{'width':>6} {'params':>12} {f'MFLOPs@{side}':>12} "
             f"{'features':>9}"]
    for row in results["widths"]:
        lines.append(f"{row['width']:>6g} {row['params']:>12,} "
                     f"{row['flops'] / 1e6:>12.1f} {row['feature_dim']:>9}")
    return "\n".join(lines)
