"""Helpers shared by the benchmarks: timing, machine facts, result files."""

import datetime
import json
import os
import platform
import statistics
import subprocess
import time


def machine():
    """A one-line description of this machine for BENCHMARKS.md."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    import tensorflow as tf

    return (
        f"{os.cpu_count()} cores, {cpu}; TensorFlow {tf.__version__}, "
        f"TF_ENABLE_ONEDNN_OPTS={os.environ.get('TF_ENABLE_ONEDNN_OPTS', 'unset')}"
    )


def time_call(fn, *args):
    """Seconds one call of `fn` takes, waiting for its result."""
    start = time.perf_counter()
    result = fn(*args)
    if hasattr(result, "numpy"):
        result.numpy()
    return time.perf_counter() - start


def interleaved_medians(functions, repeats, warmup=2):
    """Median seconds of each function, timed in alternation (A B A B ...).

    Alternating the candidates makes slow drifts of a noisy machine hit all of
    them alike, so their ratio is fair.
    """
    for fn in functions:
        for _ in range(warmup):
            time_call(fn)
    samples = [[] for _ in functions]
    for _ in range(repeats):
        for fn, bucket in zip(functions, samples):
            bucket.append(time_call(fn))
    return [statistics.median(bucket) for bucket in samples]


def git_commit():
    try:
        return subprocess.check_output(
            ["git", "rev-parse", "--short", "HEAD"], text=True,
            stderr=subprocess.DEVNULL,
        ).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_result(name, payload):
    """Writes benchmarks/results/NAME.json atomically and returns its path."""
    folder = os.path.join(os.path.dirname(__file__), "results")
    os.makedirs(folder, exist_ok=True)
    payload = dict(payload)
    payload["date"] = datetime.date.today().isoformat()
    payload["commit"] = git_commit()
    path = os.path.join(folder, f"{name}.json")
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(payload, f, indent=2)
    os.replace(tmp, path)
    return path


def alternated_rounds(sides, rounds, measure):
    """{side: [seconds per round]}: `measure(side)` for each side in turn,
    `rounds` times, so a drifting machine slows every side alike."""
    seconds = {side: [] for side in sides}
    for _ in range(rounds):
        for side in sides:
            seconds[side].append(measure(side))
    return seconds


def print_rounds_table(title, label, seconds, baseline, name=str):
    """A markdown table of each side's median seconds, its rounds and its
    ratio to `baseline`'s median; returns {side: median}."""
    median = {side: statistics.median(s) for side, s in seconds.items()}
    print(f"| {title} | {label} (s, median) | rounds | vs {name(baseline)} |"
          "\n|---|---|---|---|")
    for side, values in seconds.items():
        print(f"| {name(side)} | {median[side]:.1f} | "
              f"{', '.join(f'{s:.1f}' for s in values)} | "
              f"{median[side] / median[baseline]:.2f} |")
    return median
