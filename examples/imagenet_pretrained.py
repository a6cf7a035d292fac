"""ImageNet-pretrained slimmable ResNet-50 (official SlimCLR weights) at every width.

What it shows:

1. the released SlimCLR checkpoints as keras_slim models: a preset
   (`SlimResNet.from_preset(name, lincls=True)`: downloaded once from the
   official release, SHA-256 checked, converted, cached) or local `.pth.tar`
   files (`keras_slim.convert.load_slimclr_lincls`), read without torch;
2. one set of weights classifying ImageNet at widths 1.0, 0.75, 0.5 and 0.25,
   each with its own linear probe, preprocessed as the official evaluation
   does (resize 256, centre crop 224, RGB in [0, 1]; the backbone normalizes);
3. every width exported to its own verified TFLite file with its classifier.

Run it:

    python examples/imagenet_pretrained.py --images photos/
    python examples/imagenet_pretrained.py --preset slimclr_mocov3_r50_ep300 \\
        --images imagenet_val_subset/ --precisions float32,dynamic_int8
    python examples/imagenet_pretrained.py \\
        --checkpoint slimclr-mocov2-ep800-lincls-35600f623f.pth.tar --images x/

`--images` is a folder of images; when its images sit in subfolders named by
ImageNet class index (`0` .. `999`, the order of sorted WordNet ids), each
width's top-1 on them is printed too. `--tiny` runs a smoke version in
seconds on a small test checkpoint made by the official code (random
weights: the predictions mean nothing) and random images.
"""

import argparse
import os

import keras_slim  # first: switches TensorFlow's fast oneDNN CPU kernels on

import numpy as np
from PIL import Image

from keras_slim import convert
from keras_slim import export
from keras_slim.backbones import SlimResNet
from keras_slim.runs.export_run import describe

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), os.pardir)
TINY_CHECKPOINT = os.path.join(ROOT, "tests", "fixtures", "convert",
                               "slimclr_lincls_tiny.pth.tar")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="slimclr_mocov2_r50_ep800",
                        choices=sorted(convert.PRESETS),
                        help="released checkpoint pair to load")
    parser.add_argument("--checkpoint", default=None,
                        help="a local linear-evaluation .pth.tar instead")
    parser.add_argument("--images", default=None,
                        help="folder of images (class-index subfolders "
                        "give labels)")
    parser.add_argument("--output", default="imagenet_export",
                        help="folder for the TFLite files")
    parser.add_argument("--precisions", default="float32",
                        help="comma-separated: float32, float16, "
                        "dynamic_int8, int8")
    parser.add_argument("--crop", type=int, default=224,
                        help="centre-crop side (the official 224)")
    parser.add_argument("--tiny", action="store_true",
                        help="smoke run on a test checkpoint")
    args = parser.parse_args(argv)
    if args.tiny:
        args.checkpoint = args.checkpoint or TINY_CHECKPOINT
        args.crop = 64
    if not args.tiny and args.images is None:
        parser.error("give --images FOLDER (or --tiny)")
    return args


def preprocess(path, crop):
    """Resize the short side to crop * 256/224, centre-crop, RGB in [0, 1]."""
    image = Image.open(path).convert("RGB")
    short = round(crop * 256 / 224)
    scale = short / min(image.size)
    size = (max(short, round(image.width * scale)),
            max(short, round(image.height * scale)))
    image = image.resize(size, Image.BILINEAR)
    left = (image.width - crop) // 2
    top = (image.height - crop) // 2
    image = image.crop((left, top, left + crop, top + crop))
    return np.asarray(image, np.float32) / 255.0


def read_images(folder, crop):
    """(images, labels or None, names) of a folder, sorted by path."""
    if not os.path.isdir(folder):
        raise SystemExit(f"--images: {folder} is not a folder.")
    paths = []
    for parent, _, files in os.walk(folder):
        paths += [os.path.join(parent, f) for f in files
                  if f.lower().endswith(IMAGE_SUFFIXES)]
    if not paths:
        raise SystemExit(f"--images: no images ({', '.join(IMAGE_SUFFIXES)}) "
                         f"in {folder}.")
    paths.sort()
    parents = [os.path.basename(os.path.dirname(p)) for p in paths]
    labels = None
    if all(p.isdigit() and 0 <= int(p) < 1000 for p in parents):
        labels = np.array([int(p) for p in parents])
    images = np.stack([preprocess(p, crop) for p in paths])
    return images, labels, [os.path.relpath(p, folder) for p in paths]


def load(args):
    if args.checkpoint:
        if not os.path.isfile(args.checkpoint):
            raise SystemExit(f"--checkpoint: no file {args.checkpoint}.")
        print(f"converting {args.checkpoint} (read safely, no torch)")
        return convert.load_slimclr_lincls(args.checkpoint)
    print(f"loading preset {args.preset} (downloaded and converted once)")
    return SlimResNet.from_preset(args.preset, lincls=True)


def classify(backbone, heads, images, labels, names):
    print(f"{'width':>6} {'features':>9}  top-5 classes of the first image"
          + ("   top-1" if labels is not None else ""))
    for width in backbone.widths.values:
        features = backbone.predict(images, width=width, batch_size=32,
                                    verbose=0)
        logits = np.asarray(heads[width](features))
        top5 = np.argsort(-logits, axis=1)[:, :5]
        line = f"{width:>6g} {features.shape[1]:>9}  {top5[0].tolist()}"
        if labels is not None:
            line += f"   {np.mean(top5[:, 0] == labels):.1%}"
        print(line)
    print(f"({len(images)} images; first: {names[0]})")


def main(argv=None):
    args = parse_args(argv)
    try:
        backbone, heads = load(args)
    except (convert.ConversionError, convert.PresetError, ValueError) as err:
        raise SystemExit(f"cannot load the checkpoint: {err}")
    print(f"{backbone.name}: widths {list(backbone.widths.values)}, "
          f"{len(heads)} ImageNet probes of {heads[1.0].units} classes")
    if args.tiny and args.images is None:
        rng = np.random.default_rng(0)
        images = rng.uniform(0, 1, (8, args.crop, args.crop, 3)).astype(
            "float32")
        labels, names = rng.integers(0, heads[1.0].units, 8), ["random"]
    else:
        images, labels, names = read_images(args.images, args.crop)
    classify(backbone, heads, images, labels, names)
    precisions = [p.strip() for p in args.precisions.split(",") if p.strip()]
    manifest = export.export_backbone(
        backbone, args.output, images=images[:64],
        labels=None if labels is None else labels[:64],
        precisions=precisions, classifiers=heads,
        representative_images=images[:64], image_shape=images.shape[1:],
        saved_model=False, latency_runs=3 if args.tiny else 30,
        # The all-widths bundle traces every width again; a smoke run skips
        # it (export_tflite.py --tiny writes and checks one).
        bundle=not args.tiny,
        # A tiny export's few conversions fit in this process's memory; a
        # real one converts in worker processes (memory stays flat).
        overwrite=True, isolate=not args.tiny)
    print(describe(manifest))
    print(f"wrote {args.output}/: one .tflite per width and precision "
          f"(inputs: RGB images in [0, 1], {args.crop}x{args.crop}), "
          f"manifest.json")


if __name__ == "__main__":
    main()
