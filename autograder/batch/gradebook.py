"""Stage 5a, the gradebook: scores into nbgrader's database, as ``nbgrader autograde`` saves them,
and the ``autograded/`` notebooks with this grader's reports as the check cells' outputs, so that
formgrader, ``nbgrader generate_feedback`` and ``nbgrader export`` keep working."""

from __future__ import annotations

import contextlib
import copy
import os
import shutil
import stat
import uuid
import warnings
from pathlib import Path
from typing import Any

from autograder import database, provenance
from autograder.batch.notebooks import read_notebook
from autograder.manifest import Assignment
from autograder.markers import grade_id
from autograder.reference import load_reference


def write_gradebook(root: Path, assignment: Assignment, rows: list[dict[str, Any]]) -> str | None:
    """Scores into nbgrader's gradebook, as ``nbgrader autograde`` saves them (``auto_score`` of
    each grade cell; ``needs_manual_grade`` only where a manual score exists). Returns a problem."""
    from nbgrader.api import Gradebook, MissingEntry

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(database.db_url(root), "cnnlab") as gb:
            try:
                gb.find_assignment(assignment.name)
            except MissingEntry:
                return f"{assignment.name} is not in the gradebook (run `python -m autograder release`)"
            tasks = load_reference().tasks.TASKS
            failed = []
            for row in rows:  # one student's row never stops the others'
                if not row.get("grader_error"):
                    try:
                        database.retrying(lambda row=row: _write_student(gb, assignment, row, tasks))
                    except Exception as exc:  # noqa: BLE001
                        failed.append(f"{row['student']} ({type(exc).__name__})")
    if failed:
        return f"the gradebook has no scores for {', '.join(failed)}: the other students' are written"
    return None


def _report_outputs(info: dict[str, Any]) -> list[dict[str, Any]]:
    import nbformat

    text = "\n".join(info["report"]) + "\n"
    return [
        nbformat.v4.new_output("stream", name="stdout", text=text),
        nbformat.v4.new_output(
            "execute_result", data={"text/plain": repr(info["points"])}, execution_count=1
        ),
    ]


def write_autograded(
    root: Path, assignment: Assignment, row: dict[str, Any], submission: Path | None
) -> None:
    """``<root>/autograded/<student>/<assignment>/``: the student's notebooks with the check cells
    restored from ``source/`` (hidden tests and all, as nbgrader does) and this grader's reports as
    their outputs; the student's editable files. ``nbgrader generate_feedback`` and formgrader read it."""
    import nbformat

    tasks = load_reference().tasks.TASKS
    dest = Path(root) / "autograded" / row["student"] / assignment.name
    staging = dest.with_name(f".{assignment.name}.batch-tmp")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    # nbgrader's release_feedback needs the exchange's submission_secret.txt in autograded/
    for rel in [*assignment.files, "timestamp.txt", "submission_secret.txt"]:
        src = None if submission is None else submission / rel
        if src is not None and os.path.lexists(src) and stat.S_ISREG(os.lstat(src).st_mode):
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, staging / rel)
    for nb_name in assignment.notebooks:
        source, _ = read_notebook(Path(root) / "source" / assignment.name / nb_name)
        if source is None:
            continue
        restored = {grade_id(c): c for c in source["cells"] if grade_id(c)}
        base = None if submission is None else read_notebook(submission / nb_name)[0]
        if base is not None:
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    nbformat.validate(nbformat.from_dict(copy.deepcopy(base)))
            except Exception:
                base = None
        released, _ = read_notebook(Path(root) / "release" / assignment.name / nb_name)
        base = base or released or source
        graded = {
            tasks[t].marker: row["tasks"][t] for t in row["tasks"] if tasks[t].notebook + ".ipynb" == nb_name
        }
        cells, seen = [], set()
        for cell in base["cells"]:
            gid = grade_id(cell)
            if gid in graded:
                if gid in seen:
                    continue
                seen.add(gid)
                cell = copy.deepcopy(restored.get(gid, cell))
                cell["outputs"], cell["execution_count"] = _report_outputs(graded[gid]), 1
            elif cell.get("cell_type") == "code":
                cell = {**cell, "outputs": [], "execution_count": None}
            cells.append(cell)
        for gid in graded:
            if gid not in seen and gid in restored:
                cell = copy.deepcopy(restored[gid])
                cell["outputs"], cell["execution_count"] = _report_outputs(graded[gid]), 1
                cells.append(cell)
        ids: set[str] = set()
        for cell in cells:  # nbformat 4.5 cell ids: unique, or a fresh one
            if "id" in cell and (not isinstance(cell["id"], str) or cell["id"] in ids):
                cell["id"] = uuid.uuid4().hex[:8]
            ids.add(cell.get("id", ""))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nb = nbformat.from_dict(
                provenance.mark_batch({**base, "cells": cells}, root, row["student"], assignment.name)
            )
            (staging / nb_name).write_text(nbformat.writes(nb))
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, dest)


def _write_student(gb: Any, assignment: Assignment, row: dict[str, Any], tasks: Any) -> None:
    """One student's scores, in one transaction (rolled back, and so retried whole, on a conflict
    with another grader writing at the same time). Writing the same row twice changes nothing."""
    from nbgrader.api import MissingEntry

    try:
        gb.update_or_create_student(row["student"])
        kwargs = {}
        if row.get("timestamp"):
            with contextlib.suppress(Exception):
                from nbgrader.utils import parse_utc

                parse_utc(row["timestamp"])
                kwargs["timestamp"] = row["timestamp"]
        submission = gb.update_or_create_submission(assignment.name, row["student"], **kwargs)
        for task_id, info in row["tasks"].items():
            try:
                grade = gb.find_grade(
                    tasks[task_id].marker, tasks[task_id].notebook, assignment.name, row["student"]
                )
            except MissingEntry:
                continue
            grade.auto_score = float(info["points"])
            grade.needs_manual_grade = grade.manual_score is not None
        penalty = float(row.get("penalty") or 0.0)
        for i, nb in enumerate(submission.notebooks):  # nbgrader keeps the late penalty per notebook
            nb.late_submission_penalty = penalty if i == 0 else 0.0
        gb.db.commit()
    except Exception:
        gb.db.rollback()
        raise
