"""The submitted notebooks, checked (stage 1): read safely, and what happened to the check cells.

All graded code lives in ``cnnlab/*.py``; a broken notebook is reported, never fatal (nbgrader
restores locked cells anyway)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from autograder.manifest import Assignment
from autograder.markers import cell_source, grade_id
from autograder.reference import load_reference

MAX_NOTEBOOK = 50 * 2**20


def read_notebook(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """``(notebook, None)`` or ``(None, problem)``; never follows a link, never raises."""
    name = path.name
    if not os.path.lexists(path):
        return None, f"{name} is missing"
    info = os.lstat(path)
    if not stat.S_ISREG(info.st_mode):
        return None, f"{name} is not a regular file"
    if info.st_size > MAX_NOTEBOOK:
        return None, f"{name} is larger than {MAX_NOTEBOOK // 2**20} MB"
    try:
        nb = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError) as exc:
        where = f" at line {exc.lineno}" if isinstance(exc, json.JSONDecodeError) else ""
        return None, f"{name} is not valid JSON{where}"
    except OSError as exc:
        return None, f"{name} cannot be read ({exc.strerror})"
    except (RecursionError, MemoryError):
        return None, f"{name} is nested too deeply to read"
    if not isinstance(nb, dict) or not isinstance(nb.get("cells"), list):
        return None, f"{name} is not a notebook (no list of cells)"
    return nb, None


def check_notebooks(
    submission: Path | None, assignment: Assignment, release_nbs: dict[str, Path]
) -> list[str]:
    """What is wrong with the submitted notebooks, one sentence each (empty: nothing)."""
    tasks = load_reference().tasks.TASKS
    problems = []
    for nb_name in assignment.notebooks:
        if submission is None:
            continue
        try:
            problems += _notebook_problems(submission, nb_name, assignment, release_nbs, tasks)
        except Exception as exc:  # noqa: BLE001 (a notebook no one foresaw: its student's note, never fatal)
            problems.append(f"{nb_name} could not be checked ({type(exc).__name__}): graded on cnnlab/ only")
    return problems


def _notebook_problems(
    submission: Path, nb_name: str, assignment: Assignment, release_nbs: dict[str, Path], tasks: Any
) -> list[str]:
    """The problems of one submitted notebook (see :func:`check_notebooks`)."""
    problems: list[str] = []
    nb, problem = read_notebook(submission / nb_name)
    if problem:
        problems.append(f"{problem}: graded on the code in cnnlab/ only")
        return problems
    released, _ = read_notebook(release_nbs[nb_name])
    reference = {grade_id(c): c for c in (released or {}).get("cells", []) if grade_id(c)}
    found: dict[str, list[dict[str, Any]]] = {}
    for cell in nb["cells"]:
        gid = grade_id(cell)
        if gid:
            found.setdefault(gid, []).append(cell)
    for task_id in assignment.tasks:
        task = tasks[task_id]
        if f"{task.notebook}.ipynb" != nb_name:
            continue
        gid, what = task.marker, f"{nb_name}: the check cell of Task {task_id} ({task.marker})"
        cells = found.get(gid, [])
        if not cells:
            problems.append(
                f"{what} was deleted: restored from the course's notebook and graded (as nbgrader does)"
            )
        elif len(cells) > 1:
            problems.append(f"{what} appears {len(cells)} times")
        elif cells[0].get("cell_type") != "code":
            problems.append(f"{what} was changed into a {cells[0].get('cell_type')} cell")
        elif gid in reference and cell_source(cells[0]).strip() != cell_source(reference[gid]).strip():
            problems.append(f"{what} was edited (nbgrader restores it)")
    return problems
