"""Fine-tune every width of a pretrained slimmable backbone on labels, at once.

After self-supervised pretraining, one `keras_slim.tasks.SlimClassifier`
fine-tunes all widths of the backbone on labelled images in one `fit`: each
step runs every width of the list (the sandwich widths of a range) on the
same batch and applies one update, so the widths keep sharing one set of
weights. Beside it the same fine-tuning from a random initialization shows
what pretraining brings at each width. Each width then becomes a plain
Keras classifier (`classifier.subnetwork(w)`), checked against the
slimmable model: what `keras-slim export` turns into a TFLite file.

    python examples/finetune_all_widths.py --backbone runs/quickstart
    python examples/finetune_all_widths.py --backbone runs/slimclr_cifar10 \
        --data ../shared/data/cifar10/cifar10-jpeg.zip --epochs 30

Without `--backbone` it first pretrains the bundled `quickstart` config
(the digits). `--label-fraction 0.1` fine-tunes on a class-balanced 10% of
the labels (the semi-supervised protocol). The same run, resumable and with
its own run directory, is `keras-slim finetune RUN_DIR`.

It prints one row per width: parameters, MFLOPs, top-1 after fine-tuning
from pretraining and from random init. `--tiny` is a seconds-long smoke run
(CI): 128 images at 8x8, one epoch, and a one-epoch tiny pretraining.
"""

import argparse
import os
import tempfile

import keras_slim  # first: switches TensorFlow's fast oneDNN CPU kernels on

import keras
import numpy as np

from keras_slim import data
from keras_slim import evaluation
from keras_slim.config import load_config
from keras_slim.configs import resolve_config_path
from keras_slim.optimizers import CoupledSGD
from keras_slim.optimizers import WarmupCosine
from keras_slim.optimizers import parameter_groups
from keras_slim.runs import RunDirectory
from keras_slim.runs import eval_arrays
from keras_slim.runs import pretrain
from keras_slim.tasks import SlimClassifier

TINY = dict(max_examples=128, image_size=8, epochs=1, batch_size=32)
TINY_PRETRAINING = [
    "data.image_size=8", "data.max_examples=128", "backbone.base_width=4",
    "backbone.widths=[1.0, 0.5]", "train.epochs=1", "train.batch_size=32",
    "evaluation.knn_every_epochs=0"]


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default=None,
                        help="a keras-slim run directory or backbone .keras "
                        "(default: pretrain the quickstart config first)")
    parser.add_argument("--data", default=None,
                        help="labelled data (default: the run's, else digits)")
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--max-examples", type=int, default=None)
    parser.add_argument("--label-fraction", type=float, default=None)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--learning-rate", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default=None,
                        help="where the quickstart pretraining goes")
    parser.add_argument("--tiny", action="store_true",
                        help="a seconds-long smoke run (CI)")
    args = parser.parse_args(argv)
    if args.tiny:  # tiny values become the defaults; explicit flags win
        parser.set_defaults(**TINY)
        args = parser.parse_args(argv)
    return args


def pretrained_backbone(args):
    """(backbone, the run's data settings) of `--backbone`, or pretrain."""
    path = args.backbone
    if path is None:
        path = args.output_dir or tempfile.mkdtemp(prefix="finetune_")
        overrides = TINY_PRETRAINING if args.tiny else []
        print(f"no --backbone: pretraining the quickstart config in {path}")
        pretrain(load_config(resolve_config_path("quickstart"), overrides),
                 run_dir=path, evaluate=False, log=lambda *_: None)
    settings = {}
    if os.path.isdir(path):
        run = RunDirectory(path)
        settings = run.read_config()["data"] if run.exists() else {}
        path = run.backbone_path
    if not os.path.isfile(path):
        raise SystemExit(f"error: no backbone at {path}: pass a finished "
                         f"keras-slim run directory or a .keras file.")
    return keras.saving.load_model(path, compile=False), settings


