"""Real data: SlimCLR vs. individual networks vs. vanilla slimmable SSL; US3L.

Reproduces at CPU scale the claim of SlimCLR (Zhao et al., IJCV 2024) and
US3L (Cao et al., CVPR 2023) on CIFAR-10 or Fashion-MNIST from
`../shared/data`, with a SlimResNet-18 (CIFAR stem, base width 16):

* `slimclr`: one SlimCLR-MoCo v2 run over widths [1.0, 0.5, 0.25] with the
  paper's tricks: distillation of the full width's logits (a = 0.5, T = 5),
  width weights [1.75, 1, 1], and a slow start: for the first half of the
  epochs only the full width trains, then every width joins and the
  learning rate restarts (so the sub-widths get half the training steps of
  the other variants, as in the paper);
* `individual`: the same MoCo v2 pretraining of each width alone (three
  runs, no slow start: a single width has nothing to wait for);
* `vanilla`: all widths every step with none of the tricks (no
  distillation, equal width weights, no slow start);
* `us3l`: US3L (SimCLR base) on the width range [0.25, 1.0], evaluated after
  BatchNorm calibration at 8 evenly spaced widths.

All variants share the seed, the epochs, the batch (256), SGD (momentum
0.9), the `cifar` augmentation preset and the data subset. The claim: SlimCLR
matches or beats the individual networks at each width for less total
training time, and does not lose vanilla's accuracy at full width; US3L does
not collapse at any width (accuracy above random init, feature spread away
from 0). The script prints the differences; it does not decide.

Choices (and why):

* Base MoCo v2 (SlimCLR's CIFAR setting: lr 0.06, weight decay 5e-4, tau
  0.2) with a queue of 4096 keys: it fits in memory and time (the queue is
  a matrix product per step). The queue is capped at half the training
  subset, in whole batches, so that it never holds an older key of the
  image being queried (only the `--tiny` run is affected).
* An individual network of width w is `SlimResNet(base_width=16 w,
  widths=[1.0])`: exactly the layers (and MoCo head) of width w of the
  slimmable network, checked at start-up (parameters and FLOPs equal).
  `SlimResNet(widths=[w])` with w < 1 fails to build (its BatchNorm layers
  infer their channel count from the already sliced input), so it is not
  used.
* US3L: its CIFAR recipe (tau 0.5, EMA 0.99, group regularization 5e-5 in
  place of weight decay, 4 sandwich widths, the 4-phase dynamic range) with
  the learning rate scaled linearly to the batch (0.5 at 512 -> 0.25 at 256)
  and the heads scaled with the backbone (hidden 512 = 4x the 128 features,
  as 2048 is for ResNet-18's 512). Channel divisor 2, not 8: with base width
  16 a divisor of 8 leaves only 8 or 16 channels in the first stage; 2 keeps
  the paper's relative grid (64 / 8). Sampling grid step 0.125 (one channel
  step of the first stage): the default 0.0625 repeats networks there and
  doubles the graph (every grid width is a traced branch).
* Fashion-MNIST stays 28x28 grey (no resize). Horizontal flips are kept: a
  mirrored shirt, shoe or bag is the same class (unlike a digit).
  Saturation, hue and grayscale are no-ops on one channel; crops,
  brightness and contrast remain.
* Evaluation (same for all): kNN (k=200, T=0.1) and a linear probe (cached
  features, 100 epochs) per width; labelled training images = the training
  subset, test = the whole test split (or `--max-test`). The random-init
  baseline is measured on the `slimclr` and `us3l` backbones only (the
  individual and vanilla networks have the same architectures).

Resuming: each run lives in `<out>/<run>/` (default out:
`benchmarks/runs/<dataset>`). A run whose `results.json` exists is skipped;
otherwise `keras_slim.runs.pretrain` resumes from its checkpoint (saved at
epoch ends). Rerun the same command after a kill. `<out>/settings.json`
pins the settings: a rerun with other settings is refused (use another
`--out`). Training time is measured across invocations by a callback adding
each finished epoch's seconds to `<out>/timings.json` (a cut epoch is redone
after resuming and counted once, when it completes); the table uses it.

Time estimates (defaults: 10,000 training images, batch 256, i.e. 39 steps
per epoch; Fashion-MNIST 10 epochs, CIFAR-10 20 epochs). Measured with
`--tiny` (the real network and batch) on this 2-core machine while other
jobs ran (load 1.2-4), Fashion-MNIST: a SlimCLR step 0.78 s at full width
only (slow start) and 1.35 s with all three widths; a US3L step 1.34 s;
tracing before the first step ~2 min for SlimCLR/vanilla, ~4 min for US3L
(its graph holds every phase and grid width), seconds for one width.
Assumed (not measured): individual w0.5 + w0.25 steps ~0.6 s together;
CIFAR-10 steps 1.3x (1.23x the FLOPs, RGB augmentation); evaluation of
10k + 10k images ~12 min (Fashion-MNIST) / ~15 min (CIFAR-10) for all runs.

| run | Fashion-MNIST, 390 steps | CIFAR-10, 780 steps |
|---|---|---|
| slimclr | 9 min | 20 min |
| individual (3 runs) | 10 min | 24 min |
| vanilla | 11 min | 25 min |
| us3l | 12 min | 25 min |
| evaluation | 12 min | 15 min |
| total | ~55 min | ~110 min |

On an idle machine expect less. Usage:

    python -m benchmarks.bench_real_data --dataset fashion_mnist
    python -m benchmarks.bench_real_data --dataset cifar10
    python -m benchmarks.bench_real_data --dataset cifar10 \\
        --variants slimclr,individual               # a part; rerun for more
    python -m benchmarks.bench_real_data --dataset cifar10 --report-only
    python -m benchmarks.bench_real_data --dataset fashion_mnist --tiny

`--tiny` is a smoke run (1,280 images, 2 epochs, short evaluation; ~3 min
per SlimCLR-family run, ~5 min for US3L, mostly tracing) writing to
`benchmarks/runs/<dataset>_tiny/` only. A full run writes
`benchmarks/results/real_data_<dataset>.json` and `.png` and prints the
markdown tables for BENCHMARKS.md.
"""

