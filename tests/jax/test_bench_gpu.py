"""`benchmarks/bench_gpu.py --tiny`: the GPU benchmark's code path, end to end
on CPU-JAX (as on the GPU machine: no TensorFlow needed)."""

import json
import os
import subprocess
import sys

ROOT = __file__.rsplit("/tests/", 1)[0]


def test_the_gpu_benchmark_runs_end_to_end_in_tiny_mode(tmp_path):
    output = tmp_path / "bench_gpu.json"
    env = dict(os.environ, KERAS_BACKEND="jax")
    done = subprocess.run(
        [sys.executable, "benchmarks/bench_gpu.py", "--tiny",
         "--output", str(output)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    report = json.loads(output.read_text())
    slim = [p for p in report["phases"] if p["kind"] == "keras_slim"]
    plain = [p for p in report["phases"] if p["kind"] == "plain"]
    assert slim and all(p["status"] == "ok" for p in slim + plain)
    assert all(p["images_per_s"] > 0 for p in slim + plain)
    # Every width of the slimmable step has its plain twin, summed.
    assert sorted(p["widths"][0] for p in plain) == sorted(
        report["config"]["widths"])
    assert [r["ratio"] for r in report["ratios"]] == [
        "keras_slim / sum of plain (float32)"]
    assert "keras_slim / sum of plain" in done.stdout  # the Markdown table
