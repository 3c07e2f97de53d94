"""Batch grading of a whole class: parallel, sandboxed, resumable; results in nbgrader's gradebook.

Usage (``python -m autograder grade ...`` calls :func:`main`; ``python -m autograder.batch grade ...``
works too)::

    python -m autograder grade 02_conv_layer                      # every submitted/<student>/02_conv_layer
    python -m autograder grade 02_conv_layer --zips ~/Downloads/submissions
    python -m autograder grade 02_conv_layer --workers 2 --timeout 60 --memory-mb 1024

For each submission in nbgrader's ``<root>/submitted/<student>/<assignment>/`` (the course root of
:func:`autograder.course.course_root`: ``$CNNLAB_COURSE_ROOT`` or ``autograder/course``), a worker

1. checks the notebooks (missing, not JSON, check cells deleted/duplicated/re-typed/edited: reported,
   never fatal: all graded code lives in ``cnnlab/*.py``, and nbgrader restores locked cells anyway);
2. draws each task's hidden cases from the student's own seed (:mod:`autograder.secret`: the same
   seed as the hidden ``grade_task`` in nbgrader's kernel) with :func:`autograder.cases.task_inputs`;
3. runs the student's functions on them in a sandboxed child process (:mod:`autograder.sandbox`,
   :mod:`autograder.child`): a copy of the released ``cnnlab/`` with only the manifest's editable files
   from the submission, Landlock, no capabilities, memory/time/file-size limits. Only data comes back
   (JSON and ``.npy``, never pickles);
4. scores the outputs with :func:`autograder.cases.grade_runs`, the code ``grade_task`` uses: for
   honest submissions the points equal ``nbgrader autograde``'s.

The parent alone writes, one submission at a time: a result file per submission in
``<out>/results/<student>.json`` (atomic; keyed by a hash of the submission, the grader's code, the
seeds and the limits, so a re-run, or a run after the grader was killed, grades only what is new),
then the gradebook (scores of the grade cells ``task2_1``, ... so that formgrader, ``nbgrader export``
and ``nbgrader generate_feedback`` work; the notebooks in ``autograded/`` carry the reports as the
check cells' outputs), ``<out>/grades.csv``, ``<out>/feedback/<student>.md`` and the class summary
``<out>/summary.md`` with ``summary.png``. ``<out>`` defaults to ``<root>/batch/<assignment>``.

``--zips DIR`` first unpacks a learning-management-system download into ``submitted/`` (see
:func:`intake_zips` for the accepted names and the safety rules).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import csv
import hashlib
import json
import multiprocessing as mp
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
import uuid
import warnings
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder import cases, sandbox
from autograder.manifest import Assignment, ManifestError, load_manifest
from autograder.reference import REFERENCE_DIR, ROOT, load_reference

GRADER_VERSION = "1"
RESULTS = "results"
TEST_DELAY_ENV = "CNNLAB_BATCH_TEST_DELAY"  # tests only: seconds to wait after saving each result
MAX_NOTEBOOK = 50 * 2**20
MAX_HASHED_FILE = 64 * 2**20
_GRADER_FILES = ("batch.py", "sandbox.py", "child.py", "cases.py", "hidden.py", "mistakes.py", "secret.py")


class BatchError(Exception):
    """The batch cannot run at all (no such assignment, no release, ...)."""


@dataclass
class Options:
    workers: int = 0  # 0: one per core
    limits: sandbox.Limits = field(default_factory=sandbox.Limits)
    force: bool = False  # ignore cached results
    gradebook: bool = True  # write the nbgrader gradebook and autograded/ notebooks
    out: Path | None = None  # default <root>/batch/<assignment>
    students: list[str] | None = None
    zips: Path | None = None
    allow_unconfined: bool = False  # run student code even where no sandbox is possible
    progress: bool = True
    log: Callable[[str], None] = print


@dataclass
class Job:
    """One submission to grade (sent to a worker process: plain data only)."""

    student: str
    assignment: str
    submission: Path | None
    rejected: str | None  # why there is nothing to grade (a zip that was refused)
    problems: list[str]
    key: str
    seeds: dict[str, int]
    tasks: list[tuple[str, str, str, float]]  # (task id, module, function, max points)
    editable: list[str]
    notebooks: list[str]
    release_pkg: Path
    release_nbs: dict[str, Path]
    sandbox_base: Path
    limits: sandbox.Limits
    mode: sandbox.SandboxMode


# ---------------------------------------------------------------------------------------------------
# Paths, seeds, keys
# ---------------------------------------------------------------------------------------------------


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
        if "### BEGIN SOLUTION" in text:
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
    """A hash of the grader's own code and the reference: results of another grader are stale."""
    h = hashlib.sha256(GRADER_VERSION.encode())
    for name in _GRADER_FILES:
        h.update((Path(__file__).parent / name).read_bytes())
    for path in sorted(REFERENCE_DIR.glob("*.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


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


# ---------------------------------------------------------------------------------------------------
# Notebooks
# ---------------------------------------------------------------------------------------------------


def _grade_id(cell: Any) -> str | None:
    if not isinstance(cell, dict):
        return None
    meta = cell.get("metadata")
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
    return gid if isinstance(gid, str) else None


def _source(cell: dict[str, Any]) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


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
        nb, problem = read_notebook(submission / nb_name)
        if problem:
            problems.append(f"{problem}: graded on the code in cnnlab/ only")
            continue
        released, _ = read_notebook(release_nbs[nb_name])
        reference = {_grade_id(c): c for c in (released or {}).get("cells", []) if _grade_id(c)}
        found: dict[str, list[dict[str, Any]]] = {}
        for cell in nb["cells"]:
            gid = _grade_id(cell)
            if gid:
                found.setdefault(gid, []).append(cell)
        for task_id in assignment.tasks:
            task = tasks[task_id]
            if f"{task.notebook}.ipynb" != nb_name:
                continue
            gid, what = task.marker, f"{nb_name}: the check cell of Task {task_id} ({task.marker})"
            cells = found.get(gid, [])
            if not cells:
                problems.append(f"{what} was deleted")
            elif len(cells) > 1:
                problems.append(f"{what} appears {len(cells)} times")
            elif cells[0].get("cell_type") != "code":
                problems.append(f"{what} was changed into a {cells[0].get('cell_type')} cell")
            elif gid in reference and _source(cells[0]).strip() != _source(reference[gid]).strip():
                problems.append(f"{what} was edited (nbgrader restores it)")
    return problems


# ---------------------------------------------------------------------------------------------------
# The worker: one submission
# ---------------------------------------------------------------------------------------------------

_SLOT = 0
_IN_WORKER = False  # only a worker process may kill its stray children: they can only be sandboxes


def _init_worker(counter: Any) -> None:
    global _SLOT, _IN_WORKER
    _IN_WORKER = True
    sandbox.die_with_parent()
    sandbox.become_subreaper()
    with counter.get_lock():
        _SLOT = counter.value
        counter.value += 1
    load_reference()


def _outcome(task_id: str, function: str, value: Any, checks: Any) -> Any:
    """A child's raw value as a ``checks.Outcome``, exactly as ``checks.call`` would make it."""
    if isinstance(value, sandbox.Raised):
        return checks.Raised(value.type, value.message)
    if isinstance(value, sandbox.Unreadable):
        return checks.Malformed(f"{function} returned something the grader cannot read ({value.why})")
    try:
        return checks.split_result(task_id, value)
    except Exception as exc:
        return checks.Malformed(
            f"{function} returned something the grader cannot read ({type(exc).__name__})"
        )


def _summary(
    status: str, result: cases.GradeResult, runs: list[Any], function: str, limits: sandbox.Limits
) -> str:
    """A few words on why a task lost points, for the CSV's reason column."""
    if status == "import_error":
        return "the cnnlab package does not import"
    if status == "missing":
        return f"{function} not found"
    if status == "timeout":
        return f"time limit ({limits.timeout:g} s) exceeded"
    if status == "memory":
        return f"memory limit ({limits.memory_mb} MB) exceeded"
    if status == "crashed":
        return "the code ended the grading process"
    if status == "protocol":
        return "output the grader cannot read"
    if status == "budget":
        return "too slow: cases left unrun"
    raised = {r.got.type for r in runs if type(r.got).__name__ == "Raised"}
    failed = result.n_total - result.n_passed
    if raised == {"NotImplementedError"} and result.n_passed == 0:
        return "not implemented"
    text = f"{failed} of {result.n_total} cases failed"
    if result.mistakes:
        text += " (looks like " + ", ".join(result.mistakes) + ")"
    return text


def grade_job(job: Job) -> dict[str, Any]:
    """Grade one submission; returns its result record (see :func:`_save`). Runs in a worker."""
    start = time.monotonic()
    ref = load_reference()
    checks = cases.checks_module(ref)
    row: dict[str, Any] = {
        "student": job.student,
        "assignment": job.assignment,
        "key": job.key,
        "grader": GRADER_VERSION,
        "problems": list(job.problems),
        "tasks": {},
        "grader_error": None,
        "timestamp": _timestamp(job.submission),
    }
    work = Path(tempfile.mkdtemp(prefix="sub-", dir=job.sandbox_base))
    work.chmod(0o711)  # a child with its own user id must reach its sandbox folder inside
    try:
        if job.rejected:
            row["problems"].append(job.rejected)
            outcomes = None
        else:
            row["problems"] += check_notebooks(job.submission, _assignment(job), job.release_nbs)
            folder, private = work / "sandbox", work / "private"
            folder.mkdir()
            private.mkdir(mode=0o700)
            row["problems"] += sandbox.prepare_sandbox(folder, job.release_pkg, job.submission, job.editable)
            folder.chmod(0o700)
        case_lists = {}
        with checks.quiet():
            for task_id, *_ in job.tasks:
                case_lists[task_id] = cases.task_inputs(task_id, cases.task_rng(task_id, job.seeds[task_id]))
        if not job.rejected:
            specs = [sandbox.TaskSpec(t, m, f, [c.args for c in case_lists[t]]) for t, m, f, _ in job.tasks]
            tasks = ref.tasks.TASKS
            own = {m: [t.function for t in tasks.values() if t.module == m] for m in cases.ISOLATED_MODULES}
            modules = sorted({m for _, m, _, _ in job.tasks} | {Path(f).stem for f in job.editable})
            outcomes, info = sandbox.run_tasks(
                folder,
                private,
                specs,
                own,
                modules,
                list(cases.ISOLATED_MODULES),
                job.limits,
                job.mode,
                _SLOT,
            )
            row["sandbox"] = {"children": info.get("children"), "hello": info.get("hello")}
        for i, (task_id, _module, function, maximum) in enumerate(job.tasks):
            row["tasks"][task_id] = _grade_task(
                task_id,
                function,
                maximum,
                case_lists[task_id],
                None if outcomes is None else outcomes[i],
                job,
                ref,
                checks,
            )
        errors = [t["error"] for t in row["tasks"].values() if t["status"] == "grader"]
        if errors:
            row["grader_error"] = errors[0]
    except Exception as exc:  # the grader's own failure: reported, not cached, retried next run
        row["grader_error"] = f"{type(exc).__name__}: {exc}"
    finally:
        if _IN_WORKER and sandbox.reap_orphans():
            row["problems"].append("your code left processes running: they were killed")
        shutil.rmtree(work, ignore_errors=True)
    return _finish(row, job, time.monotonic() - start)


def _grade_task(
    task_id: str,
    function: str,
    maximum: float,
    case_list: list[cases.Case],
    outcome: sandbox.TaskOutcome | None,
    job: Job,
    ref: Any,
    checks: Any,
) -> dict[str, Any]:
    n = len(case_list)
    runs: list[cases.CaseRun] = []
    status = "rejected" if outcome is None else outcome.status
    if outcome is None:
        result = cases.GradeResult(0.0, 0, n, [job.rejected or "nothing to grade"])
    elif status in ("import_error", "memory") and not outcome.cases:
        why = outcome.error or ""
        if status == "memory":
            why += f" (the grader allows {job.limits.memory_mb} MB)"
        result = cases.GradeResult(0.0, 0, n, [f"your cnnlab package does not import ({why})"])
    elif status == "missing":
        result = cases.missing_function_result(task_id, n, outcome.error or "")
    elif status == "grader":
        result = cases.GradeResult(0.0, 0, n, [f"the grader failed ({outcome.error})"])
    else:
        for value, args_after in outcome.cases:
            after = args_after if isinstance(args_after, list) else ()
            runs.append(cases.CaseRun(_outcome(task_id, function, value, checks), tuple(after)))
        notes = []
        if status == "budget":
            notes.append(cases.stopped_message(len(runs), n, job.limits.task_budget))
        elif status in ("timeout", "crashed", "protocol"):
            notes.append(f"stopped after {len(runs)} of {n} cases: {outcome.error}")
        if any(isinstance(v, sandbox.Raised) and v.memory for v, _ in outcome.cases):
            status = "memory" if status == "ok" else status
            notes.append(f"(the grader allows {job.limits.memory_mb} MB of memory)")
        result = cases.grade_runs(task_id, case_list, runs, ref, notes)
    points, lines = cases.task_report(task_id, result, maximum)
    if outcome is not None and status in ("import_error", "memory") and not outcome.cases:
        lines = [
            f"Task {task_id} {function}: your cnnlab package does not import: 0 of {maximum:g} points.",
            *lines[1:],
        ]
    return {
        "function": function,
        "points": points,
        "max": float(maximum),
        "passed": result.n_passed,
        "total": result.n_total,
        "status": status,
        "summary": "" if points >= maximum else _summary(status, result, runs, function, job.limits),
        "messages": result.messages,
        "mistakes": result.mistakes,
        "report": lines,
        "seconds": round(outcome.seconds, 3) if outcome else 0.0,
        "error": outcome.error if outcome else None,
    }


def _assignment(job: Job) -> Assignment:
    return Assignment(
        job.assignment, tuple(job.notebooks), tuple(job.editable), {t: m for t, _, _, m in job.tasks}
    )


def _timestamp(submission: Path | None) -> str | None:
    if submission is None:
        return None
    path = submission / "timestamp.txt"
    try:
        if stat.S_ISREG(os.lstat(path).st_mode) and path.stat().st_size < 200:
            return path.read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        pass
    return None


def _finish(row: dict[str, Any], job: Job, seconds: float) -> dict[str, Any]:
    tasks = row["tasks"]
    if job.tasks and len(tasks) < len(job.tasks):  # the grader failed half-way: zeros, reported
        for task_id, _, function, maximum in job.tasks:
            tasks.setdefault(
                task_id,
                {
                    "function": function,
                    "points": 0.0,
                    "max": float(maximum),
                    "passed": 0,
                    "total": 0,
                    "status": "grader",
                    "summary": "grader error",
                    "messages": [],
                    "mistakes": [],
                    "report": [
                        f"Task {task_id} {function}: not graded (grader error): 0 of {maximum:g} points."
                    ],
                    "seconds": 0.0,
                    "error": row.get("grader_error"),
                },
            )
    row["total"] = round(sum(t["points"] for t in tasks.values()), 2)
    row["max_total"] = float(sum(t["max"] for t in tasks.values()))
    parts = list(row["problems"])
    parts += [f"Task {tid}: {t['summary']}" for tid, t in tasks.items() if t["summary"]]
    if row.get("grader_error"):
        parts.insert(0, f"GRADER ERROR (will be retried): {row['grader_error']}")
    row["reason"] = "; ".join(parts) or "ok"
    row["seconds"] = round(seconds, 3)
    return row


# ---------------------------------------------------------------------------------------------------
# Results on disk
# ---------------------------------------------------------------------------------------------------


def _result_path(out: Path, student: str) -> Path:
    return out / RESULTS / f"{student}.json"


def _save(out: Path, row: dict[str, Any]) -> None:
    """Write a result atomically (a temporary file, then ``os.replace``): a killed grader leaves
    either the old result, or the new one, never half of one."""
    path = _result_path(out, row["student"])
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w") as fh:
        json.dump(row, fh, indent=1, sort_keys=True)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _load_cached(out: Path, student: str, key: str) -> dict[str, Any] | None:
    try:
        row = json.loads(_result_path(out, student).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(row, dict) or row.get("key") != key or row.get("grader_error"):
        return None
    return row


# ---------------------------------------------------------------------------------------------------
# LMS zip files
# ---------------------------------------------------------------------------------------------------

CANVAS = re.compile(
    r"^(?P<student>[A-Za-z0-9][A-Za-z0-9.-]*?)(?:_LATE)?_(?P<uid>\d+)_(?P<sid>\d+)_(?P<rest>.+)$"
)
PLAIN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
IGNORED = re.compile(
    r"(^|/)(__MACOSX|\.ipynb_checkpoints|__pycache__)(/|$)|(^|/)(\.DS_Store|\._[^/]*|Thumbs\.db)$"
)


@dataclass
class ZipLimits:
    max_files: int = 2000
    max_total_mb: int = 100  # uncompressed bytes actually written, in all
    max_file_mb: int = 20


@dataclass
class Intake:
    """One zip of a class download: the student it belongs to and what became of it."""

    zip: Path
    student: str | None
    rejected: str | None = None
    notes: list[str] = field(default_factory=list)
    canvas_submission: int = -1


def zip_student(name: str) -> tuple[str | None, int]:
    """The student id in a zip's file name, and Canvas's submission id (-1 if none).

    Accepted: ``<student>.zip`` (letters, digits, ``.``, ``_``, ``-``) and Canvas's
    ``<student>[_LATE]_<user id>_<submission id>_<original name>.zip``; anything else: ``None``."""
    stem = name[:-4] if name.lower().endswith(".zip") else name
    m = CANVAS.match(stem)
    if m:
        return m.group("student"), int(m.group("sid"))
    return (stem if PLAIN.match(stem) else None), -1


def _safe_member(name: str) -> str | None:
    """A zip member's path, normalised; None for an absolute path, ``..`` or a drive."""
    path = name.replace("\\", "/")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        return None
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        return None
    return "/".join(parts) + ("/" if path.endswith("/") and parts else "")


def _find_root(names: list[str], assignment: Assignment) -> str | None:
    """The folder inside the zip that holds the assignment: the one (at most two levels deep) where
    most of its notebooks and student files are; '' for the top of the zip."""
    anchors = [*assignment.files, *assignment.notebooks]
    votes: Counter[str] = Counter()
    for name in names:
        for rel in anchors:
            if name == rel or name.endswith("/" + rel):
                prefix = name[: len(name) - len(rel)]
                if prefix.count("/") <= 2:
                    votes[prefix] += 1
    if not votes:
        return None
    return min(votes, key=lambda p: (-votes[p], p.count("/"), p))


def extract_zip(
    path: Path, dest: Path, assignment: Assignment, limits: ZipLimits
) -> tuple[str | None, list[str]]:
    """Extract the assignment folder of one zip into ``dest`` (created); ``(problem, notes)``.

    Refused whole: not a zip, encrypted, a member with an absolute path or ``..``, more than
    ``max_files`` members, more than ``max_total_mb`` (counted while writing: the sizes in the zip's
    directory are not trusted) or a file over ``max_file_mb``, no assignment files inside. Links,
    ``__MACOSX``, ``.DS_Store``, ``._*``, ``__pycache__`` and ``.ipynb_checkpoints`` are skipped.
    """
    notes: list[str] = []
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        return f"{path.name} is not a readable zip file ({exc})", notes
    with zf:
        infos = zf.infolist()
        if len(infos) > limits.max_files:
            return f"{path.name} holds {len(infos)} files (at most {limits.max_files})", notes
        members: list[tuple[str, zipfile.ZipInfo]] = []
        for info in infos:
            safe = _safe_member(info.filename)
            if safe is None:
                return f"{path.name} contains an unsafe path {info.filename!r}: refused", notes
            if IGNORED.search(safe.rstrip("/")) or info.is_dir():
                continue
            if info.flag_bits & 0x1:
                return f"{path.name} is encrypted", notes
            if stat.S_ISLNK(info.external_attr >> 16):
                notes.append(f"{safe}: a link, skipped")
                continue
            members.append((safe, info))
        root = _find_root([m for m, _ in members], assignment)
        if root is None:
            return (
                f"{path.name} holds no file of {assignment.name} "
                f"({', '.join(assignment.notebooks + assignment.files)})",
                notes,
            )
        total, cap, file_cap = 0, limits.max_total_mb * 2**20, limits.max_file_mb * 2**20
        dest.mkdir(parents=True)
        for name, info in members:
            if not name.startswith(root):
                continue
            rel = name[len(root) :]
            target = dest / rel
            if not target.resolve().is_relative_to(dest.resolve()):
                return f"{path.name} contains an unsafe path {info.filename!r}: refused", notes
            target.parent.mkdir(parents=True, exist_ok=True)
            written = 0
            try:
                with zf.open(info) as src, open(target, "wb") as out:
                    while chunk := src.read(1 << 16):
                        written += len(chunk)
                        total += len(chunk)
                        if written > file_cap:
                            return (
                                f"{path.name}: {rel} is larger than {limits.max_file_mb} MB: refused",
                                notes,
                            )
                        if total > cap:
                            return (
                                f"{path.name} unpacks to more than {limits.max_total_mb} MB: refused",
                                notes,
                            )
                        out.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, ValueError) as exc:
                return f"{path.name}: {rel} cannot be extracted ({type(exc).__name__}: {exc})", notes
    if root:
        notes.append(f"the assignment was in {root!r} inside the zip")
    return None, notes


def intake_zips(
    folder: Path, root: Path, assignment: Assignment, limits: ZipLimits | None = None
) -> list[Intake]:
    """Unpack every ``*.zip`` of ``folder`` into ``<root>/submitted/<student>/<assignment>/``.

    The student id comes from the file name (:func:`zip_student`). When a student has several zips,
    the one with the highest Canvas submission id (else the newest file) wins; the others are noted.
    Each zip is unpacked into a staging folder by :func:`extract_zip` and only then replaces the
    student's previous submission. A refused zip keeps no files and gets a row with 0 points.
    """
    limits = limits or ZipLimits()
    by_student: dict[str, list[Intake]] = {}
    skipped = []
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file() or path.suffix.lower() != ".zip":
            continue
        student, sid = zip_student(path.name)
        if student is None:
            skipped.append(path.name)
            continue
        by_student.setdefault(student, []).append(Intake(path, student, canvas_submission=sid))
    intakes = []
    submitted = Path(root) / "submitted"
    submitted.mkdir(parents=True, exist_ok=True)
    for student, found in sorted(by_student.items()):
        found.sort(key=lambda i: (i.canvas_submission, i.zip.stat().st_mtime, i.zip.name))
        chosen = found[-1]
        if len(found) > 1:
            chosen.notes.append("newer than " + ", ".join(i.zip.name for i in found[:-1]))
        staging = Path(tempfile.mkdtemp(prefix=f".zip-{student}-", dir=submitted))
        try:
            problem, notes = extract_zip(chosen.zip, staging / "a", assignment, limits)
            chosen.notes += notes
            target = submitted / student / assignment.name
            if problem:
                chosen.rejected = problem
            else:
                target.parent.mkdir(exist_ok=True)
                if target.exists():
                    shutil.rmtree(target)
                os.replace(staging / "a", target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        intakes.append(chosen)
    for name in skipped:
        intakes.append(Intake(Path(folder) / name, None, f"{name}: no student id in the file name: skipped"))
    return intakes


# ---------------------------------------------------------------------------------------------------
# The gradebook and the autograded notebooks
# ---------------------------------------------------------------------------------------------------


def write_gradebook(root: Path, assignment: Assignment, rows: list[dict[str, Any]]) -> str | None:
    """Scores into nbgrader's gradebook, as ``nbgrader autograde`` saves them (``auto_score`` of
    each grade cell; ``needs_manual_grade`` only where a manual score exists). Returns a problem."""
    from nbgrader.api import Gradebook, MissingEntry

    from autograder.course import db_url

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(db_url(root), "cnnlab") as gb:
            try:
                gb.find_assignment(assignment.name)
            except MissingEntry:
                return f"{assignment.name} is not in the gradebook (run `python -m autograder release`)"
            tasks = load_reference().tasks.TASKS
            for row in rows:
                if row.get("grader_error"):
                    continue
                gb.update_or_create_student(row["student"])
                kwargs = {}
                if row.get("timestamp"):
                    with contextlib.suppress(Exception):
                        from nbgrader.utils import parse_utc

                        parse_utc(row["timestamp"])
                        kwargs["timestamp"] = row["timestamp"]
                gb.update_or_create_submission(assignment.name, row["student"], **kwargs)
                for task_id, info in row["tasks"].items():
                    try:
                        grade = gb.find_grade(
                            tasks[task_id].marker, tasks[task_id].notebook, assignment.name, row["student"]
                        )
                    except MissingEntry:
                        continue
                    grade.auto_score = float(info["points"])
                    grade.needs_manual_grade = grade.manual_score is not None
                gb.db.commit()
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
    for rel in [*assignment.files, "timestamp.txt"]:
        src = None if submission is None else submission / rel
        if src is not None and os.path.lexists(src) and stat.S_ISREG(os.lstat(src).st_mode):
            (staging / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, staging / rel)
    for nb_name in assignment.notebooks:
        source, _ = read_notebook(Path(root) / "source" / assignment.name / nb_name)
        if source is None:
            continue
        restored = {_grade_id(c): c for c in source["cells"] if _grade_id(c)}
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
            gid = _grade_id(cell)
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
            nb = nbformat.from_dict({**base, "cells": cells})
            (staging / nb_name).write_text(nbformat.writes(nb))
    if dest.exists():
        shutil.rmtree(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    os.replace(staging, dest)


# ---------------------------------------------------------------------------------------------------
# Exports
# ---------------------------------------------------------------------------------------------------


def write_csv(path: Path, assignment: Assignment, rows: list[dict[str, Any]]) -> None:
    """Points per task per student: ``student_id, assignment, <task>..., total, max_score, reason``."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["student_id", "assignment", *assignment.tasks, "total", "max_score", "reason"])
        for row in rows:
            points = [f"{row['tasks'][t]['points']:g}" if t in row["tasks"] else "" for t in assignment.tasks]
            writer.writerow(
                [
                    row["student"],
                    row["assignment"],
                    *points,
                    f"{row['total']:g}",
                    f"{row['max_total']:g}",
                    row["reason"],
                ]
            )
    os.replace(tmp, path)


def feedback_markdown(row: dict[str, Any]) -> str:
    """A student's feedback: points per task and the diagnoses (never the hidden tests' source)."""
    lines = [f"# {row['assignment']}: feedback for {row['student']}", ""]
    lines.append(f"**Total: {row['total']:g} of {row['max_total']:g} points.**")
    lines.append("")
    if row["problems"]:
        lines += ["Notes on your submission:", ""] + [f"- {p}" for p in row["problems"]] + [""]
    for task_id, info in row["tasks"].items():
        lines.append(f"## Task {task_id} `{info['function']}`: {info['points']:g} of {info['max']:g} points")
        lines.append("")
        lines.append(f"Passed {info['passed']} of {info['total']} hidden cases.")
        for message in info["messages"]:
            body = message.replace("\n", "\n  ")
            lines.append(f"- {body}")
        lines.append("")
    return "\n".join(lines)


def class_summary(assignment: Assignment, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per task: students graded, students who lost points, mean points, the mistakes diagnosed
    (mistake ids of :mod:`autograder.mistakes`, one count per student) and the most common one."""
    from autograder.mistakes import BY_ID

    summary: dict[str, Any] = {"assignment": assignment.name, "students": len(rows), "tasks": {}}
    tasks = load_reference().tasks.TASKS
    for task_id in assignment.tasks:
        graded = [r["tasks"][task_id] for r in rows if task_id in r["tasks"]]
        lost = [t for t in graded if t["points"] < t["max"]]
        mistakes: Counter[str] = Counter()
        statuses: Counter[str] = Counter()
        for t in lost:
            mistakes.update(set(t["mistakes"]))
            statuses[t["summary"] if t["summary"] in ("not implemented",) else t["status"]] += 1
        top = mistakes.most_common(1)
        summary["tasks"][task_id] = {
            "function": tasks[task_id].function,
            "max": float(assignment.points[task_id]),
            "graded": len(graded),
            "lost_points": len(lost),
            "mean": round(sum(t["points"] for t in graded) / len(graded), 2) if graded else 0.0,
            "mistakes": dict(mistakes.most_common()),
            "statuses": dict(statuses.most_common()),
            "most_common_mistake": top[0][0] if top else None,
            "most_common_count": top[0][1] if top else 0,
            "most_common_message": BY_ID[top[0][0]].message if top else None,
        }
    return summary


def write_summary(out: Path, summary: dict[str, Any]) -> Path | None:
    """``summary.md`` and ``summary.json``, and ``summary.png``: a bar per task of the students who
    lost points, labelled with the most common diagnosed mistake. Returns the PNG path."""
    lines = [f"# {summary['assignment']}: class summary ({summary['students']} submissions)", ""]
    lines += [
        "| task | function | mean | lost points | most common mistake | students |",
        "|---|---|---|---|---|---|",
    ]
    for task_id, t in summary["tasks"].items():
        top = f"`{t['most_common_mistake']}`" if t["most_common_mistake"] else "-"
        lines.append(
            f"| {task_id} | {t['function']} | {t['mean']:g} / {t['max']:g} "
            f"| {t['lost_points']} of {t['graded']} "
            f"| {top} | {t['most_common_count'] or '-'} |"
        )
    lines.append("")
    for task_id, t in summary["tasks"].items():
        if t["mistakes"] or t["statuses"]:
            lines.append(f"## Task {task_id} {t['function']}")
            lines += [f"- `{m}`: {n} students" for m, n in t["mistakes"].items()]
            lines += [f"- ({s}): {n} students" for s, n in t["statuses"].items() if s != "ok"]
            if t["most_common_message"]:
                lines += ["", f"Most common: {t['most_common_message']}"]
            lines.append("")
    (out / "summary.md").write_text("\n".join(lines))
    (out / "summary.json").write_text(json.dumps(summary, indent=1))
    try:
        import matplotlib

        matplotlib.use("Agg", force=True)
        import matplotlib.pyplot as plt
    except Exception:
        return None
    ids = list(summary["tasks"])
    lost = [summary["tasks"][t]["lost_points"] for t in ids]
    common = [summary["tasks"][t]["most_common_count"] for t in ids]
    fig, ax = plt.subplots(figsize=(max(4.0, 1.6 * len(ids) + 2), 4.2))
    x = range(len(ids))
    ax.bar(x, lost, color="#d98c8c", label="students who lost points")
    ax.bar(x, common, color="#8c5a5a", width=0.5, label="... with the most common mistake")
    for i, t in enumerate(ids):
        name = summary["tasks"][t]["most_common_mistake"]
        if name:
            ax.annotate(
                name,
                (i, common[i]),
                xytext=(0, 4),
                textcoords="offset points",
                ha="center",
                va="bottom",
                fontsize=7,
                rotation=12,
            )
    ax.set_xticks(list(x), [f"Task {t}\n{summary['tasks'][t]['function']}" for t in ids], fontsize=8)
    ax.set_ylabel("students")
    ax.set_ylim(0, max([1, *lost]) * 1.25)
    ax.set_title(f"{summary['assignment']}: where {summary['students']} students lost points")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path = out / "summary.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---------------------------------------------------------------------------------------------------
# The batch
# ---------------------------------------------------------------------------------------------------


class Progress:
    """A one-line progress counter on stderr (redrawn in place on a terminal)."""

    def __init__(self, total: int, enabled: bool = True) -> None:
        self.total, self.done, self.cached, self.start = total, 0, 0, time.monotonic()
        self.enabled = enabled and total > 0
        self.tty = sys.stderr.isatty()
        self.last = -1.0

    def update(self, student: str, cached: bool = False) -> None:
        self.done += 1
        self.cached += cached
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.start
        graded = self.done - self.cached
        rate = elapsed / graded if graded else 0.0
        eta = rate * (self.total - self.done)
        line = (
            f"[grade] {self.done}/{self.total} ({self.cached} cached) {elapsed:5.1f} s"
            + (f", ETA {eta:4.0f} s" if graded and self.done < self.total else "")
            + f"  {student}"
        )
        if self.tty:
            sys.stderr.write("\r" + line[:100].ljust(100))
            if self.done == self.total:
                sys.stderr.write("\n")
        elif self.done == self.total or elapsed - self.last >= 5:
            sys.stderr.write(line + "\n")
            self.last = elapsed
        sys.stderr.flush()


@dataclass
class BatchResult:
    assignment: str
    rows: list[dict[str, Any]]
    out: Path
    graded: int
    cached: int
    seconds: float
    gradebook_problem: str | None = None
    intakes: list[Intake] = field(default_factory=list)

    @property
    def grader_errors(self) -> list[dict[str, Any]]:
        return [r for r in self.rows if r.get("grader_error")]


def _submissions(root: Path, assignment: str, only: list[str] | None) -> list[tuple[str, Path]]:
    folder = Path(root) / "submitted"
    if not folder.is_dir():
        return []
    found = []
    for student in sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        sub = folder / student / assignment
        if (only is None or student in only) and sub.is_dir() and not sub.is_symlink():
            found.append((student, sub))
    return found


def grade_assignment(name: str, root: Path, options: Options) -> BatchResult:
    """Grade every submission of assignment ``name`` in course ``root``; see the module docstring."""
    t0 = time.monotonic()
    log = options.log
    manifest = load_manifest()
    if name not in manifest:
        raise BatchError(f"unknown assignment {name!r}; the course has {', '.join(manifest)}")
    assignment = manifest[name]
    root = Path(root).resolve()
    out = Path(options.out or root / "batch" / name).resolve()
    (out / RESULTS).mkdir(parents=True, exist_ok=True)
    for stale in (out / RESULTS).glob(".*.tmp"):
        stale.unlink(missing_ok=True)  # left by a grader killed while writing
    mode = sandbox.sandbox_mode()
    if not mode.confined and not options.allow_unconfined:
        raise BatchError(
            f"no sandbox on this machine ({mode.description}); run as root, on Linux >= 5.13 (Landlock), "
            "or pass --allow-unconfined to run student code with the grader's rights"
        )
    log(f"sandbox: {mode.description}")
    intakes: list[Intake] = []
    if options.zips:
        intakes = intake_zips(options.zips, root, assignment)
        refused = [i for i in intakes if i.rejected]
        log(f"zips: {len(intakes) - len(refused)} unpacked into {root / 'submitted'}, {len(refused)} refused")
        for i in intakes:
            for text in ([i.rejected] if i.rejected else []) + i.notes:
                log(f"  {i.zip.name}: {text}")
    subs = _submissions(root, name, options.students)
    rejected = {
        i.student: i
        for i in intakes
        if i.rejected and i.student and (options.students is None or i.student in options.students)
    }
    ref = load_reference()
    tasks = ref.tasks.TASKS
    task_rows = [(t, tasks[t].module, tasks[t].function, float(p)) for t, p in assignment.points.items()]
    release_pkg = release_package(root, name)
    drift = release_drift(release_pkg)
    if drift:
        log(
            f"warning: {release_pkg} is older than solutions/cnnlab ({', '.join(drift)} differ): "
            "release the course again, or provided code may differ from what nbgrader's kernel runs"
        )
    release_nbs = release_notebooks(root, assignment)
    fixed = json.dumps(
        {
            "grader": grader_hash(),
            "release": tree_hash(release_pkg),
            "tasks": task_rows,
            "limits": [options.limits.timeout, options.limits.memory_mb, options.limits.task_budget],
        },
        sort_keys=True,
    )
    base = out / ".sandboxes"  # emptied at every start: a killed grader leaves nothing behind for long
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir()
    base.chmod(0o711)
    jobs = []
    zip_notes = {i.student: i.notes for i in intakes if i.student}
    for student, sub in subs + [(s, None) for s in sorted(rejected) if s not in {x for x, _ in subs}]:
        if sub is not None and student in rejected:
            sub = None  # a refused zip replaces nothing but is still reported
        seeds = student_seeds(root, student, assignment.tasks)
        key = hashlib.sha256(
            (
                fixed
                + json.dumps(
                    [tree_hash(sub), seeds, rejected[student].rejected if student in rejected else None]
                )
            ).encode()
        ).hexdigest()
        jobs.append(
            Job(
                student,
                name,
                sub,
                rejected[student].rejected if student in rejected else None,
                list(zip_notes.get(student, [])),
                key,
                seeds,
                task_rows,
                list(assignment.files),
                list(assignment.notebooks),
                release_pkg,
                release_nbs,
                base,
                options.limits,
                mode,
            )
        )
    rows: dict[str, dict[str, Any]] = {}
    progress = Progress(len(jobs), options.progress)
    pending = []
    for job in jobs:
        cached = None if options.force else _load_cached(out, job.student, job.key)
        if cached is not None:
            rows[job.student] = cached
            progress.update(job.student, cached=True)
        else:
            pending.append(job)
    delay = float(os.environ.get(TEST_DELAY_ENV) or 0)
    preload = _Preload(options.gradebook)
    try:
        for row in _run_pool(pending, options.workers or _cores(), preload):
            if not row.get("grader_error"):
                _save(out, row)
            rows[row["student"]] = row
            progress.update(row["student"])
            if delay:
                time.sleep(delay)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    ordered = [rows[j.student] for j in jobs]
    preload.join()
    gb_problem = None
    if options.gradebook and ordered:
        try:
            gb_problem = write_gradebook(root, assignment, ordered)
            if gb_problem is None:
                for job, row in zip(jobs, ordered, strict=True):
                    if not row.get("grader_error"):
                        write_autograded(root, assignment, row, job.submission)
        except Exception as exc:
            gb_problem = f"the gradebook could not be written ({type(exc).__name__}: {exc})"
        if gb_problem:
            log(f"warning: {gb_problem}")
    write_csv(out / "grades.csv", assignment, ordered)
    fb = out / "feedback"
    fb.mkdir(exist_ok=True)
    for row in ordered:
        (fb / f"{row['student']}.md").write_text(feedback_markdown(row))
    write_summary(out, class_summary(assignment, ordered))
    graded = len(pending)
    return BatchResult(
        name, ordered, out, graded, len(jobs) - graded, time.monotonic() - t0, gb_problem, intakes
    )


def _cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def _error_row(job: Job, error: str) -> dict[str, Any]:
    row = {
        "student": job.student,
        "assignment": job.assignment,
        "key": job.key,
        "grader": GRADER_VERSION,
        "problems": [],
        "tasks": {},
        "grader_error": error,
        "timestamp": None,
    }
    return _finish(row, job, 0.0)


class _Preload:
    """Imports ``nbgrader.api`` and ``nbformat`` (several seconds) in a thread while the workers
    grade. Started only once the workers are forked (forking while a thread imports could leave a
    module lock held in the child), joined before any later fork."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.thread: threading.Thread | None = None

    @staticmethod
    def _work() -> None:
        with contextlib.suppress(Exception), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import nbformat  # noqa: F401
            import nbgrader.api  # noqa: F401

    def start(self) -> None:
        if self.enabled and self.thread is None:
            self.thread = threading.Thread(target=self._work, name="preload-nbgrader", daemon=True)
            self.thread.start()

    def join(self) -> None:
        if self.thread is not None:
            self.thread.join()


def _run_pool(jobs: list[Job], workers: int, preload: _Preload | None = None) -> Iterable[dict[str, Any]]:
    """Grade ``jobs`` in ``workers`` processes, yielding results as they finish. A worker that dies
    (it should not: student code runs in its own child) breaks the pool: its jobs are retried one
    at a time, and a job that breaks a pool twice gets a grader-error row. Never raises for a job."""
    if not jobs:
        return
    context = mp.get_context("fork")
    counter = context.Value("i", 0)
    queue, tries = list(jobs), {id(j): 0 for j in jobs}
    while queue:
        batch, queue = queue, []
        single = any(tries[id(j)] for j in batch)
        groups = [[j] for j in batch] if single else [batch]
        for group in groups:
            if preload is not None and preload.thread is not None:
                preload.join()  # never fork while another thread imports
            with ProcessPoolExecutor(
                max_workers=1 if single else min(workers, len(group)),
                mp_context=context,
                initializer=_init_worker,
                initargs=(counter,),
            ) as pool:
                futures = {pool.submit(grade_job, job): job for job in group}
                if preload is not None:
                    preload.start()  # the workers exist now (fork context: all started at once)
                for future in as_completed(futures):
                    job = futures[future]
                    try:
                        yield future.result()
                    except BrokenProcessPool:
                        tries[id(job)] += 1
                        if tries[id(job)] >= 2:
                            yield _error_row(job, "the grading worker died twice on this submission")
                        else:
                            queue.append(job)
                    except Exception as exc:
                        yield _error_row(job, f"{type(exc).__name__}: {exc}")


# ---------------------------------------------------------------------------------------------------
# Fabricated submissions (tests and benchmarks/grade_bench.py)
# ---------------------------------------------------------------------------------------------------


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
                gid = _grade_id(cell)
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


# ---------------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------------


def _format_table(result: BatchResult, assignment: Assignment) -> str:
    head = ["student", *assignment.tasks, "total", "reason"]
    body = [
        [
            r["student"],
            *(f"{r['tasks'][t]['points']:g}" if t in r["tasks"] else "-" for t in assignment.tasks),
            f"{r['total']:g}",
            r["reason"][:70],
        ]
        for r in result.rows
    ]
    maxrow = ["(max)", *(f"{assignment.points[t]:g}" for t in assignment.tasks), f"{assignment.total:g}", ""]
    widths = [max(len(row[i]) for row in [head, maxrow, *body]) for i in range(len(head))]

    def line(row: list[str]) -> str:
        return "  ".join(
            c.ljust(w) if i in (0, len(row) - 1) else c.rjust(w)
            for i, (c, w) in enumerate(zip(row, widths, strict=True))
        ).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(head), rule, *map(line, body), rule, line(maxrow)])


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m autograder grade",
        description="Grade every submission of an assignment in parallel, each in a sandbox; write the "
        "nbgrader gradebook, a CSV, feedback files and a class summary.",
    )
    parser.add_argument("assignments", nargs="+", metavar="ASSIGNMENT", help="e.g. 02_conv_layer")
    parser.add_argument(
        "--zips",
        type=Path,
        help="a folder of per-student zip files (LMS download) to unpack into submitted/ first",
    )
    parser.add_argument("--student", action="append", dest="students", help="only this student (repeatable)")
    parser.add_argument("--workers", type=int, default=0, help="parallel workers (default: one per core)")
    parser.add_argument(
        "--timeout", type=float, default=60.0, help="wall-clock seconds per submission (default 60)"
    )
    parser.add_argument(
        "--memory-mb", type=int, default=1024, help="memory limit of student code, MB (default 1024)"
    )
    parser.add_argument("--out", type=Path, help="output folder (default <course root>/batch/<assignment>)")
    parser.add_argument("--force", action="store_true", help="re-grade everything, ignoring cached results")
    parser.add_argument(
        "--no-gradebook", action="store_true", help="do not write nbgrader's gradebook and autograded/"
    )
    parser.add_argument(
        "--allow-unconfined", action="store_true", help="run student code even without any sandbox"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line, no table")
    return parser


def main(argv: list[str] | None = None) -> int:
    """``python -m autograder grade ...``: exit 0 when every submission has a result, 1 on a grader
    error (the submissions concerned are retried by the next run), 2 on a usage error."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["grade"]:
        argv = argv[1:]
    args = build_parser().parse_args(argv)
    if args.zips and len(args.assignments) != 1:
        print("error: --zips needs exactly one assignment", file=sys.stderr)
        return 2
    if args.timeout <= 0 or args.memory_mb < 64 or args.workers < 0:
        print("error: --timeout must be > 0, --memory-mb >= 64, --workers >= 0", file=sys.stderr)
        return 2
    from autograder.course import course_root

    root = course_root()
    options = Options(
        workers=args.workers,
        limits=sandbox.Limits(timeout=args.timeout, memory_mb=args.memory_mb),
        force=args.force,
        gradebook=not args.no_gradebook,
        out=args.out if len(args.assignments) == 1 else None,
        students=args.students,
        zips=args.zips,
        allow_unconfined=args.allow_unconfined,
        progress=not args.quiet,
        log=(lambda s: None) if args.quiet else print,
    )
    status = 0
    try:
        manifest = load_manifest()
        for name in args.assignments:
            result = grade_assignment(name, root, options)
            if not args.quiet:
                print(_format_table(result, manifest[name]))
                print(
                    f"{name}: {len(result.rows)} submissions, {result.graded} graded, "
                    f"{result.cached} cached, "
                    f"in {result.seconds:.1f} s"
                )
                print(f"grades CSV: {result.out / 'grades.csv'}")
                print(f"feedback:   {result.out / 'feedback'}/<student>.md")
                print(f"summary:    {result.out / 'summary.md'} and summary.png")
                if options.gradebook and not result.gradebook_problem:
                    print(
                        f"gradebook:  {root / 'gradebook.db'} "
                        "(nbgrader export / formgrader / generate_feedback)"
                    )
            for row in result.grader_errors:
                print(f"GRADER ERROR {row['student']}: {row['grader_error']}", file=sys.stderr)
                status = 1
    except (BatchError, ManifestError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
