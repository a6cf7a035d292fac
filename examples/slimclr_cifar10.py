"""SlimCLR (MoCo v2 base): pretrain every width of a slimmable ResNet-18.

What it shows, piece by piece:

1. `keras_slim.data.load` reads a split into memory (the bundled `digits`, a
   CIFAR-10 `.zip`/folder of JPEGs, IDX files or a TFDS name);
2. `TwoViewAugmentation.from_preset` makes the two random views and
   `view_pairs` batches them (batch `n` depends only on `(seed, n)`);
3. `SlimCLR(backbone, base="mocov2")` trains the widths `[1.0, 0.5, 0.25]`
   in one `model.fit`, with SlimCLR's slow start (only the full width trains
   at first; `SlowStartCosine` restarts the learning rate when the
   sub-widths join) and a `KNNMonitor` that logs `w0.5/knn_top1` per width;
4. after training, a kNN classifier and a linear probe per width, printed as
   one table with each width's parameters and FLOPs.

Run it on the bundled digits (upsampled to 16x16):

    python examples/slimclr_cifar10.py

On CIFAR-10 (a ZIP or folder of `train/<class>/*.jpg` and
`test/<class>/*.jpg`, or a TFDS name when TFDS can read or download it):

    python examples/slimclr_cifar10.py \
        --data ../shared/data/cifar10/cifar10-jpeg.zip --epochs 200 \
        --base-width 64 --batch-size 256 --queue-size 4096

`--tiny` is a seconds-long smoke run (CI): 128 images at 8x8, base width 4,
widths 1.0 and 0.5, one epoch, no slow start. `--output-dir DIR` saves the
trained backbone as `DIR/backbone.keras` (every width in one file;
`linear_evaluation.py` reads it) and the results as `DIR/results.json`.
"""

import argparse
import os

import keras_slim  # first: switches TensorFlow's fast oneDNN CPU kernels on

import keras
import tensorflow as tf

from keras_slim import data
from keras_slim import evaluation
from keras_slim import optimizers
from keras_slim.io import atomic_path
from keras_slim.io import write_json_atomic
from keras_slim.runs import format_table
from keras_slim.runs import eval_arrays
from keras_slim.runs import WidthProgress

# `--tiny`: the smallest run that still goes through every step (CI). A
# tiny run spends its time tracing the training step, so two settings that
# only cost tracing are off: the slow start (its two phases are traced
# separately) and weight decay (with a schedule, Keras' decay step
# re-evaluates the schedule once per variable).
TINY = dict(max_examples=128, image_size=8, depth=10, base_width=4,
            widths=[1.0, 0.5],
            epochs=1, batch_size=32, queue_size=64, slow_start=0.0,
            weight_decay=0.0, probe_epochs=5, knn_k=10)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="digits",
                        help="'digits', a TFDS name ('cifar10'), a folder or "
                        ".zip of class folders, or a folder of IDX files")
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data folder (TFDS sources only)")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="load at most this many images per split")
    parser.add_argument("--image-size", type=int, default=None,
                        help="side of the images and views (default: 16 for "
                        "digits, 32 otherwise)")
    parser.add_argument("--widths", type=float, nargs="+",
                        default=[1.0, 0.5, 0.25], help="largest first")
    parser.add_argument("--depth", type=int, default=18,
                        choices=[10, 18, 34, 50, 101, 152],
                        help="ResNet depth (10: one block a stage)")
    parser.add_argument("--base-width", type=int, default=16,
                        help="channels of the ResNet stem at width 1.0 "
                        "(64 is the standard ResNet-18)")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.06)
    parser.add_argument("--weight-decay", type=float, default=5e-4)
    parser.add_argument("--slow-start", type=float, default=0.5,
                        help="fraction of training in which only the full "
                        "width trains (SlimCLR's slow start); 0 disables it")
    parser.add_argument("--queue-size", type=int, default=1024,
                        help="MoCo queue length, a multiple of --batch-size")
    parser.add_argument("--knn-every", type=int, default=5,
                        help="kNN monitor period in epochs")
    parser.add_argument("--knn-k", type=int, default=20)
    parser.add_argument("--probe-epochs", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=None,
                        help="save backbone.keras and results.json here")
    parser.add_argument("--tiny", action="store_true",
                        help="a seconds-long smoke run (CI)")
    args = parser.parse_args(argv)
    if args.tiny:  # tiny values become the defaults; explicit flags win
        parser.set_defaults(**TINY)
        args = parser.parse_args(argv)
    if args.image_size is None:
        args.image_size = 16 if args.data == "digits" else 32
    if not 0 <= args.slow_start < 1:
        parser.error(f"--slow-start must be in [0, 1), got {args.slow_start}")
    # The library checks this too, but only once the training step has been
    # traced; here it fails at once.
    if args.queue_size % args.batch_size:
        parser.error(f"--queue-size {args.queue_size} must be a multiple of "
                     f"--batch-size {args.batch_size} (each step enqueues "
                     f"one batch of keys)")
    return args


