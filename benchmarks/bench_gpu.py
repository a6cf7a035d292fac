"""SlimCLR-MoCo v2 training throughput on one GPU: keras_slim on JAX, the sum
of single-width steps, and the official PyTorch code with AMP, side by side.

Times training steps of ResNet-50 at 224 px, batch 256, widths
[1.0, 0.75, 0.5, 0.25], in `mixed_bfloat16` and `float32`:

1. keras_slim on JAX: `SlimCLR(SlimResNet(depth=50, stem="imagenet"),
   base="mocov2", queue_size=65536)` compiled with SGD(0.03, momentum 0.9),
   trained by `model.fit` on one device-resident batch of two views.
2. The sum of plain per-width steps: the same MoCo v2 step of a one-width
   model, `SlimCLR` around `SlimResNet(widths=[1.0], base_width=64 * w)`
   (the channels of width w; keras_slim's largest width is always 1.0; one
   width: no distillation, its own key encoder and queue), timed at each
   width and summed: the cost the slimmable step should match.
3. With `--official PATH` (a checkout of github mzhaoshuai/SlimCLR): the
   official slimmable MoCo v2 (`models/s_moco.py` around the slimmable
   ResNet-50 of `models/backbones/s_resnet.py`, the settings of
   `scripts/mocov2.sh`: SEED distillation on the logits, T = 5, weight 0.5,
   loss weights [2.5, 1, 1, 1], tau 0.2, queue 65536), trained as
   `main_ssl.py`'s `train_epoch_slim` does: autocast float16 + GradScaler, SGD
   over `utils/optim.get_parameter_groups`. Its code is imported from PATH
   at run time; its DistributedDataParallel helpers are replaced, in this
   process only, by their one-device equivalents (see `single_device`).

Each phase runs in its own process: JAX and PyTorch then do not share the
GPU's memory, each phase's peak-memory figure is its own, a precision policy
stays in its phase, and a phase that hangs or crashes is ended on its time
budget while the others still run. Phases run in order of importance
(keras_slim mixed_bfloat16, official, plain mixed_bfloat16, then float32);
one that no longer fits in `--budget` is reported as skipped.

Setup on the GPU machine (JAX with CUDA and PyTorch installed, no TensorFlow,
no network), in the folder holding the project and its wheels/ folder:

    pip install --no-index --find-links wheels/ "keras==3.15.1"

wheels/ holds keras 3.15.1 and the dependencies of it that a plain JAX
install lacks: absl-py, h5py, markdown-it-py, mdurl, namex, optree,
packaging, pygments, rich, typing-extensions (made on a machine with network
by `pip download -d wheels "keras==3.15.1"` with the GPU machine's
`--python-version` / `--platform` and `--only-binary=:all:`). keras_slim is
imported from this folder, not installed. Then (under 10 minutes):

    python benchmarks/bench_gpu.py --official SlimCLR --output bench_gpu.json

CPU check of the same code path (tiny ResNet-18, 32 px, batch 8, widths
[1.0, 0.5], float32, 1 warm-up + 2 timed steps; under ~2 minutes on 2 cores):

    python benchmarks/bench_gpu.py --tiny [--official PATH]

Prints a Markdown table (images/s, ms per step, the first step with its
compilation, peak device memory) and the ratios keras_slim / sum of plain and
keras_slim / official AMP (target >= 1.3); `--output` writes the same as
JSON. Exits non-zero only when a keras_slim SlimCLR phase fails.
"""

import argparse
import datetime
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import types

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

