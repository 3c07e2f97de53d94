"""Stage 1, intake: what each student handed in, and when.

* LMS downloads: :func:`intake_zips` unpacks a folder of per-student zips safely into nbgrader's
  ``submitted/<student>/<assignment>/`` (:func:`extract_zip` says what is refused).
* Submission times: never from a file inside a student's zip (a student writes what it likes there).
  A zip's time comes from the LMS: a submission-times CSV exported from it (``--times``,
  :func:`read_times`), or Canvas's ``LATE`` mark in the download's file name; intake records it beside
  the unpacked folder (:func:`intake_record`), where no zip member can write. A folder that nbgrader's
  exchange collected carries nbgrader's own ``timestamp.txt``. :func:`submission_time` says which.
* Identity: a Canvas download is its user id, not its name part (two users are two students).
* One zip never stops the class: whatever goes wrong unpacking it becomes that student's reason.
* :func:`read_submission`: the student's editable files as bytes (what travels to the sandbox) and
  what is wrong with them.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shutil
import stat
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from autograder.manifest import Assignment

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
    late_mark: bool = False  # Canvas put _LATE_ in the download's name


INTAKE_FILE = ".cnnlab-intake-{assignment}.json"  # in submitted/<student>/, beside (never inside) the
# folder a zip is unpacked into: the time and its source, and a hash of the folder it describes
MAX_FILE = 4 * 2**20  # largest student file the sandbox receives


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
    except (zipfile.BadZipFile, OSError, ValueError, EOFError) as exc:  # UnicodeDecodeError: a name
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
            if safe.rsplit("/", 1)[-1] == "timestamp.txt":
                notes.append(f"{safe}: ignored (the submission time comes from the LMS, never from the zip)")
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
            written = 0
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
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
    folder: Path,
    root: Path,
    assignment: Assignment,
    limits: ZipLimits | None = None,
    times: dict[str, str] | None = None,
) -> list[Intake]:
    """Unpack every ``*.zip`` of ``folder`` into ``<root>/submitted/<student>/<assignment>/``.

    The student id comes from the file name (:func:`zip_student`). When a student has several zips,
    the one with the highest Canvas submission id (else the newest file) wins; the others are noted.
    Each zip is unpacked into a staging folder by :func:`extract_zip` and only then replaces the
    student's previous submission. A refused zip keeps no files and gets a row with 0 points.
    """
    limits = limits or ZipLimits()
    found_zips: list[tuple[Path, str, int, int | None, bool]] = []  # path, name part, sid, Canvas uid, late
    skipped = []
    for path in sorted(Path(folder).iterdir()):
        if not path.is_file() or path.suffix.lower() != ".zip":
            continue
        student, sid = zip_student(path.name)
        if student is None:
            skipped.append(path.name)
            continue
        m = CANVAS.match(path.name[:-4])
        late = bool(m) and "_LATE_" in path.name
        found_zips.append((path, student, sid, int(m.group("uid")) if m else None, late))
    # Canvas's name part is not an identity: its user id is. Two users with one name part are two
    # students, named <name>-<user id>.
    uids: dict[str, set[int | None]] = {}
    for _, student, _, uid, _ in found_zips:
        uids.setdefault(student, set()).add(uid)
    by_student: dict[str, list[Intake]] = {}
    canvas_ids: dict[str, int] = {}
    for path, student, sid, uid, late in found_zips:
        who = student if len(uids[student]) == 1 else f"{student}-{uid if uid is not None else 'plain'}"
        intake = Intake(path, who, canvas_submission=sid, late_mark=late)
        if who != student:
            intake.notes.append(
                f"{len(uids[student])} different LMS users hand in as {student!r}: graded as {who!r}"
            )
        by_student.setdefault(who, []).append(intake)
        if uid is not None:
            canvas_ids[who] = uid
    intakes = []
    submitted = Path(root) / "submitted"
    submitted.mkdir(parents=True, exist_ok=True)
    for _, found in sorted(by_student.items()):
        found.sort(key=lambda i: (i.canvas_submission, i.zip.stat().st_mtime, i.zip.name))
        chosen = found[-1]
        if len(found) > 1:
            chosen.notes.append("newer than " + ", ".join(i.zip.name for i in found[:-1]))
        try:
            _unpack(chosen, submitted, root, assignment, limits, times or {})
        except Exception as exc:  # noqa: BLE001 (one zip never stops the class)
            chosen.rejected = f"{chosen.zip.name} could not be unpacked ({type(exc).__name__}: {exc})"
        intakes.append(chosen)
    for name in skipped:
        intakes.append(Intake(Path(folder) / name, None, f"{name}: no student id in the file name: skipped"))
    if canvas_ids:
        from autograder.lms import record_canvas_ids

        record_canvas_ids(root, canvas_ids)  # for the Canvas gradebook export
    return intakes


def _unpack(
    chosen: Intake,
    submitted: Path,
    root: Path,
    assignment: Assignment,
    limits: ZipLimits,
    times: dict[str, str],
) -> None:
    """Unpack the chosen zip of a student into a staging folder; only then replace the old one."""
    student = chosen.student
    assert student is not None
    staging = Path(tempfile.mkdtemp(prefix=".zip-", dir=submitted))
    try:
        problem, notes = extract_zip(chosen.zip, staging / "a", assignment, limits)
        chosen.notes += notes
        target = submitted / student / assignment.name
        if problem:
            chosen.rejected = problem
            return
        target.parent.mkdir(exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging / "a", target)
        _write_time(target, intake_record(root, student, assignment.name), student, chosen, times)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def list_submissions(root: Path, assignment: str, only: list[str] | None) -> list[tuple[str, Path]]:
    folder = Path(root) / "submitted"
    if not folder.is_dir():
        return []
    found = []
    for student in sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")):
        sub = folder / student / assignment
        if (only is None or student in only) and sub.is_dir() and not sub.is_symlink():
            found.append((student, sub))
    return found


def intake_record(root: Path, student: str, assignment: str) -> Path:
    """Where intake writes what it knows of a student's unpacked zip (no zip member can land there)."""
    return Path(root) / "submitted" / student / INTAKE_FILE.format(assignment=assignment)


