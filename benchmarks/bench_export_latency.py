"""LiteRT latency of an exported width vs. the same plain Keras network.

For each width w, exports (with `keras_slim.export`, builtin ops only, float32
and int8) the slimmable backbone's width-w network and an independently
built plain Keras network of the same width, then times both with the LiteRT
interpreter (batch 1, one thread), alternating them in rounds so a noisy
machine slows both alike. The ratio slim/plain is the price of
slimmability at the edge (target <= 1.03).

* `--model mobilenet_v2`: `SlimMobileNetV2` at 224x224 vs.
  `keras.applications.MobileNetV2(alpha=w, weights=None)` (no top, average
  pooling), w in 1.0, 0.75, 0.5, 0.35.
* `--model resnet18`: `SlimResNet(depth=18)`, CIFAR stem at 32x32 (base
  width 64), vs. a plain Keras ResNet-18 built here with the same channel
  counts, w in 1.0, 0.75, 0.5, 0.25.

The int8 files are calibrated on random images: the data changes the
scales, not the speed.

    python -m benchmarks.bench_export_latency --model mobilenet_v2
    python -m benchmarks.bench_export_latency --model resnet18
"""

import argparse
import os
import statistics
import tempfile

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import keras_slim  # noqa: E402
from benchmarks import _common  # noqa: E402
from keras_slim.backbones import SlimMobileNetV2  # noqa: E402
from keras_slim.backbones import SlimResNet  # noqa: E402
from keras_slim.export import _graphs  # noqa: E402
from keras_slim.export import litert_latency  # noqa: E402
from keras_slim.export import run_conversions  # noqa: E402

SETTINGS = {
    "mobilenet_v2": dict(shape=(224, 224, 3), widths=[1.0, 0.75, 0.5, 0.35]),
    "resnet18": dict(shape=(32, 32, 3), widths=[1.0, 0.75, 0.5, 0.25]),
}


def slim_backbone(model, widths, shape):
    if model == "mobilenet_v2":
        return SlimMobileNetV2(widths=widths, input_shape=shape)
    return SlimResNet(depth=18, stem="cifar", base_width=64, widths=widths,
                      input_shape=shape)


def plain_network(model, backbone, width, shape):
    if model == "mobilenet_v2":
        return keras.applications.MobileNetV2(
            alpha=width, include_top=False, weights=None, pooling="avg",
            input_shape=shape)
    return plain_resnet18(lambda c: backbone.widths.channels(c, width), shape)


def plain_resnet18(channels, shape):
    """ResNet-18, CIFAR stem (3x3 conv, no max-pool), from Keras layers."""
    def conv_bn(x, filters, kernel, stride, relu=True):
        x = keras.layers.Conv2D(filters, kernel, stride, padding="same",
                                use_bias=False)(x)
        x = keras.layers.BatchNormalization()(x)
        return keras.layers.ReLU()(x) if relu else x

    images = keras.Input(shape)
    x = conv_bn(images, channels(64), 3, 1)
    for stage, filters in enumerate([64, 128, 256, 512]):
        for block in range(2):
            stride = 2 if stage and not block else 1
            out = channels(filters)
            shortcut = x
            if stride != 1 or x.shape[-1] != out:
                shortcut = conv_bn(x, out, 1, stride, relu=False)
            y = conv_bn(x, out, 3, stride)
            y = conv_bn(y, out, 3, 1, relu=False)
            x = keras.layers.ReLU()(keras.layers.Add()([shortcut, y]))
    features = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(images, features)


def as_export_model(network, shape):
    images = keras.Input(shape, name="images")
    return keras.Model(images, {"features": network(images)})


def export_pair(slim, plain, shape, folder, tag):
    """float32 and int8 `.tflite` of both networks; returns their paths."""
    representative = os.path.join(folder, "representative.npy")
    np.save(representative, np.random.default_rng(0).random(
        (32,) + shape, dtype="float32"))
    jobs, paths = [], {}
    for kind, model in (("slim", slim), ("plain", plain)):
        saved = os.path.join(folder, f"{tag}_{kind}")
        _graphs.save_bundle(
            {"serving_default": _graphs.serving_function(model, shape)},
            saved)
        for precision in ("float32", "int8"):
            output = os.path.join(folder, f"{tag}_{kind}_{precision}.tflite")
            jobs.append({"saved_model": saved, "precision": precision,
                         "output": output, "representative": representative})
            paths[kind, precision] = output
    for job, result in zip(jobs, run_conversions(jobs)):
        if not result["ok"]:
            raise SystemExit(f"{job['output']}: {result['error']}")
    return paths


