"""US3L: one universally slimmable ResNet-18 for any width in [0.25, 1.0].

A width *range* (`keras_slim.Widths(min_width=0.25, max_width=1.0)`) trains
any width, not a fixed list. Each step of US3L runs a sandwich: the full
width against an EMA teacher, plus the smallest width and random widths of a
grid, which learn only by distilling the teacher. With the 4-phase dynamic
range the small widths join gradually, and a group regularization replaces
weight decay.

A range shares one sliced BatchNorm across widths and trains on batch
statistics only, so before inference at a width its statistics must be
*calibrated* on training images (`evaluation.calibrate_batch_norm`). The
network stores statistics for the range's `stat_widths` (8 evenly spaced
widths by default, `--stat-widths N` to choose how many). This example
calibrates every one of them and prints its cost and kNN top-1 (the
evaluation functions refuse a width that was never calibrated).

Run it on the bundled digits (upsampled to 16x16):

    python examples/us3l_universal.py

On CIFAR-10 (a ZIP or folder of `train/<class>/*.jpg` and
`test/<class>/*.jpg`) or CIFAR-100 (a TFDS name), the paper's settings:

    python examples/us3l_universal.py \
        --data ../shared/data/cifar10/cifar10-jpeg.zip --base-width 64 \
        --epochs 400 --batch-size 512 --learning-rate 0.5 --hidden-dim 2048 \
        --projection-dim 256

`--tiny` is a seconds-long smoke run (CI): 128 images at 8x8, base width 4,
one epoch, two widths per step over the whole range from the first step
(`--static-range`: the 4 phases of the dynamic range would each be traced),
three calibrated widths.
"""

import argparse

import keras_slim  # first: switches TensorFlow's fast oneDNN CPU kernels on

import keras
import numpy as np
import tensorflow as tf

from keras_slim import data
from keras_slim import evaluation
from keras_slim import optimizers
from keras_slim.runs import format_table
from keras_slim.runs import eval_arrays
from keras_slim.runs import WidthProgress

# `--tiny`: the smallest run that still goes through every step (CI).
TINY = dict(max_examples=128, image_size=8, depth=10, base_width=4, epochs=1,
            batch_size=32, num_widths=2, static_range=True, stat_widths=3,
            hidden_dim=64, projection_dim=32, calibration_batches=2,
            knn_k=10)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default="digits",
                        help="'digits', a TFDS name ('cifar100'), a folder or "
                        ".zip of class folders, or a folder of IDX files")
    parser.add_argument("--data-dir", default=None,
                        help="TFDS data folder (TFDS sources only)")
    parser.add_argument("--max-examples", type=int, default=None,
                        help="load at most this many images per split")
    parser.add_argument("--image-size", type=int, default=None,
                        help="side of the images and views (default: 16 for "
                        "digits, 32 otherwise)")
    parser.add_argument("--min-width", type=float, default=0.25)
    parser.add_argument("--max-width", type=float, default=1.0)
    parser.add_argument("--stat-widths", type=int, default=None,
                        help="how many evenly spaced widths keep BatchNorm "
                        "statistics (default: the library's 8)")
    parser.add_argument("--depth", type=int, default=18,
                        choices=[10, 18, 34, 50, 101, 152],
                        help="ResNet depth (10: one block a stage)")
    parser.add_argument("--base-width", type=int, default=16,
                        help="channels of the ResNet stem at width 1.0")
    parser.add_argument("--num-widths", type=int, default=3,
                        help="widths trained per step (the sandwich)")
    parser.add_argument("--grid-step", type=float, default=0.0625,
                        help="spacing of the grid the random widths come "
                        "from")
    parser.add_argument("--static-range", action="store_true",
                        help="train the whole range from the first step "
                        "(no 4-phase dynamic range)")
    parser.add_argument("--hidden-dim", type=int, default=512)
    parser.add_argument("--projection-dim", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.3)
    parser.add_argument("--calibration-batches", type=int, default=None,
                        help="BN calibration batches per width (default: one "
                        "pass over the training images)")
    parser.add_argument("--knn-k", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tiny", action="store_true",
                        help="a seconds-long smoke run (CI)")
    args = parser.parse_args(argv)
    if args.tiny:  # tiny values become the defaults; explicit flags win
        parser.set_defaults(**TINY)
        args = parser.parse_args(argv)
    if args.image_size is None:
        args.image_size = 16 if args.data == "digits" else 32
    if args.stat_widths is not None and args.stat_widths < 2:
        parser.error("--stat-widths must be >= 2 (the range's two ends)")
    return args


