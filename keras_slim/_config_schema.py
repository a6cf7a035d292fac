"""The run configuration's schema: every key, its kinds, default and check."""

from keras_slim.methods import base_names
from keras_slim.methods import recipe_names
from keras_slim.width import Widths


class Field:
    """One configuration value: accepted kinds, default, optional check."""

    def __init__(self, kind, default, choices=None, check=None, doc=""):
        self.kind = kind
        self.default = default
        self.choices = choices
        self.check = check
        self.doc = doc


# ------------------------------------------------------------------ checks
def _positive(value):
    return None if value > 0 else "must be > 0"


def _non_negative(value):
    return None if value >= 0 else "must be >= 0"


def _fraction(value):
    return None if 0 <= value < 1 else "must be in [0, 1)"


def _open_fraction(value):
    return None if 0 < value <= 1 else "must be in (0, 1]"


def _crop_scale(value):
    if (len(value) != 2 or not all(_is_number(v) for v in value)
            or not 0 < value[0] <= value[1] <= 1):
        return f"expected [low, high] with 0 < low <= high <= 1, got {value}"
    return None


def _fractions(value):
    bad = [v for v in value if not 0 < v <= 1]
    return f"every fraction must be in (0, 1], got {bad}" if bad else None


def _image_size(value):
    if value is None:
        return None
    return None if value >= 4 else "must be >= 4 pixels (or null: keep)"


def _check_widths(value):
    """A descending width list, or a range mapping {min, max[, ...]}."""
    if isinstance(value, dict):
        allowed = {"min", "max", "divisor", "stat_widths"}
        unknown = sorted(set(value) - allowed)
        if unknown:
            return (f"unknown range keys {unknown}; a range takes "
                    f"{sorted(allowed)}")
        if "min" not in value or "max" not in value:
            return "a width range needs both `min` and `max`"
    elif isinstance(value, list):
        if not value:
            return "give at least one width"
        if any(not _is_number(v) for v in value):
            return f"widths must be numbers, got {value}"
    else:
        return ("expected a list of widths such as [1.0, 0.5, 0.25] or a "
                "range such as {min: 0.25, max: 1.0}")
    try:
        widths_object(value)
    except ValueError as err:
        return str(err)
    return None


def widths_object(value):
    """The `Widths` of a config's `backbone.widths` (a list or a range)."""
    if isinstance(value, dict):
        kwargs = {"min_width": value["min"], "max_width": value["max"]}
        if "divisor" in value:
            kwargs["divisor"] = value["divisor"]
        if "stat_widths" in value:
            kwargs["stat_widths"] = value["stat_widths"]
        return Widths(**kwargs)
    return Widths(value)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


