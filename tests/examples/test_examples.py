"""Every example in examples/ runs end to end on tiny settings (`--tiny`).

Starting TensorFlow and tracing a training step dominate a tiny run, so to
keep this file short (95 s on 2 idle cores with the export example, 2026-11-27; about
110-130 s while other TensorFlow jobs share it) the examples run one
after the other in ONE subprocess, each as `__main__` with its own
arguments (`runpy`), exactly as `python examples/NAME.py ...` runs it; the
multi-worker example still starts its own two worker processes.
`mirrored_pretrain.py` runs first: it splits the CPU into two logical
devices, which TensorFlow allows only before its runtime starts. The
`tpu_pretrain.py` runs come last (the dry run sets XLA_FLAGS).
"""

import json
import math
import os
import re
import subprocess
import sys
import textwrap

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
EXAMPLES = os.path.join(ROOT, "examples")
TIMEOUT = 900

# (name, script, arguments); "{tmp}" is the test's temporary folder. The
# "bad_" runs give wrong input and must stop with a clear message.
RUNS = [
    ("bad_mirrored_batch", "mirrored_pretrain.py",
     ["--tiny", "train.batch_size=33"]),
    ("mirrored", "mirrored_pretrain.py", ["--tiny"]),
    ("bad_slimclr_data", "slimclr_cifar10.py",
     ["--tiny", "--data", "{tmp}/no_such_data.zip"]),
    ("slimclr", "slimclr_cifar10.py",
     ["--tiny", "--output-dir", "{tmp}/slimclr"]),
    ("linear_evaluation", "linear_evaluation.py",
     ["--tiny", "--backbone", "{tmp}/slimclr/backbone.keras",
      "--output-dir", "{tmp}/linear"]),
    ("bad_linear_evaluation_backbone", "linear_evaluation.py",
     ["--tiny", "--backbone", "{tmp}/no_such_backbone.keras"]),
    ("us3l", "us3l_universal.py", ["--tiny"]),
    ("bad_us3l_range", "us3l_universal.py",
     ["--tiny", "--min-width", "0.9", "--max-width", "0.5"]),
    ("bad_multi_worker_no_tf_config", "multi_worker_pretrain.py", ["--tiny"]),
    ("bad_tpu_config_key", "tpu_pretrain.py",
     ["--tiny", "--dry-run", "train.epochz=1"]),
    # Cross-replica BatchNorm (what a real run uses; --tiny turns it off)
    # and MoCo v2, whose queue and key encoder are state too: every array
    # of the two workers must end identical.
    ("multi_worker", "multi_worker_pretrain.py",
     ["--tiny", "--launch-local", "2", "backbone.synchronized=true",
      "method.base=mocov2", "method.options.queue_size=64"]),
    ("finetune", "finetune_all_widths.py",
     ["--tiny", "--backbone", "{tmp}/slimclr/backbone.keras"]),
    ("bad_finetune_backbone", "finetune_all_widths.py",
     ["--tiny", "--backbone", "{tmp}/no_such_backbone.keras"]),
    ("export", "export_tflite.py", ["--tiny", "--output", "{tmp}/exported"]),
    ("bad_export_backbone", "export_tflite.py",
     ["--tiny", "--backbone", "{tmp}/no_such_backbone.keras"]),
    ("imagenet_pretrained", "imagenet_pretrained.py",
     ["--tiny", "--output", "{tmp}/imagenet"]),
    ("bad_imagenet_checkpoint", "imagenet_pretrained.py",
     ["--tiny", "--checkpoint", "{tmp}/no_such_checkpoint.pth.tar"]),
    ("tpu_without_tpu", "tpu_pretrain.py", ["--tiny"]),
    ("tpu_dry_run", "tpu_pretrain.py", ["--tiny", "--dry-run"]),
]

