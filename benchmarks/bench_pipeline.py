"""Input pipeline throughput vs. the SSL training step that consumes it.

For each config, in one process:

1. `load`: seconds to decode the data set (no cache);
2. pipeline only: images/s of `keras_slim.data.view_pairs` (two augmented
   views per image) over `--pipeline-steps` batches, start-up included;
3. step only: images/s of `SlimCLR(SlimResNet(...), base="mocov2").fit` on
   one cached batch of those views (the step without any input cost), over
   `--steps` steps after `--warmup`;
4. fit on the live pipeline: images/s of the same `fit` on `view_pairs`
   (pipeline and step share the cores, as in real training).

Target: pipeline / step >= 5, so that the input never starves the step.
Configs: `quick` (digits, 16x16, widths [1.0, 0.5, 0.25], MoCo v2
augmentation) and `cifar10` (the CIFAR-10 JPEG zip, 32x32, widths
[1.0, 0.75, 0.5, 0.25], the `cifar` augmentation preset); both batch 128,
SlimResNet-18 with the CIFAR stem and base width 16.

    python -m benchmarks.bench_pipeline --steps 30
    python -m benchmarks.bench_pipeline --steps 2 --warmup 1 --pipeline-steps 5
"""

import argparse
import json
import os
import time

os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402

from benchmarks import _common  # noqa: E402
from keras_slim.backbones import SlimResNet  # noqa: E402
from keras_slim.data import TwoViewAugmentation  # noqa: E402
from keras_slim.data import load  # noqa: E402
from keras_slim.data import view_pairs  # noqa: E402
from keras_slim.methods import SlimCLR  # noqa: E402

SHARED = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir,
                      "shared", "data")
CONFIGS = {
    "quick": dict(source="digits", image_size=16, batch=128,
                  widths=[1.0, 0.5, 0.25], preset="mocov2"),
    "cifar10": dict(source=os.path.join(SHARED, "cifar10",
                                        "cifar10-jpeg.zip"),
                    image_size=32, batch=128,
                    widths=[1.0, 0.75, 0.5, 0.25], preset="cifar"),
}
QUEUE = 4096


def pipeline_rate(make_dataset, batch, warmup, steps):
    """Images/s of iterating `make_dataset(n)` over `steps` batches.

    A first pipeline of `warmup` batches warms the kernels; the timed one is
    built (its functions traced) before the clock starts and timed from its
    first batch request to its last batch, so prefetching cannot hide work.
    """
    for _ in make_dataset(warmup):
        pass
    dataset = make_dataset(steps)
    start = time.perf_counter()
    for view1, _ in dataset:
        pass
    view1.numpy()
    return batch * steps / (time.perf_counter() - start)


class _BatchClock(keras.callbacks.Callback):
    """Timestamps the end of every training batch (after its loss is ready)."""

    def __init__(self):
        super().__init__()
        self.times = []

    def on_train_batch_end(self, batch, logs=None):
        float(logs["loss"])  # wait for the step's result
        self.times.append(time.perf_counter())


def fit_rate(config, channels, dataset, warmup, steps):
    """Images/s of SlimCLR.fit steps on `dataset`, after `warmup` steps."""
    keras.utils.set_random_seed(0)
    backbone = SlimResNet(depth=18, stem="cifar", base_width=16,
                          widths=config["widths"],
                          input_shape=(None, None, channels))
    model = SlimCLR(backbone, base="mocov2", queue_size=QUEUE)
    model.compile(optimizer=keras.optimizers.SGD(0.03, momentum=0.9))
    clock = _BatchClock()
    model.fit(dataset, epochs=1, steps_per_epoch=warmup + steps, verbose=0,
              callbacks=[clock])
    elapsed = clock.times[-1] - clock.times[warmup - 1]
    return config["batch"] * steps / elapsed


def run_config(name, warmup, steps, pipeline_steps, preset=None):
    config = dict(CONFIGS[name])
    if preset:
        config["preset"] = preset
    start = time.perf_counter()
    data = load(config["source"], split="train")
    load_s = time.perf_counter() - start
    augmentation = TwoViewAugmentation.from_preset(config["preset"],
                                                   config["image_size"])
    batch = config["batch"]
    channels = data.image_shape[-1]
    pipeline = pipeline_rate(
        lambda n: view_pairs(data, augmentation, batch, steps=n),
        batch, warmup, pipeline_steps)
    cached = view_pairs(data, augmentation, batch, steps=1).cache().repeat()
    step = fit_rate(config, channels, cached, warmup, steps)
    live = fit_rate(config, channels, view_pairs(data, augmentation, batch),
                    warmup, steps)
    return dict(
        config=name, source=os.path.basename(str(config["source"])),
        examples=data.num_examples, image_shape=list(data.image_shape),
        image_size=config["image_size"], batch=batch,
        widths=config["widths"], preset=config["preset"], load_s=load_s,
        pipeline_images_per_s=pipeline, step_images_per_s=step,
        live_fit_images_per_s=live, ratio_pipeline_step=pipeline / step,
        live_over_step=live / step,
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="quick,cifar10",
                        help=f"comma-separated, of {sorted(CONFIGS)}")
    parser.add_argument("--steps", type=int, default=30,
                        help="timed batches per measurement")
    parser.add_argument("--warmup", type=int, default=3,
                        help="untimed batches first (tracing, prefetch)")
    parser.add_argument("--pipeline-steps", type=int, default=200,
                        help="timed batches of the pipeline-only run (many: "
                        "its start-up latency must not dominate)")
    parser.add_argument("--preset", default=None,
                        help="augmentation preset for every config")
    args = parser.parse_args()
    if min(args.warmup, args.steps, args.pipeline_steps) < 1:
        parser.error("--warmup, --steps and --pipeline-steps must be >= 1")
    names = args.configs.split(",")
    unknown = sorted(set(names) - set(CONFIGS))
    if unknown:
        parser.error(f"unknown configs {unknown}; known: {sorted(CONFIGS)}")
    rows = []
    for name in names:
        row = run_config(name, args.warmup, args.steps, args.pipeline_steps,
                         args.preset)
        rows.append(row)
        print(json.dumps(row), flush=True)
    print("| config | load (s) | pipeline (img/s) | step (img/s) | "
          "fit on live pipeline (img/s) | pipeline / step |")
    print("|---|---|---|---|---|---|")
    for row in rows:
        print(f"| {row['config']} | {row['load_s']:.1f} "
              f"| {row['pipeline_images_per_s']:.0f} "
              f"| {row['step_images_per_s']:.0f} "
              f"| {row['live_fit_images_per_s']:.0f} "
              f"| {row['ratio_pipeline_step']:.1f} |")
    path = _common.write_result("pipeline", dict(
        machine=_common.machine(), steps=args.steps, warmup=args.warmup,
        pipeline_steps=args.pipeline_steps,
        rows=rows))
    print(f"written {path}")


if __name__ == "__main__":
    main()