FULL = {
    "depth": 50, "base_width": 64, "image_size": 224, "batch": 256,
    "widths": [1.0, 0.75, 0.5, 0.25], "queue": 65536,
    "warmup": 2, "steps": 10, "precisions": ["mixed_bfloat16", "float32"],
    "budget": 570,
}
TINY = {
    "depth": 18, "base_width": 8, "image_size": 32, "batch": 8,
    "widths": [1.0, 0.5], "queue": 64,
    "warmup": 1, "steps": 2, "precisions": ["float32"],
    "budget": 300,
}
# The official slimmable ResNet has depths 50/101/152 only: --tiny runs its
# ResNet-50 at the tiny image size and batch.
OFFICIAL_DEPTH = 50
# Longest run of one full-size phase, in seconds. Compiling the four-width
# ResNet-50 step is most of a keras_slim phase; a plain phase compiles one
# width; the official phase has no compilation (cuDNN autotuning only).
CAPS = {"keras_slim": 300, "plain": 100, "official": 150}
# A phase is not started with less time left: it could not even compile.
MIN_START_S = 25
# Time a worker keeps to write its result after its last step.
WORKER_MARGIN_S = 10
GIB = 2.0 ** 30


# ---------------------------------------------------------------- arguments
def parse_args(argv):
    parser = argparse.ArgumentParser(
        description="SlimCLR-MoCo v2 step throughput: keras_slim on JAX vs. "
                    "the sum of plain per-width steps vs. official PyTorch "
                    "AMP.")
    parser.add_argument("--tiny", action="store_true",
                        help="tiny sizes on CPU: checks the code path")
    parser.add_argument("--official", metavar="PATH",
                        help="checkout of github mzhaoshuai/SlimCLR; without "
                             "it the official phase is skipped")
    parser.add_argument("--output", metavar="PATH",
                        help="write the results as JSON (atomically)")
    parser.add_argument("--precisions",
                        help="comma-separated keras precisions (default: "
                             "mixed_bfloat16,float32; --tiny: float32)")
    parser.add_argument("--steps", type=int, help="timed steps per phase")
    parser.add_argument("--warmup", type=int,
                        help="untimed first steps per phase (>= 1: the first "
                             "compiles)")
    parser.add_argument("--budget", type=float,
                        help="seconds for all phases (default 570; --tiny "
                             "300)")
    parser.add_argument("--no-plain", action="store_true",
                        help="skip the per-width plain phases")
    parser.add_argument("--torch-amp", choices=["float16", "bfloat16"],
                        default="float16",
                        help="official phase autocast dtype on GPU (float16 "
                             "with GradScaler, as main_ssl.py's amp)")
    parser.add_argument("--torch-python", default=sys.executable,
                        help="Python that has PyTorch, for the official phase "
                             "(default: this one)")
    parser.add_argument("--jax-cache", metavar="DIR",
                        help="JAX persistent compilation cache: a rerun "
                             "skips most compilation")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def run_config(args):
    """The sizes of this run: FULL or TINY with the command line's changes."""
    config = dict(TINY if args.tiny else FULL, tiny=args.tiny)
    for key in ("steps", "warmup", "budget"):
        if getattr(args, key) is not None:
            config[key] = getattr(args, key)
    if args.precisions:
        config["precisions"] = [p.strip() for p in args.precisions.split(",")
                                if p.strip()]
    if not config["precisions"]:
        raise SystemExit("--precisions names no precision")
    if config["warmup"] < 1 or config["steps"] < 1:
        raise SystemExit("--warmup and --steps must be >= 1")
    for precision in config["precisions"]:
        if precision not in ("float32", "mixed_bfloat16", "mixed_float16"):
            raise SystemExit(f"unknown precision {precision!r}")
    return config


# ---------------------------------------------------------------- the plan
def plan_phases(args, config):
    """Phase specs in order of importance: the headline comparison first."""
    common = {key: config[key] for key in
              ("depth", "base_width", "image_size", "batch", "queue",
               "warmup", "steps")}
    common["jax_cache"] = args.jax_cache and os.path.abspath(args.jax_cache)
    phases = []
    for index, precision in enumerate(config["precisions"]):
        phases.append(dict(common, kind="keras_slim", precision=precision,
                           widths=config["widths"]))
        if index == 0 and args.official:
            phases.append(official_spec(args, config, common))
        if not args.no_plain:
            phases += [dict(common, kind="plain", precision=precision,
                            widths=[width]) for width in config["widths"]]
    return phases


