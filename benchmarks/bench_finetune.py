"""Fine-tuning every width at once: pretrained vs. random init vs. one by one.

    python -m benchmarks.bench_finetune \
        --pretrained benchmarks/runs/cifar10_restart/slimclr/backbone.keras

On CIFAR-10 from `../shared/data`, with labels, three ways to get a
classifier at each width of a slimmable SlimResNet-18:

* `slim_pretrained`: one `keras_slim.tasks.SlimClassifier` fit from the
  SlimCLR-pretrained backbone (every width in each step, each on the
  labels, one update: the default for a width list);
* `slim_random`: the same fit from a random initialization of the same
  architecture;
* `slim_pretrained_distill`, `slim_random_distill`: the same two with
  `inplace_distillation=True` (the sub-widths learn the largest width's
  detached predictions, US-Nets' recipe);
* `individual_pretrained`: what keras_slim offered before: each width's
  `backbone.subnetwork(w)` (a plain Keras model holding the pretrained
  weights of that width) with a `Dense` classifier, fine-tuned alone, one
  run per width.

All share the data subset, the seed, the epochs, the batch, the optimizer
(`CoupledSGD`, momentum 0.9, weight decay 5e-4, PyTorch's coupled L2; cosine
rate from `--learning-rate`) and the augmentation
(`keras_slim.data.SupervisedAugmentation`: random-resized crop of scale
[0.25, 1] and a flip). Reported per width: test top-1; per variant: the
training time (fit only, no evaluation), and for the individual networks
the sum over widths.

The pretrained backbone comes from `benchmarks.bench_real_data --dataset
cifar10` (BENCHMARKS 4b, its `slimclr` run): run that first where it is
missing. Each finished variant is stored in the output JSON at once; a rerun
skips the variants already there (`--force` redoes them), so the variants
can run in separate invocations: `--variants slim_random`.
"""

import argparse
import json
import os
import time

import keras_slim  # noqa: F401  (first: it switches oneDNN kernels on)

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from benchmarks._common import git_commit  # noqa: E402
from benchmarks._common import machine  # noqa: E402
from keras_slim.data import SupervisedAugmentation
from keras_slim.data import load
from keras_slim.optimizers import CoupledSGD
from keras_slim.optimizers import WarmupCosine
from keras_slim.tasks import SlimClassifier

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, os.pardir, os.pardir, "shared", "data", "cifar10",
                    "cifar10-jpeg.zip")
VARIANTS = ("slim_pretrained", "slim_random", "individual_pretrained",
            "slim_pretrained_distill", "slim_random_distill")


def _arguments():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pretrained", required=True,
                        help="a pretrained backbone .keras file")
    parser.add_argument("--data", default=DATA)
    parser.add_argument("--cache-dir", default=None)
    parser.add_argument("--train", type=int, default=5000)
    parser.add_argument("--test", type=int, default=2000)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--out", default=os.path.join(
        HERE, "results", "finetune_cifar10.json"))
    parser.add_argument("--force", action="store_true")
    return parser.parse_args()


def _batches(images, labels, args, steps):
    augment = SupervisedAugmentation(images.shape[1], crop_scale=(0.25, 1.0))
    data = tf.data.Dataset.from_tensor_slices((images, labels))
    data = data.shuffle(len(images), seed=args.seed).repeat()
    data = data.batch(args.batch_size, drop_remainder=True).enumerate()
    data = data.map(lambda i, batch: augment(
        batch, seed=tf.stack([tf.constant(args.seed, tf.int64), i])))
    return data.take(steps).prefetch(2)


def _optimizer(args, steps):
    schedule = WarmupCosine(args.learning_rate, total_steps=steps)
    return CoupledSGD(schedule, momentum=0.9, weight_decay=5e-4)


def _fit(model, images, labels, args):
    per_epoch = len(images) // args.batch_size
    steps = per_epoch * args.epochs
    model.compile(optimizer=_optimizer(args, steps), **_losses(model))
    start = time.perf_counter()
    model.fit(_batches(images, labels, args, steps), epochs=args.epochs,
              steps_per_epoch=per_epoch, verbose=2)
    return time.perf_counter() - start