import argparse
import json
import math
import os
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from benchmarks import _common  # noqa: E402
from keras_slim import profile  # noqa: E402
from keras_slim.backbones import SlimResNet  # noqa: E402
from keras_slim.config import load_config  # noqa: E402
from keras_slim.io import atomic_path  # noqa: E402
from keras_slim.io import write_json_atomic  # noqa: E402
from keras_slim.runs import RunDirectory  # noqa: E402
from keras_slim.runs import pretrain  # noqa: E402
from keras_slim.runs.pretrain import crop_size  # noqa: E402
from keras_slim.runs.pretrain import eval_arrays  # noqa: E402
from keras_slim.runs.pretrain import load_split  # noqa: E402
from keras_slim.runs.report import evaluate_backbone  # noqa: E402
from keras_slim.runs.report import load_backbone  # noqa: E402
from keras_slim.runs.report import write_results  # noqa: E402
from keras_slim.width import width_name  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
VARIANTS = ("slimclr", "individual", "vanilla", "us3l")
WIDTHS = (1.0, 0.5, 0.25)
BASE_WIDTH = 16
QUEUE = 4096
US3L_DIVISOR = 2
# 8 evenly spaced widths of [0.25, 1.0], largest first.
US3L_WIDTHS = tuple(round(1.0 - i * 0.75 / 7, 4) for i in range(8))

DATASETS = {
    "cifar10": dict(path=("cifar10", "cifar10-jpeg.zip"), image_size=32,
                    channels=3, epochs=20, max_examples=10000),
    "fashion_mnist": dict(path=("fashion-mnist",), image_size=28, channels=1,
                          epochs=10, max_examples=10000),
}

# A smoke run: the real network and batch (so its step times are those of
# the full benchmark), few images, two epochs, a short evaluation.
TINY = dict(epochs=2, max_examples=1280, max_test=1000, linear_epochs=5,
            knn_k=20, calibration_batches=2)


