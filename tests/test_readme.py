"""The README's Quick start is what CI runs: keep them the same."""

import os
import re

ROOT = os.path.join(os.path.dirname(__file__), os.pardir)


def _read(name):
    with open(os.path.join(ROOT, name)) as f:
        return f.read()


def test_quick_start_has_three_commands_that_ci_runs_verbatim():
    readme = _read("README.md")
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)\n```", section, re.S)
    assert len(commands) == 3  # main job, TensorFlow suite, JAX suite
    ci_lines = _read(".ci/run").splitlines()
    for command in commands:
        assert "\n" not in command.strip()
        assert command.strip() in ci_lines
