"""Grades out to the learning-management system: ``python -m autograder export``.

Read from nbgrader's gradebook (whichever grader wrote it: ``nbgrader autograde`` or the batch
grader), after late penalties:

* ``grades.csv``: one row per student and assignment: ``student_id, assignment, raw_score,
  late_penalty, score, max_score, submitted_at``.
* ``canvas.csv``: Canvas's gradebook-import format: one row per student, the columns ``Student, ID,
  SIS User ID, SIS Login ID, Section`` and one column per assignment (header ``<assignment>``),
  after a ``Points Possible`` row. Canvas matches a row by ``ID`` (its user id: known when the
  batch grader unpacked that student's Canvas download, recorded in ``<root>/lms_ids.csv``), else
  by ``SIS Login ID`` (the nbgrader student id). An assignment not submitted is left empty. Import it
  in Canvas: Grades, Import; new assignment columns are created, existing ones updated.
* ``feedback/<student>/``: one folder per student with every feedback file to hand back (upload it
  as a comment on the student's submission): the batch grader's ``<assignment>-feedback.md``
  (from ``<root>/batch/<assignment>/feedback/``) and nbgrader's ``generate_feedback`` HTML
  (``<assignment>-<notebook>.html``, from ``<root>/feedback/<student>/<assignment>/``).
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import warnings
from pathlib import Path

from autograder import database
from autograder.manifest import Assignment, load_manifest
from autograder.safe_text import csv_cell

LMS_IDS = "lms_ids.csv"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")  # a student id or file name usable as a path


def record_canvas_ids(root: Path, ids: dict[str, int]) -> None:
    """Remember Canvas user ids of students (from download names) in ``<root>/lms_ids.csv``."""
    path = Path(root) / LMS_IDS
    known = read_canvas_ids(root)
    known.update({s: str(i) for s, i in ids.items()})
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student", "canvas_user_id"])
        writer.writerows(sorted(known.items()))
    os.replace(tmp, path)


def read_canvas_ids(root: Path) -> dict[str, str]:
    path = Path(root) / LMS_IDS
    if not path.is_file():
        return {}
    with open(path, newline="") as fh:
        return {r["student"]: r["canvas_user_id"] for r in csv.DictReader(fh) if r.get("student")}


def gradebook_scores(root: Path, manifest: dict[str, Assignment]) -> list[dict[str, object]]:
    """Every submission in the gradebook: raw score, late penalty, score, max, time."""
    from nbgrader.api import Gradebook, MissingEntry

    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(database.db_url(root), "cnnlab") as gb:
            for student in sorted(s.id for s in gb.students):
                for name, assignment in manifest.items():
                    try:
                        sub = gb.find_submission(name, student)
                    except MissingEntry:
                        continue
                    raw, penalty = float(sub.score or 0.0), float(sub.late_submission_penalty or 0.0)
                    rows.append(
                        {
                            "student_id": student,
                            "assignment": name,
                            "raw_score": round(raw, 2),
                            "late_penalty": round(penalty, 2),
                            "score": round(max(0.0, raw - penalty), 2),
                            "max_score": float(assignment.total),
                            "submitted_at": sub.timestamp.isoformat() if sub.timestamp else "",
                        }
                    )
    return rows


def write_feedback_folders(root: Path, out: Path, manifest: dict[str, Assignment]) -> dict[str, list[str]]:
    """``<out>/feedback/<student>/``: each student's feedback files, ready to upload; returns them."""
    found: dict[str, list[tuple[Path, str]]] = {}
    for name in manifest:
        batch = Path(root) / "batch" / name / "feedback"
        for path in sorted(batch.glob("*.md")) if batch.is_dir() else []:
            found.setdefault(path.stem, []).append((path, f"{name}-feedback.md"))
        for student_dir in sorted((Path(root) / "feedback").glob(f"*/{name}")):
            for path in sorted(student_dir.glob("*.html")):
                found.setdefault(student_dir.parent.name, []).append((path, f"{name}-{path.name}"))
    folder = out / "feedback"
    if folder.is_dir():
        shutil.rmtree(folder)
    written: dict[str, list[str]] = {}
    for student, files in sorted(found.items()):
        if not _SAFE_NAME.match(student):
            continue
        (folder / student).mkdir(parents=True)
        for path, target in files:
            if path.is_file() and not path.is_symlink() and _SAFE_NAME.match(target):
                shutil.copyfile(path, folder / student / target)
                written.setdefault(student, []).append(target)
    return written


def write_exports(root: Path, out: Path | None = None) -> tuple[Path, Path]:
    """``grades.csv``, ``canvas.csv`` and ``feedback/<student>/`` into ``out`` (default ``<root>/export``)."""
    manifest = load_manifest()
    out = Path(out or Path(root) / "export")
    out.mkdir(parents=True, exist_ok=True)
    rows = gradebook_scores(root, manifest)
    plain = out / "grades.csv"
    with open(plain, "w", newline="") as fh:
        fields = [
            "student_id",
            "assignment",
            "raw_score",
            "late_penalty",
            "score",
            "max_score",
            "submitted_at",
        ]
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        writer.writerows({k: csv_cell(v) if isinstance(v, str) else v for k, v in r.items()} for r in rows)
    ids = read_canvas_ids(root)
    by_student: dict[str, dict[str, float]] = {}
    for row in rows:
        by_student.setdefault(str(row["student_id"]), {})[str(row["assignment"])] = float(row["score"])  # type: ignore[arg-type]
    canvas = out / "canvas.csv"
    with open(canvas, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["Student", "ID", "SIS User ID", "SIS Login ID", "Section", *manifest])
        writer.writerow(["Points Possible", "", "", "", "", *(f"{a.total:g}" for a in manifest.values())])
        for student, scores in sorted(by_student.items()):
            cells = [f"{scores[a]:g}" if a in scores else "" for a in manifest]
            writer.writerow([csv_cell(student), ids.get(student, ""), "", csv_cell(student), "", *cells])
    write_feedback_folders(root, out, manifest)
    return plain, canvas