# ------------------------------------------------------------------ settings
def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dataset", required=True, choices=sorted(DATASETS))
    parser.add_argument("--data-root",
                        default=os.path.join(REPO, os.pardir, "shared",
                                             "data"),
                        help="folder holding cifar10/ and fashion-mnist/ "
                        "(default: ../shared/data from the repository root)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="pretraining epochs of every run (default: "
                        "cifar10 20, fashion_mnist 10)")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="seeded subset of the train split used for "
                        "pretraining and as the labelled set (default 10000; "
                        "0: the whole split)")
    parser.add_argument("--max-test", type=int, default=None,
                        help="cap on the test images (default: all)")
    parser.add_argument("--batch-size", type=int, default=256,
                        help="every run's batch (the learning rates stay "
                        "those of batch 256: 0.06, US3L 0.25)")
    parser.add_argument("--variants", default=",".join(VARIANTS),
                        help=f"comma-separated, of {', '.join(VARIANTS)}")
    parser.add_argument("--out", default=None,
                        help="run directories (default: "
                        "benchmarks/runs/<dataset>, or <dataset>_tiny)")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke run: 1,280 images, 2 epochs, short "
                        "evaluation; results go to *_tiny names")
    parser.add_argument("--override", action="append", default=[],
                        metavar="KEY=VALUE",
                        help="a config override for every run (repeatable; "
                        "an ablation: use it with --name and its own --out)")
    parser.add_argument("--name", default="",
                        help="results as real_data_<dataset>_<name>.json")
    parser.add_argument("--report-only", action="store_true",
                        help="train nothing: tables, plot and JSON from the "
                        "runs already finished in --out")
    args = parser.parse_args(argv)
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown or not variants:
        parser.error(f"unknown variants {unknown}; choose from "
                     f"{', '.join(VARIANTS)}")
    args.variants = variants
    for name in ("epochs", "max_test", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            parser.error(f"--{name.replace('_', '-')} must be >= 1, got "
                         f"{value}")
    if args.max_examples is not None and args.max_examples < 0:
        parser.error("--max-examples must be >= 0 (0: the whole split)")
    return parser, args


def settings_from_args(parser, args):
    """Everything that defines the experiment (pinned in settings.json)."""
    spec = DATASETS[args.dataset]
    source = os.path.realpath(os.path.join(args.data_root, *spec["path"]))
    if not os.path.exists(source):
        parser.error(f"{source} does not exist. Point --data-root at the "
                     f"folder holding {'/'.join(spec['path'])}.")
    tiny = TINY if args.tiny else {}
    max_examples = _first(args.max_examples, tiny.get("max_examples"),
                          spec["max_examples"])
    batch = args.batch_size
    settings = dict(
        dataset=args.dataset, source=source, tiny=bool(args.tiny),
        image_size=spec["image_size"], channels=spec["channels"],
        epochs=_first(args.epochs, tiny.get("epochs"), spec["epochs"]),
        max_examples=max_examples or None,
        max_test=_first(args.max_test, tiny.get("max_test")),
        batch_size=batch, learning_rate=0.06, us3l_learning_rate=0.25,
        weight_decay=5e-4, seed=0, base_width=BASE_WIDTH,
        widths=list(WIDTHS), us3l_widths=list(US3L_WIDTHS),
        linear_epochs=tiny.get("linear_epochs", 100),
        knn_k=tiny.get("knn_k", 200),
        calibration_batches=tiny.get("calibration_batches", 20),
    )
    settings["queue_size"] = queue_size(max_examples, batch)
    # Only when given: the settings pinned by earlier runs stay valid.
    if args.override:
        settings["extra_overrides"] = list(args.override)
    if args.name:
        settings["name"] = args.name
    return settings


def _first(*values):
    for value in values:
        if value is not None:
            return value
    return None


def queue_size(examples, batch):
    """MoCo queue: 4096 keys, at most half the subset, whole batches.

    An image's previous key must have left the queue before the image comes
    back (one epoch later), or it would be its own negative.
    """
    if not examples:
        return QUEUE
    cap = (examples // 2) // batch * batch
    if cap < batch:
        raise SystemExit(
            f"--max-examples {examples} is too small for batch {batch}: the "
            f"MoCo queue needs at least one batch and half the subset; use "
            f"--max-examples >= {2 * batch}.")
    return min(QUEUE, cap)


def pin_settings(out, settings):
    """Write `<out>/settings.json`, or refuse settings that differ from it."""
    path = os.path.join(out, "settings.json")
    if os.path.isfile(path):
        with open(path) as f:
            pinned = json.load(f)
        changed = [f"{k}: {pinned.get(k)!r} -> {v!r}"
                   for k, v in settings.items() if pinned.get(k) != v]
        if changed:
            raise SystemExit(
                f"{out} holds runs with other settings ({'; '.join(changed)})"
                f". Mixing them would compare different trainings: use "
                f"another --out, or delete {out}.")
        return
    os.makedirs(out, exist_ok=True)
    write_json_atomic(path, settings)


# ------------------------------------------------------------------ configs
def _yaml(value):
    """`value` as one line of YAML for a `key=value` override.

    (JSON would write 5e-05, which YAML reads as a string.)
    """
    # One line (no wrapping), without the "..." end marker of a scalar.
    text = yaml.safe_dump(value, default_flow_style=True, width=10**9)
    return text.splitlines()[0]


def common_overrides(settings, out):
    s = settings
    return [
        f"seed={s['seed']}",
        f"data.source={s['source']}",
        f"data.image_size={s['image_size']}",
        f"data.channels={s['channels']}",
        f"data.max_examples={_yaml(s['max_examples'])}",
        f"data.cache_dir={os.path.join(out, '_cache')}",
        "augmentation.preset=cifar",
        "backbone.name=resnet", "backbone.depth=18", "backbone.stem=cifar",
        f"train.epochs={s['epochs']}",
        f"train.batch_size={s['batch_size']}",
        "train.optimizer=sgd", "train.momentum=0.9",
        "train.warmup_epochs=0", "train.verbose=2",
        "evaluation.knn_every_epochs=0",
        f"evaluation.knn_k={s['knn_k']}",
        "evaluation.knn_temperature=0.1",
        f"evaluation.linear_epochs={s['linear_epochs']}",
        f"evaluation.calibration_batches={s['calibration_batches']}",
    ]


def _moco(settings, slow_start, random_baseline, **options):
    options = dict(queue_size=settings["queue_size"], **options)
    return [
        "method.name=slimclr", "method.base=mocov2",
        f"method.slow_start={slow_start}",
        f"method.options={_yaml(options)}",
        f"train.learning_rate={settings['learning_rate']}",
        f"train.weight_decay={settings['weight_decay']}",
        f"evaluation.random_baseline={_yaml(random_baseline)}",
    ]


def planned_runs(settings, variants):
    """`[(run name, variant, width it stands for or None, overrides)]`."""
    s = settings
    runs = []
    base = s["base_width"]
    if "slimclr" in variants:
        runs.append(("slimclr", "slimclr", None, [
            f"backbone.base_width={base}",
            f"backbone.widths={_yaml(s['widths'])}",
            *_moco(s, 0.5, True)]))
    if "individual" in variants:
        for w in s["widths"]:
            runs.append((f"individual_{width_name(w)}", "individual", w, [
                f"backbone.base_width={individual_base_width(base, w)}",
                "backbone.widths=[1.0]", *_moco(s, 0.0, False)]))
    if "vanilla" in variants:
        runs.append(("vanilla", "vanilla", None, [
            f"backbone.base_width={base}",
            f"backbone.widths={_yaml(s['widths'])}",
            *_moco(s, 0.0, False, distill_weight=0.0,
                   width_weights=[1.0] * len(s["widths"]))]))
    if "us3l" in variants:
        widths = {"min": min(s["us3l_widths"]), "max": max(s["us3l_widths"]),
                  "divisor": US3L_DIVISOR, "stat_widths": s["us3l_widths"]}
        options = dict(num_widths=3, temperature=0.5, momentum=0.99,
                       # 4x the backbone's 8*base features, as US3L's 2048
                       # hidden units are for ResNet-18's 512.
                       projection_dim=256, hidden_dim=4 * 8 * base,
                       group_lambda=5e-5,
                       # One grid step = one channel step of the first stage
                       # (divisor 2 of 16): no two grid widths are the same
                       # network there, and half the default grid's branches
                       # to trace (every grid width is a graph branch).
                       grid_step=US3L_DIVISOR / base)
        runs.append(("us3l", "us3l", None, [
            f"backbone.base_width={base}",
            f"backbone.widths={_yaml(widths)}",
            "method.name=us3l", "method.base=simclr", "method.slow_start=0",
            f"method.options={_yaml(options)}",
            f"train.learning_rate={s['us3l_learning_rate']}",
            "train.weight_decay=0",
            "evaluation.random_baseline=true"]))
    return runs


def individual_base_width(base, width):
    value = base * width
    if abs(value - round(value)) > 1e-9:
        raise SystemExit(f"width {width} of base width {base} is not a "
                         f"whole channel count")
    return int(round(value))


def check_individual_architectures(settings):
    """The width-w slice of the slimmable network == the base-16w network."""
    shape = (settings["image_size"], settings["image_size"],
             settings["channels"])
    base = settings["base_width"]
    slim = SlimResNet(depth=18, stem="cifar", base_width=base,
                      widths=settings["widths"], input_shape=(None, None,
                                                              shape[-1]))
    for w in settings["widths"]:
        plain = SlimResNet(depth=18, stem="cifar",
                           base_width=individual_base_width(base, w),
                           widths=[1.0], input_shape=(None, None, shape[-1]))
        a, b = profile(slim, w, input_shape=shape), profile(plain, 1.0,
                                                           input_shape=shape)
        if (a.params, a.flops) != (b.params, b.flops):
            raise SystemExit(
                f"width {w}: the slimmable slice has {a.params} params / "
                f"{a.flops} FLOPs but the individual network {b.params} / "
                f"{b.flops}; the comparison would not be like for like.")
    keras.backend.clear_session()


# ------------------------------------------------------------------ timing
class Timings:
    """`<out>/timings.json`: training and evaluation seconds per run,
    accumulated over every invocation of the script."""

    def __init__(self, out):
        self.path = os.path.join(out, "timings.json")
        self.data = {}
        if os.path.isfile(self.path):
            with open(self.path) as f:
                self.data = json.load(f)

    def entry(self, run):
        return self.data.setdefault(run, {
            "train_seconds": 0.0, "epochs_timed": 0, "eval_seconds": 0.0,
            "invocations": 0, "step_seconds_median": None})

    def save(self):
        write_json_atomic(self.path, self.data)


class TrainClock(keras.callbacks.Callback):
    """Adds each finished epoch's seconds to `Timings` and saves them.

    Counting at epoch ends (where the run checkpoints) counts the training a
    resumed run keeps, across invocations; a cut epoch is counted once, when
    its rerun completes. Also records the median step time (the first steps
    of each `fit` are tracing, left out).
    """

    def __init__(self, timings, run):
        super().__init__()
        self.timings = timings
        self.run = run
        self.mark = None
        self.step_times = []
        self.epoch_times = []

    def on_train_begin(self, logs=None):
        self.mark = time.perf_counter()
        self._batch_start = None
        self._batches = 0

    def on_train_batch_begin(self, batch, logs=None):
        self._batch_start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None):
        float(logs["loss"])  # waits for the step: the time is its own
        self._batches += 1
        if self._batches > 2:
            self.epoch_times.append(time.perf_counter() - self._batch_start)

    def on_epoch_end(self, epoch, logs=None):
        now = time.perf_counter()
        entry = self.timings.entry(self.run)
        entry["train_seconds"] = round(entry["train_seconds"]
                                       + now - self.mark, 2)
        entry["epochs_timed"] += 1
        if self.epoch_times:
            # Per epoch: SlimCLR's slow start changes the step's cost.
            entry.setdefault("step_seconds_by_epoch", {})[str(epoch + 1)] = (
                round(float(np.median(self.epoch_times)), 4))
            self.step_times += self.epoch_times
            entry["step_seconds_median"] = round(
                float(np.median(self.step_times)), 4)
        self.epoch_times = []
        self.timings.save()
        self.mark = now


# ------------------------------------------------------------------ one run
def run_one(name, overrides, settings, out, timings):
    """Pretrain (or resume) and evaluate one run; return its results."""
    run = RunDirectory(os.path.join(out, name))
    previous = run.read_json("results.json")
    if previous is not None:
        print(f"[{name}] finished earlier: {run.results_path}", flush=True)
        return previous
    config = load_config(None, [f"name={name}", f"output_dir={run.path}",
                                *common_overrides(settings, out),
                                *overrides,
                                *settings.get("extra_overrides", [])])
    log = _logger(name)
    entry = timings.entry(name)
    entry["invocations"] += 1
    timings.save()
    keras.backend.clear_session()
    clock = TrainClock(timings, name)
    summary = pretrain(config, run_dir=run.path, callbacks=[clock],
                       evaluate=False, log=log)
    started = time.perf_counter()
    results = evaluate(config, run, settings, log)
    results["train_seconds"] = round(summary["train_seconds"], 1)
    write_results(run, config, results, log=log)
    entry = timings.entry(name)
    entry["eval_seconds"] = round(entry["eval_seconds"]
                                  + time.perf_counter() - started, 2)
    timings.save()
    return results


def _logger(name):
    def log(line):
        for part in str(line).splitlines():
            print(f"[{name}] {part}", flush=True)
    return log


def evaluate(config, run, settings, log):
    """kNN / linear per width on the subset (train) and the full test split.

    `pretrain`'s own evaluation would cap the test split with
    `data.max_examples` too; a budget run keeps the whole test split.
    """
    size = crop_size(config)
    train = eval_arrays(load_split(config, "train_split"), size)
    uncapped = dict(config, data=dict(config["data"], max_examples=None))
    test = eval_arrays(load_split(uncapped, "test_split",
                                  settings["max_test"]), size)
    backbone = load_backbone(run)
    results = evaluate_backbone(config, backbone, train, test, log=log)
    # evaluate_backbone calibrated a range's statistics in place.
    for row in results["widths"]:
        row["feature_spread"] = feature_spread(backbone, row["width"],
                                               test[0][:2048])
    history = run.read_json("history.json", default=[]) or []
    if history:
        last = history[-1]
        results["last_epoch_embedding_std"] = {
            k.split("/")[0]: round(float(v), 4) for k, v in last.items()
            if k.endswith("/embedding_std")}
    results["epochs"] = config["train"]["epochs"]
    results["train_examples"] = int(len(train[1]))
    results["test_examples"] = int(len(test[1]))
    return results


def feature_spread(backbone, width, images):
    """`sqrt(d) * mean_d std(f / |f|)` of the backbone features at `width`.

    0 when every image maps to one direction (collapse); larger when the
    features spread (1 for directions uniform on the sphere; ReLU features
    are non-negative, so healthy values are lower).
    """
    features = backbone.predict(images, width=width, verbose=0,
                                batch_size=256)
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    unit = features / np.maximum(norms, 1e-12)
    return round(float(unit.std(axis=0).mean() * math.sqrt(unit.shape[1])),
                 4)


# ------------------------------------------------------------------ report
def collect(settings, out, timings):
    """Finished runs of `out`, per variant, with widths relabelled."""
    found = {}
    for name, variant, width, _ in planned_runs(settings, VARIANTS):
        results = RunDirectory(os.path.join(out, name)).read_json(
            "results.json")
        if results is None:
            continue
        rows = [dict(r) for r in results["widths"]]
        if width is not None:
            # The base-16w network at its width 1.0 is width w of the others.
            rows[0]["width"] = width
        entry = timings.data.get(name, {})
        found.setdefault(variant, {"runs": {}, "rows": []})
        found[variant]["runs"][name] = dict(
            train_seconds=entry.get("train_seconds") or results.get(
                "train_seconds"),
            last_invocation_train_seconds=results.get("train_seconds"),
            eval_seconds=entry.get("eval_seconds"),
            epochs_timed=entry.get("epochs_timed"),
            invocations=entry.get("invocations"),
            step_seconds_median=entry.get("step_seconds_median"),
            last_epoch_embedding_std=results.get("last_epoch_embedding_std"),
        )
        found[variant]["rows"] += rows
    for variant in found.values():
        variant["rows"].sort(key=lambda r: -r["width"])
        variant["train_seconds"] = sum(
            r["train_seconds"] or 0 for r in variant["runs"].values())
    return found


def _pct(value):
    return "-" if value is None else f"{100 * value:.1f}"


def _row_at(variant, width):
    for row in (variant or {}).get("rows", []):
        if abs(row["width"] - width) < 1e-6:
            return row
    return {}


def comparison_table(found, settings):
    names = ("slimclr", "individual", "vanilla")
    head = ("| width | params | MFLOPs | "
            + " | ".join(f"kNN {n}" for n in names) + " | kNN random | "
            + " | ".join(f"linear {n}" for n in names) + " | linear random |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for w in settings["widths"]:
        rows = {n: _row_at(found.get(n), w) for n in names}
        cost = next((r for r in rows.values() if r), {})
        if not cost:
            continue
        slim = rows["slimclr"]
        cells = [f"{w:g}", f"{cost['params']:,}",
                 f"{cost['flops'] / 1e6:.1f}"]
        cells += [_pct(rows[n].get("knn_top1")) for n in names]
        cells.append(_pct(slim.get("random_knn_top1")))
        cells += [_pct(rows[n].get("linear_top1")) for n in names]
        cells.append(_pct(slim.get("random_linear_top1")))
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def time_table(found):
    lines = ["| variant | runs | training time (min) | median step (s) | "
             "evaluation (min) |", "|---|---|---|---|---|"]
    for variant in VARIANTS:
        if variant not in found:
            continue
        runs = found[variant]["runs"].values()
        steps = [r["step_seconds_median"] for r in runs
                 if r["step_seconds_median"]]
        evals = [r["eval_seconds"] for r in runs if r["eval_seconds"]]
        lines.append(
            f"| {variant} | {len(runs)} | "
            f"{found[variant]['train_seconds'] / 60:.1f} | "
            f"{' + '.join(f'{s:.2f}' for s in steps) or '-'} | "
            f"{sum(evals) / 60:.1f} |")
    return "\n".join(lines)


def time_ratio(found, settings):
    """slimclr training time / the sum of the individual runs' times."""
    individual = found.get("individual", {}).get("runs", {})
    if "slimclr" not in found or len(individual) != len(settings["widths"]):
        return None
    total = sum(r["train_seconds"] or 0 for r in individual.values())
    return found["slimclr"]["train_seconds"] / total if total else None


def claims(found, settings):
    """The numbers the claim is judged on (accuracy differences in points).

    `slimclr_minus_individual`: per width, SlimCLR's top-1 minus the
    individually trained network's; `slimclr_minus_vanilla_full`: the same
    against vanilla at width 1.0; `us3l_smallest_margin_over_random`: the
    smallest (pretrained - random init) top-1 over the 8 US3L widths.
    """
    result = {}
    slim = found.get("slimclr")
    for other, key in (("individual", "slimclr_minus_individual"),
                       ("vanilla", "slimclr_minus_vanilla")):
        if not slim or other not in found:
            continue
        result[key] = {}
        for w in settings["widths"]:
            a, b = _row_at(slim, w), _row_at(found[other], w)
            if a and b:
                result[key][width_name(w)] = {
                    p: round(100 * (a[f"{p}_top1"] - b[f"{p}_top1"]), 2)
                    for p in ("knn", "linear")}
    us3l = found.get("us3l", {}).get("rows", [])
    if us3l and all("random_knn_top1" in r for r in us3l):
        result["us3l_smallest_margin_over_random"] = {
            p: round(min(100 * (r[f"{p}_top1"] - r[f"random_{p}_top1"])
                         for r in us3l), 2) for p in ("knn", "linear")}
        result["us3l_smallest_feature_spread"] = min(
            r["feature_spread"] for r in us3l)
    ratio = time_ratio(found, settings)
    if ratio is not None:
        result["slimclr_over_individual_time"] = round(ratio, 3)
    return result


def claims_text(numbers):
    lines = []
    for key, title in (("slimclr_minus_individual",
                        "SlimCLR - individual networks"),
                       ("slimclr_minus_vanilla", "SlimCLR - vanilla")):
        if numbers.get(key):
            lines.append(f"{title} (top-1 points, kNN / linear): " + "; ".join(
                f"{w} {d['knn']:+.1f} / {d['linear']:+.1f}"
                for w, d in numbers[key].items()))
    if "slimclr_over_individual_time" in numbers:
        lines.append("SlimCLR training time / sum of the individual runs: "
                     f"{numbers['slimclr_over_individual_time']:.2f}")
    return "\n\n".join(lines)


def us3l_claims_text(numbers):
    lines = []
    if "us3l_smallest_margin_over_random" in numbers:
        margin = numbers["us3l_smallest_margin_over_random"]
        lines.append(
            f"US3L, smallest margin over random init across its widths: kNN "
            f"{margin['knn']:+.1f}, linear {margin['linear']:+.1f} points; "
            f"smallest feature spread "
            f"{numbers['us3l_smallest_feature_spread']:.3f}")
    return "\n\n".join(lines)


def us3l_table(found):
    rows = found.get("us3l", {}).get("rows", [])
    if not rows:
        return ""
    lines = ["| width | params | MFLOPs | kNN | kNN random | linear | "
             "linear random | feature spread |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['width']:g} | {r['params']:,} | {r['flops'] / 1e6:.1f} | "
            f"{_pct(r.get('knn_top1'))} | {_pct(r.get('random_knn_top1'))} | "
            f"{_pct(r.get('linear_top1'))} | "
            f"{_pct(r.get('random_linear_top1'))} | "
            f"{r.get('feature_spread', '-')} |")
    return "\n".join(lines)


def markdown(found, settings, machine):
    s = settings
    subset = s["max_examples"] or "all"
    tiny = " (tiny smoke run)" if s["tiny"] else ""
    parts = [
        f"#### Real data, {s['dataset']}{tiny}: "
        f"SlimResNet-18 (CIFAR stem, base width {s['base_width']}), "
        f"{s['epochs']} epochs on {subset} training images, batch "
        f"{s['batch_size']}, MoCo v2 (queue {s['queue_size']})",
        machine, "",
        "Top-1 (%) per width (kNN k="
        f"{s['knn_k']}, linear probe {s['linear_epochs']} epochs; random = "
        "random-init SlimResNet):", "",
        comparison_table(found, s), "",
        time_table(found), "",
    ]
    numbers = claims(found, s)
    if claims_text(numbers):
        parts += [claims_text(numbers), ""]
    table = us3l_table(found)
    if table:
        parts += ["US3L on [0.25, 1.0], BN calibrated per width "
                  "(feature spread: sqrt(d) * mean std of normalized "
                  "features, 0 = collapse):", "", table, ""]
        if us3l_claims_text(numbers):
            parts += [us3l_claims_text(numbers), ""]
        std = next(iter(found["us3l"]["runs"].values())).get(
            "last_epoch_embedding_std")
        if std:
            parts += ["Last-epoch projector embedding std (collapse: 0; "
                      "spread over the sphere: 1/sqrt(256) = 0.0625): "
                      + ", ".join(f"{k} {v:.4f}" for k, v in std.items()), ""]
    return "\n".join(parts)


_STYLES = {"slimclr": ("SlimCLR", "o-"), "individual": ("individual", "s-"),
           "vanilla": ("vanilla", "^-"), "us3l": ("US3L", "d-")}


def _log_ticks(found):
    flops = [r["flops"] / 1e6 for v in found.values() for r in v["rows"]]
    ticks = [m * 10**e for e in range(-2, 5) for m in (1, 2, 5)]
    return [t for t in ticks if min(flops) / 1.2 <= t <= max(flops) * 1.2]


def plot(found, settings, path):
    """Accuracy vs. MFLOPs, kNN and linear, one line per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    for ax, (key, title) in zip(axes, (("knn_top1", "kNN"),
                                       ("linear_top1", "linear probe"))):
        for variant, (label, style) in _STYLES.items():
            rows = [r for r in found.get(variant, {}).get("rows", [])
                    if key in r]
            if rows:
                ax.plot([r["flops"] / 1e6 for r in rows],
                        [100 * r[key] for r in rows], style, label=label)
        for variant, color in (("slimclr", "0.4"), ("us3l", "0.7")):
            rows = [r for r in found.get(variant, {}).get("rows", [])
                    if "random_" + key in r]
            if rows:
                ax.plot([r["flops"] / 1e6 for r in rows],
                        [100 * r["random_" + key] for r in rows], ":",
                        color=color,
                        label=f"random init, {_STYLES[variant][0]} network")
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(ticker.NullFormatter())
        ax.set_xticks(_log_ticks(found))
        ax.set_xlabel("MFLOPs (multiply-adds) per image")
        ax.set_title(f"{settings['dataset']}: {title}")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("top-1 accuracy (%)")
    axes[1].legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=120)
    plt.close(figure)


def report(settings, out):
    timings = Timings(out)
    found = collect(settings, out, timings)
    if not found:
        print(f"no finished runs in {out} yet")
        return
    name = f"real_data_{settings['dataset']}"
    if settings.get("name"):
        name += f"_{settings['name']}"
    machine = _common.machine()
    text = markdown(found, settings, machine)
    payload = dict(machine=machine, settings=settings, variants=found,
                   claims=claims(found, settings), markdown=text)
    if settings["tiny"]:
        # A smoke run never replaces the benchmark's results.
        png = os.path.join(out, f"{name}_tiny.png")
        path = os.path.join(out, f"{name}_tiny.json")
        write_json_atomic(path, payload)
    else:
        png = os.path.join(HERE, "results", f"{name}.png")
        path = _common.write_result(name, payload)
    plot(found, settings, png)
    print(text)
    print(f"written {path} and {png}")


# ------------------------------------------------------------------ main
def main(argv=None):
    parser, args = parse_args(argv)
    settings = settings_from_args(parser, args)
    suffix = "_tiny" if args.tiny else ""
    out = os.path.abspath(args.out or os.path.join(
        HERE, "runs", f"{args.dataset}{suffix}"))
    pin_settings(out, settings)
    if not args.report_only:
        check_individual_architectures(settings)
        timings = Timings(out)
        for name, _, _, overrides in planned_runs(settings, args.variants):
            run_one(name, overrides, settings, out, timings)
    report(settings, out)


if __name__ == "__main__":
    main()
