"""Fabricated submissions for tests and benchmarks: a released folder with chosen files replaced and
the notebook damaged on purpose."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

from autograder.batch.run import BatchError
from autograder.manifest import Assignment
from autograder.markers import grade_id


def fabricate_submission(
    root: Path,
    student: str,
    assignment: Assignment,
    files: dict[str, str | None],
    notebook: str | dict[str, list[str]] = "release",
) -> Path:
    """Write ``<root>/submitted/<student>/<assignment>/`` from the released folder.

    ``files`` maps editable files (``cnnlab/conv.py``) to their text, or None to leave them out
    (files not listed stay as released). ``notebook`` is ``"release"``, ``"missing"``,
    ``"invalid_json"`` (a notebook cut in half) or ``{"delete": [grade ids], "duplicate": [...],
    "retype": [...] (made markdown), "edit": [...]}`` applied to every notebook.
    """
    released = Path(root) / "release" / assignment.name
    if not released.is_dir():
        raise BatchError(f"{released} does not exist: release the course first")
    dest = Path(root) / "submitted" / student / assignment.name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(released, dest)
    for rel, text in files.items():
        (dest / rel).unlink(missing_ok=True)
        if text is not None:
            (dest / rel).write_text(text)
    for nb_name in assignment.notebooks:
        path = dest / nb_name
        if notebook == "missing":
            path.unlink()
        elif notebook == "invalid_json":
            text = path.read_text()
            path.write_text(text[: len(text) // 2])
        elif isinstance(notebook, dict):
            nb = json.loads(path.read_text())
            cells = []
            for cell in nb["cells"]:
                gid = grade_id(cell)
                if gid in notebook.get("delete", ()):
                    continue
                if gid in notebook.get("retype", ()):
                    cell = {"cell_type": "markdown", "metadata": cell["metadata"], "source": cell["source"]}
                if gid in notebook.get("edit", ()):
                    cell = {**cell, "source": "print(5)"}
                cells.append(cell)
                if gid in notebook.get("duplicate", ()):
                    cells.append(copy.deepcopy(cell))
            nb["cells"] = cells
            path.write_text(json.dumps(nb, indent=1))
    (dest / "timestamp.txt").write_text("2026-11-26 10:00:00.000000 UTC\n")
    return dest