# Runs each example as __main__; a section of output per example.
DRIVER = textwrap.dedent(
    """
    import json, runpy, sys, traceback
    from tests._gc import relax_gc
    relax_gc()
    for name, path, argv in json.loads(sys.argv[1]):
        print(f"<<<start {name}>>>", flush=True)
        sys.argv = [path, *argv]
        try:
            runpy.run_path(path, run_name="__main__")
            code = 0
        except SystemExit as exit:
            code = exit.code or 0
            if isinstance(code, str):
                print(code)
        except BaseException:
            traceback.print_exc(file=sys.stdout)
            code = "exception"
        print(f"<<<end {name} {json.dumps(code)}>>>", flush=True)
    """
)


def _has_tpu():
    return os.path.exists("/dev/accel0") or bool(os.environ.get("TPU_NAME"))


@pytest.fixture(scope="module")
def outputs(tmp_path_factory):
    """{name: (exit code or SystemExit message, printed text)}."""
    tmp = str(tmp_path_factory.mktemp("examples"))
    runs = [(name, os.path.join(EXAMPLES, script),
             [a.replace("{tmp}", tmp) for a in argv])
            for name, script, argv in RUNS]
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3",
               # The machine is shared: one TensorFlow thread per pool.
               TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    env.pop("TF_CONFIG", None)
    done = subprocess.run(
        [sys.executable, "-c", DRIVER, json.dumps(runs)], cwd=tmp, env=env,
        capture_output=True, text=True, timeout=TIMEOUT)
    sections = {}
    pattern = r"<<<start (\w+)>>>\n(.*?)<<<end \1 (.*?)>>>"
    for name, text, code in re.findall(pattern, done.stdout, re.S):
        sections[name] = (json.loads(code), text)
    missing = [name for name, _, _ in RUNS if name not in sections]
    assert not missing and done.returncode == 0, (
        f"examples {missing} did not finish (exit {done.returncode}):\n"
        f"{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
    sections["tmp"] = tmp
    return sections


def _succeeded(outputs, name):
    code, text = outputs[name]
    assert code == 0, f"{name} exited with {code!r}:\n{text[-3000:]}"
    return text


def _table(text, columns):
    """{width: {column: value}} of a `format_table` table in `text`.

    Percentages become fractions; the table must have `columns`.
    """
    lines = text.splitlines()
    starts = [i for i, line in enumerate(lines)
              if line.split()[:1] == ["width"]]
    assert starts, f"no table in:\n{text}"
    header = re.split(r"\s{2,}", lines[starts[-1]].strip())
    assert set(columns) <= set(header), header
    rows = {}
    for line in lines[starts[-1] + 2:]:
        cells = re.split(r"\s{2,}", line.strip())
        if len(cells) != len(header):
            break
        values = {}
        for title, cell in zip(header, cells):
            if cell.endswith("%"):
                values[title] = float(cell[:-1]) / 100
            else:
                values[title] = float(cell.replace(",", ""))
        rows[values["width"]] = values
    return rows


def _check_accuracies(rows, widths, columns):
    assert sorted(rows, reverse=True) == widths, rows
    for width, row in rows.items():
        assert row["params"] > 0 and row["MFLOPs"] > 0, row
        for column in columns:
            assert 0.0 <= row[column] <= 1.0, (width, column, row)
    # A narrower width has fewer parameters.
    params = [rows[w]["params"] for w in widths]
    assert params == sorted(params, reverse=True), params


def test_slimclr_trains_every_width_and_saves_the_backbone(outputs):
    text = _succeeded(outputs, "slimclr")
    assert re.search(r"epoch 1/1  4/4 .* loss \d", text), text
    assert "kNN monitor after epoch 1: w1 " in text
    rows = _table(text, ["kNN", "linear"])
    _check_accuracies(rows, [1.0, 0.5], ["kNN", "linear"])
    folder = os.path.join(outputs["tmp"], "slimclr")
    with open(os.path.join(folder, "results.json")) as f:
        results = json.load(f)
    assert [row["width"] for row in results["widths"]] == [1.0, 0.5]
    assert math.isfinite(results["final_loss"])
    assert os.path.getsize(os.path.join(folder, "backbone.keras")) > 0
    assert not [n for n in os.listdir(folder) if "partial" in n]


def test_linear_evaluation_of_the_saved_backbone(outputs):
    text = _succeeded(outputs, "linear_evaluation")
    assert "loaded " in text and "SlimResNet" in text
    rows = _table(text, ["kNN", "linear"])
    _check_accuracies(rows, [1.0, 0.5], ["kNN", "linear"])
    # The same backbone on the same images: the kNN of the saved and
    # reloaded backbone equals the one measured right after training.
    trained = _table(outputs["slimclr"][1], ["kNN"])
    assert {w: r["kNN"] for w, r in rows.items()} == \
        {w: r["kNN"] for w, r in trained.items()}
    with open(os.path.join(outputs["tmp"], "linear", "results.json")) as f:
        assert len(json.load(f)["widths"]) == 2


def test_us3l_calibrates_and_evaluates_widths_of_the_range(outputs):
    text = _succeeded(outputs, "us3l")
    assert "calibrated the BatchNorm statistics of 3 widths" in text
    rows = _table(text, ["kNN"])
    _check_accuracies(rows, [1.0, 0.625, 0.25], ["kNN"])


def test_mirrored_runs_two_replicas(outputs):
    text = _succeeded(outputs, "mirrored")
    assert "2 replica(s) on " in text and "CPU:1" in text
    assert "global batch 32, 16 per replica" in text
    _check_accuracies(_table(text, ["kNN"]), [1.0, 0.5], ["kNN"])


def test_multi_worker_workers_end_identical(outputs):
    text = _succeeded(outputs, "multi_worker")
    assert "started 2 workers on 127.0.0.1:" in text
    assert "worker 0 of 2: 2 replicas in sync" in text
    # `fit` under MultiWorkerMirroredStrategy (keras issue 20585 worked
    # around) with cross-replica BatchNorm: every array of the two workers,
    # weights, BatchNorm statistics, MoCo's key encoder and queue, bit for
    # bit.
    # The chief's log: four steps trained with a finite loss (the deleted
    # tests/methods/test_multi_worker.py checked the weights moved).
    assert re.search(r"epoch 1/1  4/4 .* loss \d", text), text
    assert "2 workers finished with identical trained weights" in text
    assert re.search(r"and identical state \(\d+ arrays: BatchNorm", text), text
    _check_accuracies(_table(text, ["kNN"]), [1.0, 0.5], ["kNN"])


@pytest.mark.parametrize("name, message", [
    ("bad_mirrored_batch", "train.batch_size=33 is not divisible by the 2 "
     "replicas"),
    ("bad_slimclr_data", "no_such_data.zip: no such file or directory"),
    ("bad_linear_evaluation_backbone", "no backbone at"),
    ("bad_us3l_range", "must be smaller than `max_width`"),
    ("bad_multi_worker_no_tf_config", "TF_CONFIG is not set"),
    ("bad_tpu_config_key", "train.epochz: unknown key; did you mean "
     "'epochs'?"),
    ("bad_export_backbone", "no_such_backbone.keras: no such file"),
])
def test_bad_input_stops_with_a_clear_message(outputs, name, message):
    code, text = outputs[name]
    assert isinstance(code, str) and code.startswith("error: "), (code, text)
    assert message in code, code
    assert "Traceback" not in text


@pytest.mark.skipif(_has_tpu(), reason="this machine has a TPU")
def test_tpu_example_without_a_tpu_says_so(outputs):
    code, text = outputs["tpu_without_tpu"]
    assert isinstance(code, str) and "no TPU found" in code, (code, text)
    assert "--dry-run" in code


def test_tpu_dry_run_compiles_the_step_with_xla(outputs):
    text = _succeeded(outputs, "tpu_dry_run")
    assert ("the training step compiled with XLA (jit_compile=True, "
            "mixed_bfloat16) and ran 1 step(s)") in text
    slots = re.findall(r"^\s+(w[\d.]+)\s+(\S+)\s+(\S+)$", text, re.M)
    assert [s[0] for s in slots] == ["w1", "w0.5"], text
    assert all(math.isfinite(float(s[1])) for s in slots)


@pytest.mark.skipif(not _has_tpu(), reason="needs a TPU")
def test_tpu_pretrain_on_a_tpu(tmp_path):
    done = subprocess.run(
        [sys.executable, os.path.join(EXAMPLES, "tpu_pretrain.py"), "--tiny",
         "--tpu", os.environ.get("TPU_NAME", "local")],
        env=dict(os.environ, PYTHONPATH=ROOT), capture_output=True,
        text=True, timeout=TIMEOUT, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "TPUStrategy" in done.stdout


def test_export_writes_verified_files_and_switches_width(outputs):
    text = _succeeded(outputs, "export")
    with open(os.path.join(outputs["tmp"], "exported", "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["verified"] is True
    assert [m["file"] for m in manifest["models"]] == [
        f"w{w}_{p}.tflite" for w in ("1", "0.5", "0.25")
        for p in ("float32", "float16")]
    for model in manifest["models"]:
        check = model["verification"]
        assert check["top1"] == pytest.approx(check["keras_top1"], abs=0.01)
    for key in ("w1", "w0.5", "w0.25"):
        assert f"bundle_float32.tflite[{key}]: predicted classes [" in text


def test_every_example_is_run_and_listed_in_the_readme():
    scripts = {n for n in os.listdir(EXAMPLES) if n.endswith(".py")}
    assert scripts == {
        script for name, script, _ in RUNS if not name.startswith("bad_")}
    with open(os.path.join(EXAMPLES, "README.md")) as f:
        readme = f.read()
    assert [s for s in sorted(scripts) if s not in readme] == []


def test_imagenet_pretrained_classifies_and_exports_every_width(outputs):
    text = _succeeded(outputs, "imagenet_pretrained")
    assert "converting " in text and "(read safely, no torch)" in text
    assert "widths [1.0, 0.75, 0.5, 0.25], 4 ImageNet probes of 10" in text
    for width, features in ((1, 128), (0.75, 96), (0.5, 64), (0.25, 32)):
        assert re.search(rf"^\s+{width:g}\s+{features}\s+\[", text, re.M)
    folder = os.path.join(outputs["tmp"], "imagenet")
    with open(os.path.join(folder, "manifest.json")) as f:
        manifest = json.load(f)
    assert manifest["verified"] is True
    assert sorted(m["width"] for m in manifest["models"]) == [
        0.25, 0.5, 0.75, 1.0]


def test_imagenet_pretrained_names_a_missing_checkpoint(outputs):
    code, _ = outputs["bad_imagenet_checkpoint"]
    assert "no file" in str(code) and "no_such_checkpoint" in str(code)


def test_finetune_prints_a_row_per_width_beside_random_init(outputs):
    text = _succeeded(outputs, "finetune")
    assert "fine-tuning SlimResNet widths" in text
    rows = re.findall(r"^\s+(1|0\.5|0\.25)\s+([\d,]+)\s+([\d.]+)\s+"
                      r"([\d.]+)%\s+([\d.]+)%$", text, re.M)
    widths = [r[0] for r in rows]
    assert widths[0] == "1" and len(widths) >= 2, text
    params = [int(r[1].replace(",", "")) for r in rows]
    assert params == sorted(params, reverse=True) and params[0] > params[-1]
    for row in rows:
        assert 0 <= float(row[3]) <= 100 and 0 <= float(row[4]) <= 100


def test_finetune_names_a_missing_backbone(outputs):
    code, text = outputs["bad_finetune_backbone"]
    assert code != 0 and "error: no backbone at" in str(code) + text