def official_spec(args, config, common):
    return dict(common, kind="official", depth=OFFICIAL_DEPTH,
                precision=args.torch_amp, widths=config["widths"],
                official=os.path.abspath(args.official),
                python=args.torch_python,
                # Warm-up: cudnn.benchmark autotunes during the first steps.
                warmup=max(config["warmup"], 1 if args.tiny else 3))


def label(phase):
    if phase["kind"] == "keras_slim":
        return f"keras_slim JAX SlimCLR, widths {phase['widths']}"
    if phase["kind"] == "plain":
        return f"plain width {phase['widths'][0]} (SlimCLR, one width)"
    return f"official PyTorch s_MoCo, widths {phase['widths']}"


# ---------------------------------------------------------------- running
def run_all(config, phases):
    """Runs each phase in its own process within the run's time budget."""
    deadline = time.monotonic() + config["budget"]
    results = []
    for phase in phases:
        left = deadline - time.monotonic()
        if left < MIN_START_S:
            result = {"status": "skipped",
                      "error": f"time budget ({config['budget']:.0f} s) spent"}
        else:
            # --tiny phases share the budget freely: only its total matters.
            cap = left if config.get("tiny") else min(CAPS[phase["kind"]],
                                                      left)
            result = run_phase(phase, cap)
            if result["status"] == "timed out" and cap < CAPS[phase["kind"]]:
                # Cut short by the run's budget, not by its own cap.
                result["status"] = "out of budget"
        result = dict(phase, **result, label=label(phase))
        summarize(result)
        print(progress_line(result), flush=True)
        results.append(result)
    return results


def run_phase(phase, seconds):
    """Runs one phase in a child process, ended after `seconds`."""
    with tempfile.TemporaryDirectory(prefix="bench_gpu_") as folder:
        spec = dict(phase, stop_at=time.time() + seconds - WORKER_MARGIN_S,
                    result_path=os.path.join(folder, "result.json"))
        spec_path = os.path.join(folder, "spec.json")
        with open(spec_path, "w") as f:
            json.dump(spec, f)
        log_path = os.path.join(folder, "log.txt")
        python = phase.get("python", sys.executable)
        rc = run_child([python, os.path.abspath(__file__), "--worker",
                        spec_path], log_path, seconds)
        if os.path.exists(spec["result_path"]):
            with open(spec["result_path"]) as f:
                result = json.load(f)
        elif rc is None:
            result = {"status": "timed out",
                      "error": f"ended after its budget of {seconds:.0f} s"}
        else:
            result = {"status": "failed",
                      "error": f"the phase's process exited with {rc}"}
        if result["status"] != "ok":
            result["log_tail"] = log_tail(log_path)
            print(f"--- {label(phase)}: last lines of its output\n"
                  f"{result['log_tail']}", file=sys.stderr, flush=True)
        return result


def run_child(command, log_path, seconds):
    """Exit status of `command`, or None if it ran past `seconds`."""
    with open(log_path, "w") as log:
        # A session of its own: on timeout the whole group is ended. It no
        # longer gets the terminal's Ctrl-C, so an interrupt ends it here.
        child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
        try:
            return child.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            end_group(child)
            return None
        except BaseException:
            end_group(child)
            raise


def end_group(child):
    os.killpg(child.pid, signal.SIGKILL)
    child.wait()


def log_tail(path, lines=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-lines:])
    except OSError:
        return ""


def summarize(result):
    """Adds images/s and ms/step from the timed steps (warm-up excluded)."""
    steps = result.get("step_s") or []
    timed = steps[result["warmup"]:]
    if result["status"] != "ok":
        return
    if not timed:
        result.update(status="failed", error="no timed step")
        return
    result["first_step_s"] = steps[0]
    result["timed_steps"] = len(timed)
    result["step_ms"] = 1000.0 * sum(timed) / len(timed)
    result["images_per_s"] = result["batch"] * len(timed) / sum(timed)