def labelled_data(args, settings):
    """(training `ImageData`, test images and labels)."""
    source = args.data or settings.get("source") or "digits"
    size = args.image_size or settings.get("image_size")
    try:
        train, test = (data.load(source, split=split, image_size=size,
                                 max_examples=args.max_examples)
                       for split in ("train", "test"))
    except (FileNotFoundError, ValueError) as error:
        raise SystemExit(f"error: {error}")
    if args.label_fraction is not None:
        kept = evaluation.labeled_subset(train.labels, args.label_fraction,
                                         seed=args.seed)
        train = data.ImageData(train.images[kept], train.labels[kept],
                               train.class_names, name=train.name)
    return train, eval_arrays(test, train.image_shape[0])


def fine_tune(backbone, train, args):
    """One `fit` of every width; the trained `SlimClassifier`."""
    keras.utils.set_random_seed(args.seed)
    classifier = SlimClassifier(backbone, num_classes=train.num_classes,
                                seed=args.seed)
    per_epoch = data.steps_per_epoch(train, args.batch_size)
    # SlimCLR's supervised main_slim.py: torch's SGD (coupled L2 decay, none
    # on BatchNorm and biases) with a warm-up and cosine.
    schedule = WarmupCosine(args.learning_rate, per_epoch * args.epochs,
                            warmup_steps=per_epoch * args.epochs // 20)
    optimizer = CoupledSGD(schedule, momentum=0.9, weight_decay=5e-4)
    optimizer.exclude_from_weight_decay(
        var_list=list(parameter_groups(classifier).no_decay))
    classifier.compile(optimizer=optimizer)
    augment = data.SupervisedAugmentation(train.image_shape[0],
                                          crop_scale=(0.25, 1.0))
    batches = data.labeled_training_batches(train, augment, args.batch_size,
                                            seed=args.seed)
    classifier.fit(batches, epochs=args.epochs, steps_per_epoch=per_epoch,
                   verbose=2)
    return classifier


def top1(classifier, images, labels, width):
    logits = classifier.predict(images, width=width, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == labels))


def main(argv=None):
    args = parse_args(argv)
    backbone, settings = pretrained_backbone(args)
    train, (test_x, test_y) = labelled_data(args, settings)
    print(f"fine-tuning {type(backbone).__name__} widths {backbone.widths} "
          f"on {train.num_examples} labelled {train.name} images")
    random_init = type(backbone).from_config(backbone.get_config())
    tuned = {"pretrained": fine_tune(backbone, train, args),
             "random init": fine_tune(random_init, train, args)}
    widths = backbone.widths
    evaluated = list(widths.stat_widths if widths.is_range else widths.values)
    if widths.is_range:  # a range's BatchNorm statistics come from data
        images = eval_arrays(train, train.image_shape[0])[0]
        for classifier in tuned.values():
            classifier.calibrate(images, widths=evaluated)
    shape = test_x.shape[1:]
    print(f"{'width':>6} {'params':>9} {'MFLOPs':>8} {'pretrained':>11} "
          f"{'random init':>12}")
    for width in evaluated:
        plain = tuned["pretrained"].subnetwork(width)
        # The plain classifier of this width computes the slimmable one's
        # logits: the model an export converts.
        gap = np.abs(plain.predict(test_x[:32], verbose=0)
                     - tuned["pretrained"].predict(test_x[:32], width=width,
                                                   verbose=0)).max()
        assert gap < 1e-3, f"width {width}: plain model differs by {gap}"
        cost = keras_slim.profile(tuned["pretrained"].backbone, width, shape)
        accuracies = [top1(c, test_x, test_y, width) for c in tuned.values()]
        print(f"{width:>6g} {plain.count_params():>9,} "
              f"{cost.flops / 1e6:>8.2f} {accuracies[0]:>11.1%} "
              f"{accuracies[1]:>12.1%}")


if __name__ == "__main__":
    main()
