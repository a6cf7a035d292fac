"""Export every width of a slimmable backbone to TFLite/LiteRT, verified.

What it shows:

1. a pretrained slimmable backbone (a `.keras` file such as the
   `backbone.keras` that `keras-slim pretrain` writes; without one, a short
   SlimCLR pretraining on the bundled digits makes it);
2. a linear probe per width (`keras_slim.evaluation.linear_probe`), whose
   `classifiers` become the exported models' heads;
3. `keras_slim.export.export_backbone`: per width and precision a
   builtin-ops-only `.tflite`, checked against Keras with the LiteRT
   interpreter, timed, and listed in `manifest.json`; plus one file per
   precision with every width as a signature;
4. what an app does with that file: pick the width at run time.

Run it (the bundled digits: 40 epochs of SlimCLR, then the export; a few minutes
on 2 cores):

    python examples/export_tflite.py

With a pretrained run directory's backbone and the data it was trained on:

    keras-slim pretrain                          # writes runs/quickstart/
    python examples/export_tflite.py --backbone runs/quickstart/backbone.keras \\
        --image-size 16 --precisions float32,float16,dynamic_int8,int8

`--tiny` runs a smoke version in seconds (random-init backbone, float32 and
float16 only: int8 checks need a trained network, see the README).
"""

import argparse
import os

import keras_slim  # first: switches TensorFlow's fast oneDNN CPU kernels on

import keras
import numpy as np

from keras_slim import data
from keras_slim import evaluation
from keras_slim import export
from keras_slim.runs.export_run import describe
from keras_slim.runs import WidthProgress


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--backbone", default=None,
                        help="a pretrained slimmable backbone (.keras)")
    parser.add_argument("--data", default="digits",
                        help="the labelled data: 'digits', a TFDS name, a "
                        "folder or .zip of class folders, IDX files")
    parser.add_argument("--image-size", type=int, default=16,
                        help="the side the backbone was trained at")
    parser.add_argument("--precisions", default="float32,float16,int8",
                        help="comma-separated: float32, float16, "
                        "dynamic_int8, int8")
    parser.add_argument("--output", default="exported",
                        help="the export folder (replaced if it holds an "
                        "earlier export)")
    parser.add_argument("--tiny", action="store_true",
                        help="seconds-long smoke run")
    return parser.parse_args(argv)


def labelled_arrays(args, split):
    image_data = data.load(args.data, split=split, image_size=args.image_size)
    return image_data.images.astype("float32") / 255.0, image_data.labels


def pretrained_backbone(args, x_train):
    if args.backbone:
        if not os.path.isfile(args.backbone):
            raise SystemExit(f"error: --backbone {args.backbone}: no such "
                             f"file. Run `keras-slim pretrain` first, or "
                             f"omit it.")
        return keras.saving.load_model(args.backbone, compile=False)
    channels = x_train.shape[-1]
    backbone = keras_slim.backbones.SlimResNet(
        depth=10 if args.tiny else 18,
        widths=[1.0, 0.5, 0.25], base_width=4 if args.tiny else 16,
        input_shape=(None, None, channels))
    if args.tiny:
        return backbone  # random init: enough to show the export
    print("no --backbone: pretraining SlimCLR on the digits for 40 epochs")
    train = data.load(args.data, split="train", image_size=args.image_size)
    augment = data.TwoViewAugmentation.from_preset(
        "small", image_size=args.image_size, flip_probability=0.0,
        blur_probability=0.0)
    pairs = data.view_pairs(train, augment, batch_size=128, seed=0)
    # The quick start's head: sized to the small backbone's features.
    model = keras_slim.methods.SlimCLR(backbone, base="simclr",
                                       temperature=0.2,
                                       hidden_dim=backbone.feature_dim())
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9))
    model.fit(pairs, epochs=40, verbose=0,
              steps_per_epoch=data.steps_per_epoch(train, 128),
              callbacks=[WidthProgress(every_steps=0)])
    return backbone


def show_width_switching(path, images):
    """An app's view: one file, the width chosen per call."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    for key in sorted(interpreter.get_signature_list(), reverse=True):
        runner = interpreter.get_signature_runner(key)
        logits = runner(images=images)["logits"]
        print(f"  {os.path.basename(path)}[{key}]: predicted classes "
              f"{np.argmax(logits, axis=1).tolist()}")


def main(argv=None):
    args = parse_args(argv)
    if args.tiny:
        args.image_size, args.precisions = 8, "float32,float16"
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    x_train, y_train = labelled_arrays(args, "train")
    x_test, y_test = labelled_arrays(args, "test")
    backbone = pretrained_backbone(args, x_train)
    widths = list(backbone.widths.stat_widths)
    if backbone.widths.is_range:
        evaluation.calibrate_batch_norm(backbone, x_train, widths=widths)
    probes = evaluation.linear_probe(
        backbone, x_train, y_train, x_test, y_test, widths=widths,
        epochs=5 if args.tiny else 50)
    print("linear probe top-1 (Keras): " + ", ".join(
        f"w{w:g} {a:.3f}" for w, a in probes.items()))
    manifest = export.export_backbone(
        backbone, args.output, images=x_test[:256], labels=y_test[:256],
        widths=widths, precisions=precisions,
        representative_images=x_train[:300] if "int8" in precisions else None,
        classifiers=probes.classifiers, latency_runs=10, overwrite=True,
        # A tiny export's few conversions fit in this process's memory; a
        # real one converts in worker processes (memory stays flat).
        isolate=not args.tiny)
    print(describe(manifest))
    show_width_switching(os.path.join(args.output,
                                      f"bundle_{precisions[0]}.tflite"),
                         x_test[:8])
    print(f"true classes: {y_test[:8].tolist()}")
    print(f"manifest: {os.path.join(args.output, export.MANIFEST)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
