"""examples/finetune_all_widths.py runs end to end on tiny settings."""

import os
import re
import subprocess
import sys

import pytest

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(ROOT, "examples", "finetune_all_widths.py")


def _run(tmp_path, *argv):
    env = dict(os.environ, PYTHONPATH=ROOT, TF_CPP_MIN_LOG_LEVEL="3",
               TF_NUM_INTRAOP_THREADS="1", TF_NUM_INTEROP_THREADS="1")
    return subprocess.run([sys.executable, SCRIPT, "--tiny", *argv],
                          cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=600)


@pytest.mark.parametrize("bad", [False, True], ids=["tiny", "bad_backbone"])
def test_the_example_prints_a_row_per_width_or_a_clear_error(tmp_path, bad):
    if bad:
        done = _run(tmp_path, "--backbone", str(tmp_path / "missing"))
        assert done.returncode != 0
        assert "error: no backbone at" in done.stdout + done.stderr
        assert "Traceback" not in done.stderr
        return
    done = _run(tmp_path, "--output-dir", str(tmp_path / "pretrained"))
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    rows = re.findall(r"^\s+(1|0\.5)\s+([\d,]+)\s+([\d.]+)\s+([\d.]+)%\s+"
                      r"([\d.]+)%$", done.stdout, re.M)
    assert [r[0] for r in rows] == ["1", "0.5"], done.stdout
    full, half = rows
    assert int(full[1].replace(",", "")) > 3 * int(half[1].replace(",", ""))
    for row in rows:
        assert 0 <= float(row[3]) <= 100 and 0 <= float(row[4]) <= 100