def progress_line(result):
    if result["status"] != "ok":
        return (f"[{result['label']} | {result['precision']}] "
                f"{result['status']}: {result.get('error', '')}")
    return (f"[{result['label']} | {result['precision']}] "
            f"{result['images_per_s']:.1f} images/s, "
            f"{result['step_ms']:.1f} ms/step, first step "
            f"{result['first_step_s']:.1f} s")


# ---------------------------------------------------------------- report
def plain_sum(results, precision, widths):
    """The summed per-width plain step of one precision, or None."""
    rows = [r for r in results if r["kind"] == "plain"
            and r["precision"] == precision and r["status"] == "ok"]
    if sorted(r["widths"][0] for r in rows) != sorted(widths):
        return None
    seconds = sum(r["step_ms"] for r in rows) / 1000.0
    peaks = [r.get("peak_bytes") for r in rows]
    return {
        "label": f"sum of plain, widths {widths}", "precision": precision,
        "status": "ok", "step_ms": 1000.0 * seconds,
        "images_per_s": rows[0]["batch"] / seconds,
        # The widths run one after another: the largest peak is the cost.
        "peak_bytes": max(peaks) if None not in peaks else None,
    }


def ratios(results, sums):
    def ok(row):
        return row is not None and row.get("status") == "ok"

    official = next((r for r in results if r["kind"] == "official"), None)
    out = []
    for slim in (r for r in results if r["kind"] == "keras_slim"):
        precision = slim["precision"]
        if ok(slim) and ok(sums.get(precision)):
            out.append({
                "ratio": f"keras_slim / sum of plain ({precision})",
                "value": slim["images_per_s"]
                / sums[precision]["images_per_s"],
                "target": ">= 1.0 (the step costs no more than the widths "
                          "trained one by one)"})
        if ok(slim) and ok(official):
            out.append({
                "ratio": f"keras_slim {precision} / official "
                         f"({official['precision']})",
                "value": slim["images_per_s"] / official["images_per_s"],
                "target": ">= 1.3"})
    return out


def build_report(args, config, results):
    sums = {p: plain_sum(results, p, config["widths"])
            for p in config["precisions"]}
    return {
        "benchmark": "bench_gpu",
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "commit": git_commit(ROOT),
        "official_commit": git_commit(args.official) if args.official
        else None,
        "host": f"{platform.node()}, {os.cpu_count()} CPUs, Python "
                f"{platform.python_version()}",
        "config": config,
        "notes": NOTES + (TINY_NOTES if config["tiny"] else []),
        "phases": results,
        "sum_of_plain": {p: s for p, s in sums.items() if s is not None},
        "ratios": ratios(results, sums),
    }


NOTES = [
    "images = batch size per step; ms/step and images/s are the mean of the "
    "timed steps; 'first step' includes tracing and compilation.",
    "plain width w: SlimCLR (MoCo v2) around a one-width SlimResNet "
    "(widths=[1.0], base_width = base * w: the channels of width w), no "
    "distillation, its own key encoder and queue.",
    "keras_slim: model.fit on one device-resident batch; each step waits "
    "for its outputs before the next is timed.",
    "official: DistributedDataParallel helpers replaced for one device in "
    "the benchmark's process (all_gather = identity, batch shuffle = a local "
    "permutation, as with world size 1); no DDP wrapper, no learning-rate "
    "schedule call, no per-width accuracy logging; slim phase on from the "
    "first step (slim_start_epoch passed).",
    "official code used: models/s_moco.py, models/moco.py, "
    "models/backbones/s_resnet.py, models/backbones/slimmable_ops.py, "
    "models/distiller/, models/utils.py, utils/optim.py; nothing of it needs "
    "the network (models/model_zoo.py, which imports torchvision, is not "
    "used).",
    "peak memory: JAX peak_bytes_in_use, PyTorch max_memory_allocated; "
    "none on CPU.",
]
TINY_NOTES = [
    "--tiny checks the code path, it compares nothing: 2 timed steps, a "
    "ResNet-18 of base width 8 for keras_slim and the official ResNet-50 "
    "(it has no smaller depth), on CPU.",
]


