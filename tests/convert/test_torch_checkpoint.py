"""The safe reader of torch files: real tensors out, code refused unrun."""

import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest

from keras_slim.convert import CheckpointFormatError
from keras_slim.convert import UnsafeCheckpointError
from keras_slim.convert import read_torch_checkpoint
from tests.convert._fixtures import fixture
from tests.convert._fixtures import reference


class _RunsShell:
    """Pickles to a call of os.system, as a malicious checkpoint would."""

    def __init__(self, command):
        self.command = command

    def __reduce__(self):
        return (os.system, (self.command,))


def _zip_with_pickle(path, payload):
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("archive/data.pkl", payload)
        archive.writestr("archive/version", "3\n")


def test_reads_the_official_layout_lazily_with_exact_values():
    checkpoint = read_torch_checkpoint(fixture("slimclr_mocov2_tiny.pth.tar"))
    assert checkpoint["epoch"] == 200 and checkpoint["arch"] == "resnet50"
    state = checkpoint["state_dict"]
    kernel = state["module.encoder_q.conv1.weight"]
    assert kernel.shape == (4, 3, 7, 7) and kernel.dtype == "float32"
    # The queue is the one the official model used for its references.
    queue = np.asarray(state["module.queue"])
    np.testing.assert_array_equal(queue.T, reference(
        "slimclr_mocov2_tiny.pth.tar")["queue"])
    assert int(np.asarray(state["module.queue_ptr"])[0]) == 6
    # Integer buffers and the optimizer's momentum state read too.
    assert int(np.asarray(state[
        "module.encoder_q.bn1.bn.0.num_batches_tracked"])) == 1234
    momentum = checkpoint["optimizer"]["state"][0]["momentum_buffer"]
    assert momentum.shape == (4, 3, 7, 7)
    np.testing.assert_allclose(np.asarray(momentum), 1e-3 + 1e-4 * np.asarray(
        kernel), rtol=1e-5)


def test_a_pickle_that_calls_os_system_is_refused_and_nothing_runs(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({"state_dict": _RunsShell(f"touch {marker}")},
                           protocol=2)
    path = tmp_path / "evil.pth.tar"
    _zip_with_pickle(path, payload)
    with pytest.raises(UnsafeCheckpointError) as err:
        read_torch_checkpoint(path)
    message = str(err.value)
    assert "'posix.system'" in message or "'os.system'" in message
    assert str(path) in message and "Nothing was run" in message
    assert not marker.exists()


@pytest.mark.parametrize("module, name", [
    ("builtins", "eval"), ("subprocess", "Popen"), ("argparse", "Namespace"),
    ("torch.nn.modules.conv", "Conv2d"),
])
def test_every_global_outside_the_allow_list_is_refused(tmp_path, module, name):
    payload = (b"\x80\x02c" + module.encode() + b"\n" + name.encode()
               + b"\n)R.")
    path = tmp_path / "global.pth"
    _zip_with_pickle(path, payload)
    with pytest.raises(UnsafeCheckpointError, match=f"'{module}.{name}'"):
        read_torch_checkpoint(path)


def test_a_legacy_pickle_file_is_named_and_not_unpickled(tmp_path):
    marker = tmp_path / "pwned"
    path = tmp_path / "legacy.pth"
    path.write_bytes(pickle.dumps(_RunsShell(f"touch {marker}"), protocol=2))
    with pytest.raises(CheckpointFormatError, match="legacy"):
        read_torch_checkpoint(path)
    assert not marker.exists()


def test_truncated_and_foreign_files_get_clear_errors(tmp_path):
    data = open(fixture("slimclr_lincls_tiny.pth.tar"), "rb").read()
    truncated = tmp_path / "truncated.pth.tar"
    truncated.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointFormatError, match="truncated|damaged"):
        read_torch_checkpoint(truncated)
    text = tmp_path / "notes.pth"
    text.write_text("not a checkpoint")
    with pytest.raises(CheckpointFormatError, match="not a PyTorch"):
        read_torch_checkpoint(text)
    other_zip = tmp_path / "photos.zip"
    with zipfile.ZipFile(other_zip, "w") as archive:
        archive.writestr("a.txt", "hello")
    with pytest.raises(CheckpointFormatError, match="data.pkl"):
        read_torch_checkpoint(other_zip)
    with pytest.raises(FileNotFoundError):
        read_torch_checkpoint(tmp_path / "missing.pth")


def test_a_tensor_whose_record_is_missing_fails_when_read(tmp_path):
    source = zipfile.ZipFile(fixture("slimclr_lincls_tiny.pth.tar"))
    path = tmp_path / "no_record.pth.tar"
    with zipfile.ZipFile(path, "w") as archive:
        for name in source.namelist():
            if not name.endswith("/data/0"):
                archive.writestr(name, source.read(name))
    state = read_torch_checkpoint(path)["state_dict"]
    first = next(iter(state.values()))
    with pytest.raises(CheckpointFormatError, match="no record"):
        np.asarray(first)


def test_reader_runs_where_torch_cannot_be_imported():
    code = (
        "import sys\n"
        "class NoTorch:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'torch':\n"
        "            raise ImportError('torch is blocked')\n"
        "sys.meta_path.insert(0, NoTorch())\n"
        "from keras_slim.convert.torch_checkpoint import read_torch_checkpoint"
        "\nimport numpy as np\n"
        f"c = read_torch_checkpoint({fixture('slimclr_lincls_tiny.pth.tar')!r})"
        "\nprint(np.asarray(c['state_dict']['module.conv1.weight']).shape)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "(4, 3, 7, 7)"