def _losses(model):
    if isinstance(model, SlimClassifier):
        return {}
    return {"loss": keras.losses.SparseCategoricalCrossentropy(
        from_logits=True), "metrics": ["accuracy"]}


def _top1(logits, labels):
    return float(np.mean(np.argmax(logits, -1) == labels))


def _slim(backbone, data, args, distill=False):
    train_x, train_y, test_x, test_y = data
    keras.utils.set_random_seed(args.seed)
    classifier = SlimClassifier(backbone, num_classes=10, seed=args.seed,
                                inplace_distillation=distill)
    seconds = _fit(classifier, train_x, train_y, args)
    top1 = {f"{w:g}": _top1(classifier.predict(test_x / 255.0, width=w,
                                               verbose=0), test_y)
            for w in backbone.widths}
    return {"top1": top1, "train_seconds": seconds,
            "inplace_distillation": distill}


def _individual(backbone, data, args):
    train_x, train_y, test_x, test_y = data
    top1, seconds = {}, {}
    for width in backbone.widths:
        keras.utils.set_random_seed(args.seed)
        features = backbone.subnetwork(width)
        logits = keras.layers.Dense(10, name="logits")(features.output)
        model = keras.Model(features.input, logits)
        seconds[f"{width:g}"] = _fit(model, train_x, train_y, args)
        top1[f"{width:g}"] = _top1(model.predict(test_x / 255.0, verbose=0),
                                   test_y)
    return {"top1": top1, "train_seconds": sum(seconds.values()),
            "train_seconds_per_width": seconds}


def _run_variant(name, args, data):
    pretrained = keras.saving.load_model(args.pretrained)
    if name == "individual_pretrained":
        return _individual(pretrained, data, args)
    backbone = pretrained
    if name.startswith("slim_random"):
        keras.utils.set_random_seed(args.seed)
        backbone = type(pretrained).from_config(pretrained.get_config())
    return _slim(backbone, data, args, distill=name.endswith("_distill"))


def _write(path, result):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w") as f:
        json.dump(result, f, indent=1)
    os.replace(temporary, path)


def main():
    args = _arguments()
    variants = [v for v in args.variants.split(",") if v]
    unknown = sorted(set(variants) - set(VARIANTS))
    if unknown:
        raise SystemExit(f"Unknown variants {unknown}; choose from {VARIANTS}.")
    if not os.path.exists(args.pretrained):
        raise SystemExit(
            f"No pretrained backbone at {args.pretrained}: run `python -m "
            f"benchmarks.bench_real_data --dataset cifar10` first (its slimclr "
            f"run writes backbone.keras), or pass --pretrained.")
    train = load(args.data, "train", max_examples=args.train,
                 cache_dir=args.cache_dir)
    test = load(args.data, "test", max_examples=args.test,
                cache_dir=args.cache_dir)
    data = (train.images, train.labels, test.images.astype("float32"),
            test.labels)
    result = {}
    if os.path.exists(args.out):
        with open(args.out) as f:
            result = json.load(f)
    settings = {k: v for k, v in vars(args).items()
                if k not in ("variants", "out", "force", "cache_dir")}
    if result.get("settings", settings) != settings:
        raise SystemExit(f"{args.out} holds a run with other settings "
                         f"{result['settings']}: use another --out.")
    result["settings"] = settings
    result.setdefault("variants", {})
    for name in variants:
        if name in result["variants"] and not args.force:
            print(f"{name}: done before, skipped (--force redoes it)")
            continue
        entry = _run_variant(name, args, data)
        entry.update(date=time.strftime("%Y-%m-%d %H:%M"),
                     commit=git_commit(), machine=machine())
        result["variants"][name] = entry
        _write(args.out, result)
        print(name, json.dumps(entry))


if __name__ == "__main__":
    main()