def graph_signature(path):
    """Each op's name and output shapes, in order: equal means same graph."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)
    interpreter.allocate_tensors()
    shapes = {t["index"]: tuple(t["shape"])
              for t in interpreter.get_tensor_details()}
    return [(op["op_name"], tuple(shapes.get(i) for i in op["outputs"]))
            for op in interpreter._get_ops_details()]


def interleaved_latency(paths, shape, rounds, runs, threads):
    samples = {key: [] for key in paths}
    for _ in range(rounds):
        for key, path in paths.items():
            samples[key].append(litert_latency(path, shape,
                                               num_threads=threads,
                                               runs=runs))
    return {key: statistics.median(values) for key, values in
            samples.items()}


def run(model, rounds, runs, threads):
    setting = SETTINGS[model]
    shape, widths = setting["shape"], setting["widths"]
    backbone = slim_backbone(model, widths, shape)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for width in widths:
            slim_net = backbone.subnetwork(width, input_shape=shape)
            plain_net = plain_network(model, backbone, width, shape)
            if slim_net.count_params() != plain_net.count_params():
                raise SystemExit(
                    f"width {width}: {slim_net.count_params()} vs "
                    f"{plain_net.count_params()} parameters; not the same "
                    f"network, the comparison would be meaningless")
            tag = f"w{width:g}"
            paths = export_pair(as_export_model(slim_net, shape),
                                as_export_model(plain_net, shape), shape,
                                folder, tag)
            latency = interleaved_latency(paths, shape, rounds, runs,
                                          threads)
            cost = keras_slim.profile(backbone, width, input_shape=shape)
            for precision in ("float32", "int8"):
                slim_ms = latency["slim", precision]
                plain_ms = latency["plain", precision]
                row = dict(width=width, precision=precision,
                           slim_ms=slim_ms, plain_ms=plain_ms,
                           ratio=slim_ms / plain_ms, flops=cost.flops,
                           params=cost.params,
                           slim_bytes=os.path.getsize(paths["slim",
                                                            precision]),
                           plain_bytes=os.path.getsize(paths["plain",
                                                             precision]),
                           same_graph=graph_signature(
                               paths["slim", precision]) == graph_signature(
                               paths["plain", precision]))
                rows.append(row)
                print(f"{model} {tag} {precision:8s} slim {slim_ms:8.3f} ms "
                      f"plain {plain_ms:8.3f} ms ratio {row['ratio']:.3f} "
                      f"same graph {row['same_graph']}",
                      flush=True)
    return rows


def table(rows):
    full = {r["precision"]: r for r in rows if r["width"] == 1.0}
    lines = ["| width | precision | MFLOPs | slim (ms) | plain (ms) | "
             "ratio slim/plain | same ops and shapes | latency / full width | "
             "FLOPs / full width |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        ref = full[r["precision"]]
        lines.append(
            f"| {r['width']:g} | {r['precision']} | {r['flops'] / 1e6:.1f} | "
            f"{r['slim_ms']:.3f} | {r['plain_ms']:.3f} | {r['ratio']:.3f} | "
            f"{'yes' if r['same_graph'] else 'no'} | "
            f"{r['slim_ms'] / ref['slim_ms']:.3f} | "
            f"{r['flops'] / ref['flops']:.3f} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", choices=sorted(SETTINGS),
                        default="mobilenet_v2")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    rows = run(args.model, args.rounds, args.runs, args.threads)
    path = _common.write_result(
        f"export_latency_{args.model}",
        dict(model=args.model, machine=_common.machine(),
             rounds=args.rounds, runs=args.runs, threads=args.threads,
             shape=list(SETTINGS[args.model]["shape"]), rows=rows))
    print(table(rows))
    print(f"written {path}")


if __name__ == "__main__":
    main()