def load_splits(args):
    """(train, test) `ImageData`; a bad `--data` stops with the reason."""
    options = dict(data_dir=args.data_dir, image_size=args.image_size,
                   max_examples=args.max_examples)
    try:
        return [data.load(args.data, split=split, **options)
                for split in ("train", "test")]
    except (OSError, ValueError, RuntimeError, MemoryError) as error:
        raise SystemExit(f"error: cannot load --data {args.data!r}: {error}")


def build_model(args, channels, steps):
    """The slimmable ResNet inside SlimCLR, compiled with its schedule."""
    backbone = keras_slim.backbones.SlimResNet(
        depth=args.depth, stem="cifar", base_width=args.base_width,
        widths=args.widths, input_shape=(None, None, channels))
    slow_start_steps = int(round(args.slow_start * steps))
    model = keras_slim.methods.SlimCLR(
        backbone, base="mocov2", queue_size=args.queue_size,
        slow_start_steps=slow_start_steps, seed=args.seed)
    if 0 < slow_start_steps < steps:
        # Cosine to ~0 while the full width trains alone, then a restart
        # when every width joins.
        schedule = optimizers.SlowStartCosine(
            peak=args.learning_rate, total_steps=steps,
            slow_start_steps=slow_start_steps)
    else:
        schedule = optimizers.WarmupCosine(peak=args.learning_rate,
                                           total_steps=steps)
    # Keras' decoupled weight decay (`None` turns it off).
    model.compile(optimizer=keras.optimizers.SGD(
        schedule, momentum=0.9, weight_decay=args.weight_decay or None))
    return model


def evaluate(backbone, train, test, args):
    """kNN and linear-probe top-1, parameters and FLOPs of every width."""
    knn = evaluation.evaluate_knn(backbone, *train, *test, k=args.knn_k)
    probe = evaluation.linear_probe(backbone, *train, *test,
                                    epochs=args.probe_epochs, seed=args.seed)
    rows = []
    for width in backbone.widths.values:
        cost = keras_slim.profile(backbone, width,
                                  input_shape=train[0].shape[1:])
        rows.append({"width": width, "params": cost.params,
                     "flops": cost.flops, "knn_top1": knn[width],
                     "linear_top1": probe[width]})
    return rows


def save(backbone, results, output_dir):
    """backbone.keras and results.json, each written atomically."""
    path = os.path.join(output_dir, "backbone.keras")
    with atomic_path(path) as tmp:
        backbone.save(tmp)
    write_json_atomic(os.path.join(output_dir, "results.json"), results)
    print(f"saved {path} and results.json")


def main(argv=None):
    args = parse_args(argv)
    if args.tiny:
        # A smoke run executes a few steps: TensorFlow's graph optimizations
        # would cost more time than they save.
        tf.config.optimizer.set_experimental_options(
            {"disable_meta_optimizer": True})
    keras.utils.set_random_seed(args.seed)
    train_data, test_data = load_splits(args)
    print(f"train: {train_data}\ntest: {test_data}")

    # The CIFAR recipe (no blur: it erases 32-pixel images). A mirrored digit
    # is another glyph, so digits are not flipped.
    augmentation = data.TwoViewAugmentation.from_preset(
        "cifar", image_size=args.image_size,
        flip_probability=0.0 if args.data == "digits" else 0.5)
    per_epoch = data.steps_per_epoch(train_data, args.batch_size)
    pairs = data.view_pairs(train_data, augmentation, args.batch_size,
                            seed=args.seed)
    try:
        model = build_model(args, train_data.image_shape[-1],
                            per_epoch * args.epochs)
    except ValueError as error:  # e.g. --widths not largest first
        raise SystemExit(f"error: {error}")

    # Evaluation takes the un-augmented images in [0, 1].
    train = eval_arrays(train_data, args.image_size)
    test = eval_arrays(test_data, args.image_size)
    monitor = evaluation.KNNMonitor(
        *train, *test, every_n_epochs=min(args.knn_every, args.epochs),
        k=args.knn_k)
    # `view_pairs` already shuffles (a seeded permutation per epoch), and
    # WidthProgress prints a few values per width instead of Keras' bar. A
    # non-finite loss stops `fit` with an error naming the width and step.
    history = model.fit(pairs, epochs=args.epochs, steps_per_epoch=per_epoch,
                        callbacks=[monitor, WidthProgress()], shuffle=False,
                        verbose=0)
    for epoch, top1 in monitor.results.items():
        print(f"kNN monitor after epoch {epoch + 1}: " + ", ".join(
            f"{keras_slim.width_name(w)} {a:.3f}" for w, a in top1.items()))

    rows = evaluate(model.backbone, train, test, args)
    results = {"dataset": train_data.name, "method": "slimclr-mocov2",
               "epochs": args.epochs,
               "final_loss": float(history.history["loss"][-1]),
               "widths": rows}
    print(format_table(results))
    if args.output_dir:
        save(model.backbone, results, args.output_dir)
    return results


if __name__ == "__main__":
    main()