def width_range(args):
    """The range; `stat_widths` are the widths that can be calibrated."""
    stat_widths = None
    if args.stat_widths:
        stat_widths = np.round(np.linspace(args.max_width, args.min_width,
                                           args.stat_widths), 4).tolist()
    # Widths validates the range (0 < min < max <= 1) with a clear message.
    return keras_slim.Widths(min_width=args.min_width,
                             max_width=args.max_width,
                             stat_widths=stat_widths)


def build_model(args, channels, steps, steps_per_epoch):
    """A range backbone inside US3L, compiled without weight decay."""
    backbone = keras_slim.backbones.SlimResNet(
        depth=args.depth, stem="cifar", base_width=args.base_width,
        widths=width_range(args), input_shape=(None, None, channels))
    model = keras_slim.methods.US3L(
        backbone, base="simclr", num_widths=args.num_widths,
        grid_step=args.grid_step,
        # The length of training sets the 4 phases of the dynamic range and
        # the ramp of the group regularization; 0 switches both off.
        total_steps=0 if args.static_range else steps,
        # As the official loop: phases, ramp and rate move once per epoch.
        steps_per_epoch=steps_per_epoch,
        hidden_dim=args.hidden_dim, projection_dim=args.projection_dim,
        seed=args.seed)
    # Group regularization (inside US3L) replaces weight decay.
    model.compile(optimizer=keras.optimizers.SGD(
        optimizers.WarmupCosine(peak=args.learning_rate, total_steps=steps,
                                steps_per_epoch=steps_per_epoch),
        momentum=0.9))
    return model


def main(argv=None):
    args = parse_args(argv)
    if args.tiny:
        # A smoke run executes a few steps: TensorFlow's graph optimizations
        # would cost more time than they save.
        tf.config.optimizer.set_experimental_options(
            {"disable_meta_optimizer": True})
    keras.utils.set_random_seed(args.seed)
    options = dict(data_dir=args.data_dir, image_size=args.image_size,
                   max_examples=args.max_examples)
    try:
        train_data, test_data = [data.load(args.data, split=split, **options)
                                 for split in ("train", "test")]
    except (OSError, ValueError, RuntimeError, MemoryError) as error:
        raise SystemExit(f"error: cannot load --data {args.data!r}: {error}")
    print(f"train: {train_data}\ntest: {test_data}")

    # The CIFAR recipe of US3L (no blur); digits are not mirrored.
    augmentation = data.TwoViewAugmentation.from_preset(
        "cifar", image_size=args.image_size,
        flip_probability=0.0 if args.data == "digits" else 0.5)
    per_epoch = data.steps_per_epoch(train_data, args.batch_size)
    try:
        model = build_model(args, train_data.image_shape[-1],
                            per_epoch * args.epochs, per_epoch)
    except ValueError as error:  # a bad range, grid or sandwich size
        raise SystemExit(f"error: {error}")
    pairs = data.view_pairs(train_data, augmentation, args.batch_size,
                            seed=args.seed)
    # `view_pairs` already shuffles (a seeded permutation per epoch).
    history = model.fit(pairs, epochs=args.epochs, steps_per_epoch=per_epoch,
                        callbacks=[WidthProgress()], shuffle=False, verbose=0)

    backbone = model.backbone
    train = eval_arrays(train_data, args.image_size)
    test = eval_arrays(test_data, args.image_size)
    widths = list(backbone.widths.stat_widths)
    batches = evaluation.calibrate_batch_norm(
        backbone, train[0], widths=widths,
        num_batches=args.calibration_batches, batch_size=args.batch_size,
        seed=args.seed)
    print(f"calibrated the BatchNorm statistics of {len(widths)} widths, "
          f"each on {max(batches.values())} batch(es) of {args.batch_size}")
    knn = evaluation.evaluate_knn(backbone, *train, *test, widths=widths,
                                  k=args.knn_k)
    rows = []
    for width in widths:
        cost = keras_slim.profile(backbone, width,
                                  input_shape=train[0].shape[1:])
        rows.append({"width": width, "params": cost.params,
                     "flops": cost.flops, "knn_top1": knn[width]})
    results = {"dataset": train_data.name, "method": "us3l-simclr",
               "final_loss": float(history.history["loss"][-1]),
               "widths": rows}
    print(format_table(results))
    return results


if __name__ == "__main__":
    main()