def git_commit(path):
    try:
        return subprocess.check_output(
            ["git", "-C", path, "rev-parse", "--short", "HEAD"], text=True,
            stderr=subprocess.DEVNULL).strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def markdown(report):
    lines = ["| run | precision | images/s | ms/step | first step (s) | "
             "peak memory (GiB) | status |",
             "|---|---|---:|---:|---:|---:|---|"]
    rows = list(report["phases"]) + list(report["sum_of_plain"].values())
    for row in rows:
        lines.append("| " + " | ".join([
            row["label"], row["precision"],
            number(row.get("images_per_s"), "{:.1f}"),
            number(row.get("step_ms"), "{:.1f}"),
            number(row.get("first_step_s"), "{:.1f}"),
            number(row.get("peak_bytes") and row["peak_bytes"] / GIB,
                   "{:.2f}"),
            row["status"] + (f": {row['error']}" if row.get("error") else ""),
        ]) + " |")
    if report["ratios"]:
        lines += ["", "| ratio (throughput) | value | target |",
                  "|---|---:|---|"]
        lines += [f"| {r['ratio']} | {r['value']:.2f}x | {r['target']} |"
                  for r in report["ratios"]]
    devices = sorted({r["device"] for r in report["phases"]
                      if r.get("device")})
    lines += ["", f"Devices: {'; '.join(devices) or 'none reported'}. "
                  f"Host: {report['host']}. Commit {report['commit']}"
                  + (f", official {report['official_commit']}"
                     if report["official_commit"] else "") + "."]
    lines += [f"- {note}" for note in report["notes"]]
    return "\n".join(lines)


def number(value, fmt):
    return "-" if value is None else fmt.format(value)