# ------------------------------------------------------------------ schema
SCHEMA = {
    "name": Field(str, "run", doc="run name (the run directory's default)"),
    "seed": Field(int, 0, check=_non_negative),
    "output_dir": Field((str, type(None)), None,
                        doc="run directory (default: runs/<name>)"),
    "data": {
        "source": Field(str, "digits", doc=(
            "digits | a TFDS name (cifar10, ...) | a folder of class "
            "subfolders | a .zip of one | a folder of IDX files")),
        "data_dir": Field((str, type(None)), None),
        "train_split": Field(str, "train"),
        "test_split": Field(str, "test"),
        "image_size": Field((int, type(None)), None, check=_image_size,
                            doc="square side the images are resized to"),
        "channels": Field((int, type(None)), None, choices=[None, 1, 3]),
        "max_examples": Field((int, type(None)), None, doc=(
            "use a seeded subset of this many training images")),
        "max_test_examples": Field((int, type(None)), None, doc=(
            "use a seeded subset of this many test images")),
        "on_corrupt": Field(str, "fail", choices=["fail", "skip"]),
        "cache_dir": Field((str, type(None)), None),
        "stream": Field(bool, False, doc=(
            "leave the training images on disk and decode them batch by "
            "batch (a folder source too large for memory, e.g. ImageNet); "
            "needs data.image_size")),
    },
    "augmentation": {
        "preset": Field(str, "mocov2",
                        choices=["simclr", "mocov2", "byol", "small", "cifar"]),
        "crop_size": Field((int, type(None)), None, check=_image_size,
                           doc="view side (default: data.image_size)"),
        "options": Field(dict, {}, doc="overrides of the preset's fields"),
    },
    "backbone": {
        "name": Field(str, "resnet", choices=["resnet", "mobilenet_v2"]),
        "depth": Field(int, 18, choices=[18, 34, 50, 101, 152]),
        "stem": Field(str, "cifar", choices=["cifar", "imagenet"]),
        "base_width": Field(int, 64, check=_positive),
        "widths": Field((list, dict), [1.0, 0.75, 0.5, 0.25],
                        check=_check_widths),
        "synchronized": Field(bool, False),
        "zero_init_residual": Field(bool, False, doc=(
            "resnet: start each block's last BN gamma at 0 (official "
            "SlimCLR s_resnet.py does)")),
        "padding": Field(str, "same", choices=["same", "symmetric"], doc=(
            "resnet: 'symmetric' pads like PyTorch (converted checkpoints)")),
        "input_normalization": Field((dict, type(None)), None, doc=(
            "resnet: {mean: [...], std: [...]} applied inside the network")),
    },
    "method": {
        "name": Field(str, "slimclr", choices=list(recipe_names())),
        "base": Field((str, type(None)), None, doc="; ".join(
            f"{n}: {' | '.join(base_names(n))}" for n in recipe_names())),
        "slow_start": Field(float, 0.0, check=_fraction, doc=(
            "SlimCLR: fraction of training on the full width only, then a "
            "learning-rate restart")),
        "options": Field(dict, {}, doc="other keyword arguments of the recipe"),
    },
    "train": {
        "epochs": Field(int, 100, check=_positive),
        "batch_size": Field(int, 256, check=_positive),
        "optimizer": Field(str, "sgd", choices=[
            "sgd", "sgd_decoupled", "lars", "adamw", "lamb"], doc=(
            "sgd: torch.optim.SGD's coupled L2 decay (the official code); "
            "sgd_decoupled: Keras' SGD (decay outside the momentum)")),
        "learning_rate": Field(float, 0.06, check=_positive),
        "momentum": Field(float, 0.9, check=_fraction),
        "weight_decay": Field(float, 5e-4, check=_non_negative),
        "warmup_epochs": Field(float, 0.0, check=_non_negative),
        "final_learning_rate": Field(float, 0.0, check=_non_negative),
        "slow_start_schedule": Field(str, "official", choices=[
            "official", "restart"], doc=(
            "official: one cosine over the run whose scale becomes "
            "restart_learning_rate at slim start (SlimCLR's main_ssl.py); "
            "restart: a second warm cosine from restart_learning_rate")),
        "learning_rate_per": Field(str, "auto", choices=[
            "auto", "batch", "epoch"], doc=(
            "when the rate changes: auto follows the recipe's official code "
            "(us3l: epoch, workers/ssl.py adjust_learning_rate; slimclr and "
            "dspnet: batch)")),
        "restart_learning_rate": Field((float, type(None)), None, doc=(
            "official: the cosine's scale after slim start (default 1e-4, "
            "the official --slim_start_lr default); restart: the restart's "
            "peak (default learning_rate)")),
        "jit_compile": Field(bool, False),
        "mixed_precision": Field((str, type(None)), None,
                                 choices=[None, "mixed_float16",
                                          "mixed_bfloat16"]),
        "strategy": Field(str, "default",
                          choices=["default", "mirrored", "multi_worker"]),
        "checkpoint_every_steps": Field(int, 0, check=_non_negative, doc=(
            "also back up mid-epoch every N steps (0: at epoch ends)")),
        "verbose": Field(int, 1, choices=[0, 1, 2], doc=(
            "1: compact per-width progress; 2: Keras' line per epoch with "
            "every metric; 0: silent")),
    },
    "evaluation": {
        "knn_every_epochs": Field(int, 0, check=_non_negative,
                                  doc="kNN monitor period (0: off)"),
        "knn_k": Field(int, 200, check=_positive),
        "knn_temperature": Field(float, 0.1, check=_positive),
        "max_train_examples": Field((int, type(None)), None, doc=(
            "cap on the labelled training images used by kNN and probes")),
        "linear_epochs": Field(int, 100, check=_positive),
        "linear_learning_rate": Field(float, 0.01, check=_positive),
        "paper_learning_rate": Field(float, 60.0, check=_positive, doc=(
            "SGD rate of the 'paper' linear protocol (MoCo v2 script: 60; "
            "x0.1 at 60% and 80% of evaluation.linear_epochs)")),
        "joint_probe": Field(bool, False),
        "random_baseline": Field(bool, True),
        "require_beating_baseline": Field(bool, False, doc=(
            "fail the run (exit status 3) if a width's pretrained kNN or "
            "linear accuracy does not beat the random-init baseline")),
        "semi_supervised": Field(list, [], check=_fractions, doc=(
            "label fractions for semi-supervised fine-tuning, e.g. [0.01, 0.1]")),
        "semi_supervised_epochs": Field(int, 30, check=_positive),
        "calibration_batches": Field(int, 20, check=_positive, doc=(
            "BN calibration batches per width (width ranges only)")),
        "eval_widths": Field((list, type(None)), None, doc=(
            "widths to evaluate (default: the list, or the range's "
            "stat_widths)")),
    },
    "finetune": {
        "source": Field((str, type(None)), None, doc=(
            "the pretraining run directory (or `keras-slim convert` output) "
            "whose backbone.keras is fine-tuned; set by `keras-slim finetune "
            "RUN_DIR`")),
        "epochs": Field(int, 100, check=_positive, doc=(
            "official SlimCLR main_slim.py (scripts/slimmable.sh): 100")),
        "batch_size": Field(int, 256, check=_positive),
        "optimizer": Field(str, "sgd", choices=["sgd", "sgd_decoupled",
                                                "adamw"], doc=(
            "sgd: torch.optim.SGD's coupled L2 decay, as main_slim.py")),
        "learning_rate": Field(float, 0.1, check=_positive, doc=(
            "peak of the cosine (main_slim.py: 0.1)")),
        "momentum": Field(float, 0.9, check=_fraction),
        "weight_decay": Field(float, 1e-4, check=_non_negative, doc=(
            "main_slim.py: 1e-4, none on BatchNorm and biases")),
        "warmup_fraction": Field(float, 0.05, check=_fraction, doc=(
            "linear warm-up, as a fraction of all steps (main_slim.py: 0.05)")),
        "label_smoothing": Field(float, 0.0, check=_fraction),
        "inplace_distillation": Field((bool, type(None)), None, doc=(
            "null: labels at every width of a list, in-place distillation "
            "for a range (the official codes); true / false forces either")),
        "num_random_widths": Field(int, 2, check=_non_negative, doc=(
            "width range: widths drawn per step between the largest and the "
            "smallest (US-Nets' sandwich rule: 2)")),
        "label_fraction": Field((float, type(None)), None,
                                check=_open_fraction, doc=(
            "fine-tune on a seeded, class-balanced fraction of the training "
            "labels (semi-supervised: 0.01, 0.1); null: all")),
        "crop_scale": Field(list, [0.08, 1.0], check=_crop_scale, doc=(
            "random-resized crop area range (torchvision's default)")),
        "random_baseline": Field(bool, True, doc=(
            "also fine-tune the same architecture from random init, "
            "reported beside the pretrained one")),
    },
}
