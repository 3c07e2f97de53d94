"""Stage 2, the store: cache keys and result files.

A result is ``<out>/results/<student>.json``, written atomically. Its key hashes the submission's
files, the student's seeds, the grader's own code, the reference, the release and the limits: a rerun
(after any interruption) grades only what is new or changed, and a result of another grader is stale.
A row with a grader error is never saved, so it is retried.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from autograder import reference, remote
from autograder.manifest import Assignment
from autograder.markers import has_solution
from autograder.reference import REFERENCE_DIR, ROOT

GRADER_VERSION = "1"


RESULTS = "results"


MAX_HASHED_FILE = 64 * 2**20


def release_package(root: Path, assignment: str) -> Path:
    """The released ``cnnlab/`` the sandbox is built from: nbgrader's ``source/<a>/cnnlab`` (what
    autograde restores provided files from) when the course is released, else the repo's ``cnnlab/``."""
    folder = Path(root) / "source" / assignment / "cnnlab"
    return folder if (folder / "__init__.py").is_file() else ROOT / "cnnlab"


def release_drift(release_pkg: Path) -> list[str]:
    """Provided modules (no solution region) of the reference that differ from ``release_pkg``'s.

    The sandbox restores provided functions from the release and nbgrader's kernel from the
    reference: both graders agree only while the release is current (``make release``, then
    ``python -m autograder release``)."""
    drift = []
    for path in sorted(REFERENCE_DIR.glob("*.py")):
        text = path.read_text()
        if has_solution(text):
            continue
        released = release_pkg / path.name
        if not released.is_file() or not released.read_text().endswith(text):  # after the build banner
            drift.append(path.name)
    return drift


def release_notebooks(root: Path, assignment: Assignment) -> dict[str, Path]:
    out = {}
    for nb in assignment.notebooks:
        path = Path(root) / "release" / assignment.name / nb
        out[nb] = path if path.is_file() else ROOT / "notebooks" / nb
    return out


def grader_hash() -> str:
    """A hash of the grader's own code and the reference: results of another grader are stale. A
    cluster worker computes it with the reference the job brought (:mod:`autograder.remote`)."""
    text = f"{GRADER_VERSION}:{remote.code_hash()}:{reference.digest()}"
    return hashlib.sha256(text.encode()).hexdigest()


def tree_hash(folder: Path | None, names: Iterable[str] | None = None) -> str:
    """A hash of the files under ``folder`` (paths and contents; links by target; never followed)."""
    h = hashlib.sha256()
    if folder is None or not folder.is_dir():
        return h.hexdigest()
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if d not in ("__pycache__", ".ipynb_checkpoints"))
        for name in sorted(filenames):
            path = Path(dirpath) / name
            rel = path.relative_to(folder).as_posix()
            if names is not None and rel not in names:
                continue
            info = os.lstat(path)
            h.update(rel.encode() + b"\0")
            if stat.S_ISLNK(info.st_mode):
                h.update(b"link:" + os.readlink(path).encode())
            elif info.st_size > MAX_HASHED_FILE:
                h.update(f"large:{info.st_size}:{info.st_mtime_ns}".encode())
            elif stat.S_ISREG(info.st_mode):
                h.update(path.read_bytes())
            h.update(b"\0")
    return h.hexdigest()


def student_seeds(root: Path, student: str, tasks: Iterable[str]) -> dict[str, int]:
    """Each task's seed for ``student``: exactly what ``grade_task`` uses in nbgrader's kernel."""
    from autograder.hidden import grading_seed

    return {t: grading_seed(None, t, student, root) for t in tasks}


def result_path(out: Path, student: str) -> Path:
    return out / RESULTS / f"{student}.json"


def save_result(out: Path, row: dict[str, Any]) -> None:
    """Write a result atomically (a temporary file, then ``os.replace``): a killed grader leaves
    either the old result, or the new one, never half of one."""
    path = result_path(out, row["student"])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(row, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def load_cached(out: Path, student: str, key: str) -> dict[str, Any] | None:
    try:
        row = json.loads(result_path(out, student).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict) or row.get("key") != key or row.get("grader_error"):
        return None
    return row


def prepare(out: Path) -> None:
    """The results folder, without temporary files of a grader killed while writing."""
    (out / RESULTS).mkdir(parents=True, exist_ok=True)
    for stale in (out / RESULTS).glob(".*.tmp"):
        stale.unlink(missing_ok=True)


def fixed_parts(release_pkg: Path, task_rows: list[Any], limits: Any) -> dict[str, str]:
    """What every job's key shares, part by part (each a short hash): the grading code and the
    hidden cases, the release, the tasks and points, the limits."""
    parts = {
        "grader": grader_hash(),
        "release": tree_hash(release_pkg),
        "tasks": json.dumps(task_rows),
        "limits": json.dumps([limits.timeout, limits.memory_mb, limits.task_budget]),
    }
    return {k: hashlib.sha256(v.encode()).hexdigest()[:16] for k, v in parts.items()}


def fixed_key(release_pkg: Path, task_rows: list[Any], limits: Any) -> str:
    """The part of every job's key that is the same for the whole batch."""
    return json.dumps(fixed_parts(release_pkg, task_rows, limits), sort_keys=True)


#: why a submission is graded again, by the part of the key that changed (the first that did)
REGRADE_WHY = {
    "grader": "the hidden cases or the grading code changed since the last run",
    "release": "the released cnnlab package changed since the last run",
    "tasks": "the tasks or their points changed since the last run",
    "limits": "the time or memory limits changed since the last run",
}


def why_regraded(out: Path, student: str, fixed: str) -> str:
    """Why a submission without a cached result is graded: new, one of :data:`REGRADE_WHY`, or
    its files (or its seeds) changed."""
    try:
        old = json.loads(result_path(out, student).read_text())
    except (OSError, ValueError):
        return "new submission"
    before, now = old.get("cache_parts") if isinstance(old, dict) else None, json.loads(fixed)
    if not isinstance(before, dict):
        return "graded by an older grader"
    for part, why in REGRADE_WHY.items():
        if before.get(part) != now.get(part):
            return why
    return "the submission changed since the last run"


def job_key(fixed: str, submission: Path | None, seeds: dict[str, int], rejected: str | None) -> str:
    """A job's cache key: :func:`fixed_key`, the submission's files, the seeds, a zip's refusal."""
    text = fixed + json.dumps([tree_hash(submission), seeds, rejected])
    return hashlib.sha256(text.encode()).hexdigest()