def _write_time(folder: Path, record: Path, student: str, intake: Intake, times: dict[str, str]) -> None:
    """The submission time of an unpacked zip, from the LMS only: the times CSV, else none (a
    ``LATE`` mark alone says late, not when). nbgrader's own commands read ``timestamp.txt``; the
    batch grader reads the record, which also holds a hash of the folder it belongs to."""
    from autograder.batch.store import tree_hash

    when = times.get(student)
    problem = getattr(times, "problems", {}).get(student)
    if problem:
        intake.notes.append(f"{problem}: no submission time, no late penalty")
    if when is not None:
        (folder / "timestamp.txt").write_text(when + "\n")
        source = "LMS submission-times CSV"
    elif intake.late_mark:
        source = "LMS: marked LATE in the download's name (no time)"
    else:
        source = "LMS: no time given"
    data = {"submitted_at": when, "time_source": source, "late_mark": intake.late_mark}
    data |= {"zip": intake.zip.name, "folder": tree_hash(folder)}
    record.parent.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(record.name + ".tmp")
    tmp.write_text(json.dumps(data))
    os.replace(tmp, record)


class Times(dict):
    """Submission times by student (``dict``), and the rows that could not be read: ``problems``
    maps a student to what was wrong with their row (that student's note, never the class's stop)."""

    def __init__(self) -> None:
        super().__init__()
        self.problems: dict[str, str] = {}


def read_times(path: Path) -> Times:
    """A submission-times CSV exported from the LMS: a student column (``student``, ``student_id``,
    ``login`` or ``sis_login_id``) and a time column (``submitted_at``, ``timestamp`` or
    ``submission_time``), in ISO 8601 or nbgrader's ``YYYY-MM-DD HH:MM:SS[.ffffff] [UTC]``."""

    from nbgrader.utils import parse_utc

    with open(path, newline="") as fh:
        reader = csv.DictReader(fh)
        fields = {f.lower().strip(): f for f in reader.fieldnames or []}
        who = next(
            (fields[k] for k in ("student", "student_id", "login", "sis_login_id") if k in fields), None
        )
        when = next(
            (fields[k] for k in ("submitted_at", "timestamp", "submission_time") if k in fields), None
        )
        if who is None or when is None:
            raise ValueError(f"{path}: needs a student column and a submitted_at column, has {list(fields)}")
        out = Times()
        for line, row in enumerate(reader, start=2):
            student, value = (row.get(who) or "").strip(), (row.get(when) or "").strip()
            if not student or not value:
                continue
            try:
                parsed = parse_utc(value)
                out[student] = parsed.strftime("%Y-%m-%d %H:%M:%S.%f UTC")
            except Exception:  # noqa: BLE001 (one bad row is its student's problem)
                out.problems[student] = f"{Path(path).name}, line {line}: {value[:60]!r} is not a time"
    return out


def submission_time(
    root: Path, student: str, assignment: str, submission: Path | None
) -> tuple[str | None, str]:
    """``(time, source)`` of a submission folder: what intake recorded from the LMS when the folder
    is still the one it unpacked (never a file from inside the zip), else the ``timestamp.txt``
    that nbgrader's exchange wrote when it collected the folder."""
    from autograder.batch.store import tree_hash

    if submission is None:
        return None, "no submission"
    with contextlib.suppress(OSError, ValueError, TypeError, AttributeError):
        record = json.loads(intake_record(root, student, assignment).read_text())
        if record["folder"] == tree_hash(submission):
            when = record.get("submitted_at")
            return (str(when) if when else None), str(record["time_source"])[:200]
    path = submission / "timestamp.txt"
    try:
        if stat.S_ISREG(os.lstat(path).st_mode) and path.stat().st_size < 200:
            return path.read_text().strip() or None, "nbgrader exchange (timestamp.txt)"
    except (OSError, UnicodeDecodeError):
        pass
    return None, "none"


def read_submission(
    submission: Path | None, editable: list[str]
) -> tuple[dict[str, bytes | None], list[str]]:
    """The student's versions of the ``editable`` files (paths like ``cnnlab/conv.py``) as bytes,
    and the problems with them (missing, not a regular file, too large): such a file is None, and
    absent from the sandbox, as in nbgrader."""
    files: dict[str, bytes | None] = {}
    problems = []
    for rel in editable:
        files[rel] = None
        source = None if submission is None else submission / rel
        if source is None or not os.path.lexists(source):
            problems.append(f"{rel} is missing from the submission")
            continue
        info = os.lstat(source)
        if not stat.S_ISREG(info.st_mode):
            problems.append(f"{rel} is not a regular file (a link or a folder): ignored")
        elif info.st_size > MAX_FILE:
            problems.append(f"{rel} is larger than {MAX_FILE // 2**20} MB: ignored")
        else:
            files[rel] = source.read_bytes()
    return files, problems