def write_json_atomic(path, payload):
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(handle, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(tmp, path)


# ---------------------------------------------------------------- workers
# Workers import JAX, Keras or PyTorch inside their functions: the parent
# process never loads them (it only schedules), and KERAS_BACKEND must be set
# before Keras is imported.
def worker_main(spec_path):
    with open(spec_path) as f:
        spec = json.load(f)
    try:
        result = WORKERS[spec["kind"]](spec)
        result["status"] = "ok"
    except Exception as error:  # any failure is this phase's result
        traceback.print_exc()
        result = {"status": "failed",
                  "error": f"{type(error).__name__}: {error}"[:500]}
    write_json_atomic(spec["result_path"], result)
    return 0 if result["status"] == "ok" else 1


def keras_worker(spec):
    os.environ["KERAS_BACKEND"] = "jax"
    import jax

    if spec["jax_cache"]:
        jax.config.update("jax_compilation_cache_dir", spec["jax_cache"])
    import keras

    keras.mixed_precision.set_global_policy(spec["precision"])
    model = keras_model(spec)
    views = [jax.device_put(v) for v in numpy_views(spec, channels_last=True)]
    steps = fit_step_times(model, views, spec)
    device = jax.devices()[0]
    return {"step_s": steps, "peak_bytes": jax_peak_bytes(device),
            "device": f"JAX {device.platform} ({device.device_kind})",
            "versions": {"jax": jax.__version__, "keras": keras.__version__}}


def keras_model(spec):
    import keras

    # keras_slim from this folder: the GPU machine does not install it.
    sys.path.insert(0, ROOT)
    from keras_slim.backbones import SlimResNet
    from keras_slim.methods import SlimCLR

    keras.utils.set_random_seed(0)
    size = spec["image_size"]
    widths, base_width = spec["widths"], spec["base_width"]
    if spec["kind"] == "plain":
        widths, base_width = [1.0], plain_base_width(base_width, widths[0])
    backbone = SlimResNet(widths=widths, depth=spec["depth"], stem="imagenet",
                          base_width=base_width, input_shape=(size, size, 3))
    model = SlimCLR(backbone, base="mocov2", queue_size=spec["queue"])
    model.compile(optimizer=keras.optimizers.SGD(0.03, momentum=0.9))
    return model


def plain_base_width(base_width, width):
    """The base width of the full network equal to width `width`.

    A keras_slim backbone's largest width is 1.0; at width w a SlimResNet
    has int(c * w) channels, which is a network of base width base * w when
    that is a whole number (64 * [1, .75, .5, .25]).
    """
    channels = base_width * width
    if channels != int(channels):
        raise ValueError(f"base width {base_width} x width {width} is not a "
                         "whole number of channels")
    return int(channels)


def numpy_views(spec, channels_last):
    import numpy as np

    size, batch = spec["image_size"], spec["batch"]
    shape = (batch, size, size, 3) if channels_last else (batch, 3, size, size)
    rng = np.random.default_rng(0)
    return [rng.random(shape, dtype=np.float32) for _ in range(2)]


def fit_step_times(model, views, spec):
    """Seconds of each `fit` step, the first (compiling) one included.

    `fit` keeps the training state on the device between steps
    (`train_on_batch` copies it back to the Keras variables after each).
    """
    import jax
    import keras

    marks = []
    warmup, stop_at = spec["warmup"], spec["stop_at"]

    class StepClock(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            marks.append(time.perf_counter())

        def on_train_batch_end(self, batch, logs=None):
            # The step's outputs come from one executable: once its loss is
            # ready, so is the updated state.
            jax.block_until_ready(logs)
            marks.append(time.perf_counter())
            if len(marks) > warmup + 1 and out_of_time(marks, stop_at):
                self.model.stop_training = True

    def batches():
        while True:
            yield tuple(views)

    model.fit(batches(), steps_per_epoch=warmup + spec["steps"], epochs=1,
              shuffle=False, verbose=0, callbacks=[StepClock()])
    return [b - a for a, b in zip(marks, marks[1:])]


def out_of_time(marks, stop_at):
    """Whether one more step like the last would end past `stop_at`."""
    return time.time() + (marks[-1] - marks[-2]) > stop_at


def jax_peak_bytes(device):
    try:
        stats = device.memory_stats()
    except Exception:  # not every platform implements it
        return None
    return (stats or {}).get("peak_bytes_in_use")


def official_worker(spec):
    import torch

    cuda = torch.cuda.is_available()
    device = torch.device("cuda" if cuda else "cpu")
    s_moco, s_resnet, optim = import_official(spec["official"])
    single_device(s_moco, cuda)
    torch.manual_seed(0)
    torch.backends.cudnn.benchmark = True  # as main_ssl.py
    # dim 128, queue, m 0.999, tau 0.2 (scripts/mocov2.sh), mlp head.
    model = s_moco.s_MoCo(s_resnet.Model, 128, spec["queue"], 0.999, 0.2,
                          True, args=official_args(spec)).to(device)
    # main_ssl.py: SGD over the parameter groups (no decay on norms/biases).
    groups = optim.get_parameter_groups(model, 0.2, 1e-4, norm_weight_decay=0,
                                        norm_bias_no_decay=True)
    optimizer = torch.optim.SGD(groups, 0.2, momentum=0.9, weight_decay=1e-4)
    step = official_step(model, optimizer, device, spec["precision"], [
        torch.from_numpy(v).to(device)
        for v in numpy_views(spec, channels_last=False)])
    steps = timed_calls(step, spec)
    return {"step_s": steps,
            "peak_bytes": torch.cuda.max_memory_allocated() if cuda else None,
            "device": (f"PyTorch cuda ({torch.cuda.get_device_name()})"
                       if cuda else "PyTorch cpu"),
            "precision": amp_description(cuda, spec["precision"]),
            "versions": {"torch": torch.__version__}}


def import_official(path):
    """The official modules, imported from the checkout at `path`."""
    if not os.path.isfile(os.path.join(path, "models", "s_moco.py")):
        raise FileNotFoundError(f"{path} has no models/s_moco.py: not a "
                                "checkout of mzhaoshuai/SlimCLR")
    sys.path.insert(0, path)
    from models import s_moco
    from models.backbones import s_resnet
    from utils import optim

    return s_moco, s_resnet, optim


def single_device(s_moco, cuda):
    """Replaces the official DistributedDataParallel helpers for one device.

    With one process, `concat_all_gather` returns its input and
    `_batch_shuffle_ddp` / `_batch_unshuffle_ddp` permute and restore the
    local batch: what they compute at world size 1, without a process group.
    """
    import torch

    @torch.no_grad()
    def shuffle(self, x):
        order = torch.randperm(x.shape[0], device=x.device)
        return x[order], torch.argsort(order)

    @torch.no_grad()
    def unshuffle(self, x, restore):
        return x[restore]

    s_moco.s_MoCo._batch_shuffle_ddp = shuffle
    s_moco.s_MoCo._batch_unshuffle_ddp = unshuffle
    s_moco.concat_all_gather = lambda tensor: tensor
    if not cuda:
        # The official forward builds its labels with `.cuda()`: on a
        # CPU-only check (--tiny) they stay where they are.
        torch.Tensor.cuda = lambda self, *args, **kwargs: self


def official_args(spec):
    """The model arguments of scripts/mocov2.sh (runs 01/02, slimmable)."""
    return types.SimpleNamespace(
        depth=spec["depth"], image_size=spec["image_size"],
        width_mult_list=list(spec["widths"]), slim_fc="mocov2_slim",
        overlap_weight=1, moco_mlp_dim=4096, simclr_mlp_dim=2048,
        inplace_distill=0, inplace_distill_mixed=0, seed_loss=1, mse_loss=0,
        atkd_loss=0, dkd_loss=0, aux_loss_w=0.5, teacher_T=5.0,
        student_T=5.0, full_distill=0, slim_loss_weighted=5,
        # The timed steps are past the slow start: every width trains.
        slim_start_epoch=-1)


def amp_description(cuda, precision):
    if not cuda:
        return "autocast bfloat16 on CPU, no GradScaler"
    scaler = " + GradScaler" if precision == "float16" else ""
    return f"autocast {precision}{scaler}"


def official_step(model, optimizer, device, precision, views):
    """One step of main_ssl.py's train_epoch_slim (AMP branch)."""
    import torch

    cuda = device.type == "cuda"
    dtype = getattr(torch, precision) if cuda else torch.bfloat16
    scaler = torch.amp.GradScaler("cuda") if cuda and precision == "float16" \
        else None
    criterion = torch.nn.CrossEntropyLoss().to(device)

    def step():
        with torch.autocast(device.type, dtype=dtype):
            output = model(im_q=views[0], im_k=views[1], criterion=criterion,
                           epoch=0)
        loss = output["loss"]
        if scaler is not None:
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
        else:
            loss.backward()
            optimizer.step()
        optimizer.zero_grad()
        # .item() waits for the step's kernels, as the loop's logging does.
        return loss.item()

    return step


def timed_calls(step, spec):
    """Seconds of each call of `step`, warm-up included, within the budget."""
    marks = [time.perf_counter()]
    for index in range(spec["warmup"] + spec["steps"]):
        step()
        marks.append(time.perf_counter())
        if index >= spec["warmup"] and out_of_time(marks, spec["stop_at"]):
            break
    return [b - a for a, b in zip(marks, marks[1:])]


WORKERS = {"keras_slim": keras_worker, "plain": keras_worker,
           "official": official_worker}


# ---------------------------------------------------------------- main
def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        return worker_main(args.worker)
    config = run_config(args)
    results = run_all(config, plan_phases(args, config))
    report = build_report(args, config, results)
    print()
    print(markdown(report))
    if args.output:
        write_json_atomic(args.output, report)
        print(f"\nwrote {args.output}")
    # A budget skip is no failure of keras_slim; an error or a hang is.
    slim_failed = any(r["status"] in ("failed", "timed out") for r in results
                      if r["kind"] == "keras_slim")
    return 1 if slim_failed else 0


if __name__ == "__main__":
    sys.exit(main())
