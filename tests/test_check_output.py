"""What a student sees when a check fails, in a real IPython kernel (nbclient), as in JupyterLab.

A student's folder (the released ``cnnlab/`` with the reference's ``conv.py``, then a mistake made in
it), the release notebook's own first code cell (``%autoreload 2 --hide-errors``, imports), then a
check cell:

* a wrong result: the cell's error shows the check's message and nothing else (no frame of
  ``checks.py``, no traceback header);
* the student's code raised: the message, after only the student's frames;
* a ``SyntaxError`` in ``conv.py``: shown once (file, line, caret, message), by the check cell, with
  no autoreload traceback; an ordinary cell afterwards does not repeat it, one run after a new
  broken save shows it once, short.

Each cell still ends in an error output (nbgrader's Validate fails on it).
"""

from __future__ import annotations

import json
import re
import shutil
import time
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow

RIGHT_2_1 = "np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))"
FLIPPED_2_1 = "np.tensordot(window, w[:, :, ::-1, ::-1], axes=([1, 2, 3], [1, 2, 3]))"
RIGHT_1_2 = "full[t] += x[t - a] * w[a]"
RAISING_1_2 = "full[t] += x[t - a + 1] * w[a]"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def first_code_cell() -> str:
    """The first code cell of the released notebook 02 (autoreload, imports), as the student runs it."""
    nb = json.loads((ROOT / "notebooks" / "02_conv_layer.ipynb").read_text())
    return "".join(next(c for c in nb["cells"] if c["cell_type"] == "code")["source"])


def check_cell(task_id: str) -> str:
    return f'from cnnlab.checks import check_task\n\ncheck_task("{task_id}")'


@pytest.fixture
def kernel(tmp_path):
    """``run(source) -> outputs`` in a fresh kernel in a student's folder; ``edit(old, new)`` saves
    a change to the student's ``conv.py`` (a second later: a new modification time)."""
    shutil.copytree(ROOT / "cnnlab", tmp_path / "cnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    conv = tmp_path / "cnnlab" / "conv.py"
    conv.write_text((ROOT / "solutions" / "cnnlab" / "conv.py").read_text())
    assert RIGHT_2_1 in conv.read_text() and RIGHT_1_2 in conv.read_text(), "the reference changed"
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = nbclient.NotebookClient(
        nb, timeout=120, allow_errors=True, resources={"metadata": {"path": str(tmp_path)}}
    )

    def run(source: str) -> list:
        cell = nbformat.v4.new_code_cell(source)
        nb.cells.append(cell)
        client.execute_cell(cell, len(nb.cells) - 1)
        return cell.outputs

    def edit(old: str, new: str) -> None:
        time.sleep(1.1)
        text = conv.read_text()
        assert old in text
        conv.write_text(text.replace(old, new))

    env = {"NBGRADER_EXECUTION": "", "PYTHONPATH": "", "MPLBACKEND": "Agg"}
    with client.setup_kernel(env=env):
        first = run(first_code_cell())
        assert not [o for o in first if o.output_type == "error"], first
        yield run, edit, conv


def shown(outputs: list) -> str:
    """Everything the cell shows, as text (colours removed)."""
    parts = []
    for o in outputs:
        if o.output_type == "error":
            parts.append("\n".join(o.traceback))
        elif o.output_type == "stream":
            parts.append(o.text)
        else:
            parts.append(str(o.get("data", {}).get("text/plain", "")))
    return ANSI.sub("", "\n".join(parts))


def the_error(outputs: list):
    errors = [o for o in outputs if o.output_type == "error"]
    assert len(errors) == 1, f"the check cell must end in one error (Validate fails on it): {outputs}"
    return errors[0]


def test_a_wrong_result_shows_the_message_and_no_frames(kernel):
    run, edit, _ = kernel
    edit(RIGHT_2_1, FLIPPED_2_1)
    outputs = run(check_cell("2.1"))
    error = the_error(outputs)
    text = shown(outputs)
    assert error.ename == "AssertionError"
    assert "flips the kernel" in text, text
    assert "checks.py" not in text and "Traceback" not in text and "site-packages" not in text, text
    # the message and nothing else: as many lines as the message has
    assert text.strip().splitlines() == error.evalue.strip().splitlines(), text


def test_an_error_in_the_students_code_shows_only_the_students_frames(kernel):
    run, edit, conv = kernel
    edit(RIGHT_1_2, RAISING_1_2)
    outputs = run(check_cell("1.2"))
    error = the_error(outputs)
    text = shown(outputs)
    assert error.ename == "AssertionError" and "raised IndexError" in error.evalue, error.evalue
    frames = re.findall(r'File "([^"]+)", line (\d+)', text)
    assert frames, f"the student's frame is missing:\n{text}"
    assert {Path(f).name for f, _ in frames} == {"conv.py"}, text
    line = next(i for i, s in enumerate(conv.read_text().splitlines(), 1) if RAISING_1_2 in s)
    assert (str(conv), str(line)) in frames, text
    assert "_internal" not in text and "checks.py" not in text and "site-packages" not in text, text
    assert text.count("Traceback (most recent call last)") == 1, text
    # the student's frames and the error line, a blank line, then the message
    n_message = len(error.evalue.strip().splitlines())
    assert len(text.strip().splitlines()) <= n_message + 3 * len(frames) + 3, text


def test_a_syntax_error_is_shown_once_with_file_line_caret_and_message(kernel):
    run, edit, conv = kernel
    edit("def conv1d(", "def conv1d((")
    outputs = run(check_cell("1.2"))
    the_error(outputs)
    text = shown(outputs)
    line = next(i for i, s in enumerate(conv.read_text().splitlines(), 1) if "def conv1d((" in s)
    assert text.count("SyntaxError") == 1, f"the syntax error must be shown once:\n{text}"
    assert f'File "{conv}", line {line}' in text, text
    assert "^" in text and "def conv1d((" in text, text
    assert "autoreload" not in text and "importlib" not in text and "checks.py" not in text, text
    assert len(text.strip().splitlines()) <= 5, text
    # an ordinary cell afterwards: the error is not repeated
    assert "SyntaxError" not in shown(run("x = 1")), "shown again"
    # a new broken save, an ordinary cell: once, short; the next cell: nothing
    edit("def conv1d((", "def conv1d(((")
    again = shown(run("y = 2"))
    assert again.count("SyntaxError") == 1 and "autoreload" not in again, again
    assert f'File "{conv}", line {line}' in again and len(again.strip().splitlines()) <= 5, again
    assert "SyntaxError" not in shown(run("z = 3"))
