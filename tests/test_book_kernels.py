"""``make book`` never hangs on a kernel that does not start (a port clash, say).

``tools.book.execute_notebook`` runs each notebook in a kernel that talks over unix sockets (no TCP
port to clash on); a kernel that does not answer within ``STARTUP_TIMEOUT`` is started again, fresh,
and after ``KERNEL_STARTS`` attempts the build stops with one line naming the notebook.

Stand-in kernels (kernel specs in a temporary ``JUPYTER_PATH``) play the failures: one that never
answers its first start (as a kernel whose port another kernel took), and one that never answers.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
pytest.importorskip("nbclient")

from tools import book  # noqa: E402

pytestmark = pytest.mark.slow  # kernels that never answer: three 5 s waits

MUTE_THEN_REAL = """\
import os, sys, time
count = sys.argv[1]
n = int(open(count).read()) if os.path.exists(count) else 0
open(count, "w").write(str(n + 1))
if n < int(sys.argv[2]):
    time.sleep(600)  # started, never answers: what a kernel on a clashing port looks like
os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", "-f", sys.argv[3]])
"""


def _kernel_spec(tmp_path: Path, name: str, mute_starts: int) -> Path:
    script = tmp_path / "fake_kernel.py"
    script.write_text(MUTE_THEN_REAL)
    spec = tmp_path / "jupyter" / "kernels" / name
    spec.mkdir(parents=True)
    argv = [sys.executable, str(script), str(tmp_path / f"{name}.count"), str(mute_starts)]
    argv.append("{connection_file}")
    spec.joinpath("kernel.json").write_text(
        json.dumps({"argv": argv, "display_name": name, "language": "python"})
    )
    return tmp_path / f"{name}.count"


def _notebook(tmp_path: Path, code: str = "print(6 * 7)") -> Path:
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
    path = tmp_path / "nb" / "tiny.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    return path


@pytest.fixture
def kernels(tmp_path, monkeypatch):
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    monkeypatch.setattr(book, "STARTUP_TIMEOUT", 5)
    monkeypatch.setattr(book, "KERNEL_STARTS", 3)
    return tmp_path


def test_a_kernel_that_does_not_start_is_started_again(kernels, monkeypatch, capsys):
    count = _kernel_spec(kernels, "mute-once", mute_starts=1)
    monkeypatch.setattr(book, "KERNEL_NAME", "mute-once")
    path = _notebook(kernels)
    name, _ = book.execute_notebook(str(path), str(book.ROOT / "solutions"))
    assert name == "tiny.ipynb"
    assert count.read_text() == "2", "the kernel was not started again"
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert outputs and outputs[0].text == "42\n", outputs
    said = capsys.readouterr().out
    assert "tiny.ipynb: the kernel did not start" in said and "starting a fresh one" in said, said


def test_a_kernel_that_never_starts_fails_fast_with_one_clear_line(kernels, monkeypatch):
    count = _kernel_spec(kernels, "mute", mute_starts=99)
    monkeypatch.setattr(book, "KERNEL_NAME", "mute")
    path = _notebook(kernels)
    start = time.monotonic()
    with pytest.raises(book.BookError) as info:
        book.execute_notebook(str(path), str(book.ROOT / "solutions"))
    seconds = time.monotonic() - start
    assert count.read_text() == "3"
    message = str(info.value)
    assert len(message.splitlines()) == 1, message
    assert message.startswith("tiny.ipynb: no kernel started in 3 attempts of 5 s"), message
    # three attempts of 5 s and their shutdowns, far from the 300 s of one attempt before
    assert seconds < 120, seconds


def test_kernels_use_unix_sockets_not_tcp_ports(kernels):
    """Two kernels started at once cannot clash on a port: there is none (transport ipc), as the
    kernel's own connection file says."""
    code = (
        "import json\nfrom ipykernel.connect import get_connection_file\n"
        "print(json.load(open(get_connection_file()))['transport'])"
    )
    path = _notebook(kernels, code)
    book.execute_notebook(str(path), str(book.ROOT / "solutions"))
    outputs = nbformat.read(path, as_version=4).cells[0].outputs
    assert outputs and outputs[0].text == "ipc\n", outputs
