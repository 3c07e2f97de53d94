"""Opening a notebook changes nothing: every committed notebook is stored exactly as JupyterLab saves
it (nbformat's writer: sorted keys, one-space indent, ``source`` and text outputs as lists of lines,
a trailing newline), so a round trip through nbformat, read then write, gives the same bytes.

The student release (``notebooks/``, written by ``autograder/build.py``) and the nbgrader source
notebooks (``solutions/notebooks/``) both; and a build of the release writes that form too.
"""

from __future__ import annotations

import difflib
import io
import json
import subprocess
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")

ROOT = Path(__file__).resolve().parent.parent


def committed_notebooks() -> list[Path]:
    """Every ``.ipynb`` git tracks (outside git: those of ``notebooks/`` and ``solutions/notebooks/``)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "*.ipynb"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout.decode()
        found = [ROOT / p for p in out.split("\0") if p]
    except (OSError, subprocess.CalledProcessError):
        found = []
    return found or sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("solutions/notebooks/*.ipynb")])


def saved_by_jupyter(text: str) -> str:
    """What JupyterLab's save writes for a notebook read from ``text`` (jupyter_server's
    ``FileContentsManager`` calls ``nbformat.write(nb, f, version=nbformat.NO_CONVERT)``)."""
    nb = nbformat.reads(text, as_version=nbformat.NO_CONVERT)
    out = io.StringIO()
    nbformat.write(nb, out, version=nbformat.NO_CONVERT)
    return out.getvalue()


def test_there_are_notebooks_to_check():
    names = {p.relative_to(ROOT).as_posix() for p in committed_notebooks()}
    assert {"notebooks/02_conv_layer.ipynb", "solutions/notebooks/02_conv_layer.ipynb"} <= names, names


@pytest.mark.parametrize("path", committed_notebooks(), ids=lambda p: p.relative_to(ROOT).as_posix())
def test_a_round_trip_through_nbformat_is_byte_identical(path: Path):
    text = path.read_bytes().decode("utf-8")
    again = saved_by_jupyter(text)
    if again != text:
        diff = difflib.unified_diff(
            text.splitlines(), again.splitlines(), "committed", "saved", n=0, lineterm=""
        )
        shown = "\n".join(list(diff)[:12])
        pytest.fail(
            f"{path.relative_to(ROOT)} is not stored as JupyterLab saves it (opening it would modify it): "
            f"rebuild it (`make release`; solutions/ notebooks: write them with nbformat)\n{shown}"
        )


def test_the_build_writes_notebooks_as_jupyterlab_saves_them():
    from autograder.build import dump_notebook

    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell("# A title\n\nTwo lines,\nthree.", id="c1")],
        metadata={"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
    )
    text = dump_notebook(json.loads(json.dumps(nb)))
    assert saved_by_jupyter(text) == text
    assert json.loads(text)["cells"][0]["source"] == ["# A title\n", "\n", "Two lines,\n", "three."]
