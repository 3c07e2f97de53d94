"""One file never stops the class: the real batch grader, fuzzed with what a hostile class hands in.

Each example grades two honest students together with one bad submission (a zip whose members break
the file system's rules or collide with the grader's own files, a notebook nested too deeply or
too large, a submission time that does not parse, an exception message that cannot be encoded or
that holds a spreadsheet formula or HTML) and checks, from outside, that the grader finishes with
one row per student, that the honest rows are exactly the rows they get graded alone, and that
every report was written with the bad student's text made harmless. Named classes are explicit
examples (always run); hypothesis adds random ones.

Tagged for the issue: ``pytest tests/test_hostile_class.py``.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from autograder import batch, course, sandbox
from autograder.manifest import load_manifest

sys.path.insert(0, str(Path(__file__).parent))
import course_env  # noqa: E402

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(sys.platform != "linux", reason="the sandbox is Linux's"),
]

A = "01_convolution"
NB = "01_convolution.ipynb"
CONV = "cnnlab/conv.py"
HONEST = ("h_one", "h_two")
LIMITS = sandbox.Limits(timeout=20, memory_mb=600)
FORMULA = '=HYPERLINK("http://127.0.0.1/x","click")'
HTML = "<img src=x onerror=alert(1)> [link](http://127.0.0.1/y) # heading"


def _reference() -> str:
    return course.reference_variant("conv", None, ())


def _raising(message: str) -> str:
    """A conv.py whose Task 1.2 raises with ``message`` (built in the child, surrogates and all)."""
    return _reference() + f"\n\ndef conv1d(x, w, mode='full'):\n    raise ValueError({message!r})\n"


@pytest.fixture(scope="module")
def course_root(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("hostile")
    with course_env.course(root, "hostile-class-secret"):
        manifest = load_manifest()
        course.release(root, {A: manifest[A]}, log=lambda _: None)
        for student in HONEST:
            batch.fabricate_submission(root, student, manifest[A], {CONV: _reference()})
        yield root


def _options(root: Path, out: Path, students: list[str] | None, **more: Any) -> batch.Options:
    return batch.Options(
        workers=2, limits=LIMITS, progress=False, log=lambda _: None, gradebook=False, force=True,
        out=out, students=students, **more,
    )  # fmt: skip


def _grade(row: dict[str, Any]) -> dict[str, Any]:
    return {t: (r["points"], r["status"], r["passed"], r["messages"]) for t, r in row["tasks"].items()}


@pytest.fixture(scope="module")
def alone(course_root: Path) -> dict[str, dict[str, Any]]:
    """Each honest student graded alone: what every example must give them too."""
    rows = {}
    for student in HONEST:
        opts = _options(course_root, course_root / "alone", [student])
        opts.workers = 1
        rows[student] = batch.grade_assignment(A, course_root, opts).rows[0]
    return rows


# --- what a bad submission can be ----------------------------------------------------------------


def _zip_with(members: list[tuple[str | bytes, bytes]], path: Path) -> None:
    """A zip with members named exactly as given (bytes: a raw name, flagged as UTF-8 but maybe not)."""
    raw_names = []
    with zipfile.ZipFile(path, "w") as zf:
        for i, (name, data) in enumerate(members):
            if isinstance(name, bytes):  # an ASCII placeholder of the same length, replaced below
                placeholder = f"{i:0{len(name)}d}"[-len(name) :]
                info = zipfile.ZipInfo(placeholder)
                info.flag_bits |= 0x800
                raw_names.append((placeholder.encode(), name))
                zf.writestr(info, data)
            elif name.startswith(FORMULA):  # a link: intake skips it and says so, naming it
                info = zipfile.ZipInfo(name)
                info.external_attr = (0o120777) << 16
                zf.writestr(info, data or b"target")
            else:
                zf.writestr(name, data)
    raw = path.read_bytes()
    for placeholder, name in raw_names:
        raw = raw.replace(placeholder, name)
    path.write_bytes(raw)


def _released(root: Path) -> list[tuple[str, bytes]]:
    released = root / "release" / A
    return [(p.relative_to(released).as_posix(), p.read_bytes()) for p in released.rglob("*") if p.is_file()]


ZIP_CLASSES = {
    "file_and_folder": lambda base: base + [("cnnlab/conv.py/inner.py", b"x = 1\n")],
    "long_name": lambda base: base + [("cnnlab/" + "n" * 300 + ".py", b"x = 1\n")],
    "not_utf8": lambda base: base + [(b"cnnlab/q\xff\xfeq.py", b"x = 1\n")],
    "grader_metadata": lambda base: (
        base
        + [
            (".cnnlab-intake-01_convolution.json", b'{"submitted_at": "2000-01-01", "folder": "x"}'),
            ("timestamp.txt", b"2000-01-01 00:00:00 UTC\n"),
        ]
    ),  # fmt: skip
    "formula_name": lambda base: base + [(FORMULA + ".txt", b"")],
}
NOTEBOOK_CLASSES = {
    "deeply_nested": b"[" * 200_000 + b"]" * 200_000,
    "huge": json.dumps({"cells": [{"cell_type": "code", "source": "x" * (40 * 2**20)}]}).encode(),
    "cells_not_dicts": json.dumps({"cells": [1, "two", None, [3]], "metadata": {}}).encode(),
    "bytes": bytes(range(256)) * 10,
}
TEXT_CLASSES = {
    "lone_surrogate": "bad \udcff\ud800 text",
    "formula": FORMULA,
    "html": HTML,
}


@st.composite
def bad_submissions(draw: st.DrawFn) -> tuple[str, Any]:
    kind = draw(st.sampled_from(["zip", "notebook", "time", "text"]))
    if kind == "zip":
        names = st.one_of(
            st.sampled_from([*ZIP_CLASSES]),
            st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=4).map(tuple),
        )
        return kind, draw(names)
    if kind == "notebook":
        return kind, draw(st.one_of(st.sampled_from([*NOTEBOOK_CLASSES]), st.binary(max_size=2000)))
    if kind == "time":
        return kind, draw(st.one_of(st.just("yesterday"), st.text(min_size=1, max_size=30)))
    return kind, draw(st.one_of(st.sampled_from([*TEXT_CLASSES]), st.text(max_size=80)))


def _hand_in(root: Path, work: Path, kind: str, what: Any) -> dict[str, Any]:
    """Put the bad student's submission in place; the grading options it needs."""
    manifest = load_manifest()
    student = "z_bad"
    shutil.rmtree(root / "submitted" / student, ignore_errors=True)
    if kind in ("zip", "time"):
        zips = work / "zips"
        zips.mkdir()
        base = [(n, d) for n, d in _released(root) if n != CONV] + [(CONV, _reference().encode())]
        if kind == "zip":
            members = ZIP_CLASSES[what](base) if isinstance(what, str) else base + [(n, b"") for n in what]
        else:
            members = base
        _zip_with(members, zips / f"{student}.zip")
        extra: dict[str, Any] = {"zips": zips}
        if kind == "time":
            times = work / "times.csv"
            with open(times, "w", newline="", encoding="utf-8", errors="surrogateescape") as fh:
                csv.writer(fh).writerows(
                    [["student", "submitted_at"], [student, what], [HONEST[0], "2026-12-01"]]
                )
            extra["times"] = times
        return extra
    if kind == "notebook":
        sub = batch.fabricate_submission(root, student, manifest[A], {CONV: _reference()})
        (sub / NB).write_bytes(NOTEBOOK_CLASSES[what] if isinstance(what, str) else what)
        return {}
    message = TEXT_CLASSES.get(what, what)
    batch.fabricate_submission(root, student, manifest[A], {CONV: _raising(message)})
    return {}


def _check_reports(out: Path, honest_rows: dict[str, Any]) -> None:
    text = (out / "grades.csv").read_text(encoding="utf-8")
    for row in csv.reader(io.StringIO(text)):
        for cell in row:
            assert not cell.startswith(("=", "+", "@", "\t", "\r")), cell
            assert not (cell.startswith("-") and not cell.lstrip("-").replace(".", "").isdigit()), cell
    for md in (out / "feedback").glob("*.md"):
        body = md.read_text(encoding="utf-8")
        assert "<img" not in body and "](http" not in body, md.name
    assert (out / "summary.md").is_file()


@settings(max_examples=6, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
@given(bad=bad_submissions())
@example(bad=("zip", "file_and_folder"))
@example(bad=("zip", "long_name"))
@example(bad=("zip", "not_utf8"))
@example(bad=("zip", "grader_metadata"))
@example(bad=("zip", "formula_name"))
@example(bad=("notebook", "deeply_nested"))
@example(bad=("notebook", "huge"))
@example(bad=("notebook", "cells_not_dicts"))
@example(bad=("time", "yesterday"))
@example(bad=("text", "lone_surrogate"))
@example(bad=("text", "formula"))
@example(bad=("text", "html"))
def test_one_bad_submission_never_changes_anyone_elses_row(
    bad: tuple[str, Any], course_root: Path, alone: dict[str, dict[str, Any]], tmp_path_factory: Any
) -> None:
    work = tmp_path_factory.mktemp("example")
    kind, what = bad
    extra = _hand_in(course_root, work, kind, what)
    students = [*HONEST, "z_bad"]
    result = batch.grade_assignment(A, course_root, _options(course_root, work / "out", students, **extra))
    rows = {r["student"]: r for r in result.rows}
    assert set(rows) == set(students), sorted(rows)
    for student in HONEST:
        assert _grade(rows[student]) == _grade(alone[student]), (bad, student)
    bad_row = rows["z_bad"]
    assert bad_row["grader_error"] is None, (bad, bad_row["grader_error"])
    json.dumps(bad_row).encode("utf-8")  # encodable wherever it lands
    _check_reports(work / "out", rows)
    if kind == "zip" and what == "formula_name":  # the student's text is there, made harmless
        assert bad_row["reason"].startswith("=HYPERLINK("), bad_row["reason"]
        assert "'=HYPERLINK(" in (work / "out" / "grades.csv").read_text(encoding="utf-8")
    if kind == "text" and what == "html":
        feedback = (work / "out" / "feedback" / "z_bad.md").read_text(encoding="utf-8")
        assert "&lt;img src=x onerror=alert\\(1\\)&gt;" in feedback, feedback
    if kind == "zip" and what == "grader_metadata":  # the time never comes from the student's files
        assert bad_row["timestamp"] is None and "2000" not in str(bad_row["time_source"])
    if kind == "time":
        assert bad_row["timestamp"] is None or bad_row["timestamp"].startswith(str(what)[:4])


def test_the_command_exits_0_with_a_row_for_every_student(course_root: Path, tmp_path: Path) -> None:
    """The CLI as an instructor runs it, with a broken zip and a deeply nested notebook in the class."""
    import subprocess

    zips = tmp_path / "zips"
    zips.mkdir()
    base = [(n, d) for n, d in _released(course_root) if n != CONV] + [(CONV, _reference().encode())]
    _zip_with(ZIP_CLASSES["file_and_folder"](base), zips / "z_zip.zip")
    for student in HONEST:
        _zip_with(base, zips / f"{student}.zip")
    env = {**os.environ, "CNNLAB_COURSE_ROOT": str(course_root), "CNNLAB_COURSE_SECRET": "cli-secret"}
    cmd = [sys.executable, "-m", "autograder", "grade", A, "--zips", str(zips), "--no-gradebook", "--quiet",
           "--out", str(tmp_path / "out"), "--workers", "2"]  # fmt: skip
    run = subprocess.run(
        cmd, capture_output=True, text=True, env=env, timeout=600, cwd=Path(__file__).parent.parent
    )
    assert run.returncode == 0, run.stderr[-2000:]
    rows = list(csv.DictReader(open(tmp_path / "out" / "grades.csv", encoding="utf-8")))
    by = {r["student_id"]: r for r in rows}
    assert {"z_zip", *HONEST} <= set(by), sorted(by)
    assert "could not be unpacked" in by["z_zip"]["reason"] or "cannot be extracted" in by["z_zip"]["reason"]
    for student in HONEST:
        assert float(by[student]["total"]) == load_manifest()[A].total


def test_two_canvas_users_with_one_name_are_two_students(course_root: Path, tmp_path: Path) -> None:
    zips = tmp_path / "zips"
    zips.mkdir()
    base = [(n, d) for n, d in _released(course_root) if n != CONV]
    _zip_with(base + [(CONV, _reference().encode())], zips / "sam_1111_5_work.zip")
    _zip_with(base + [(CONV, _raising("wrong"))], zips / "sam_2222_6_work.zip")
    result = batch.grade_assignment(
        A, course_root, _options(course_root, tmp_path / "out", ["sam-1111", "sam-2222"], zips=zips)
    )
    rows = {r["student"]: r for r in result.rows}
    assert set(rows) == {"sam-1111", "sam-2222"}, sorted(rows)
    top = load_manifest()[A].total
    assert rows["sam-1111"]["total"] == top and rows["sam-2222"]["total"] < top
    from autograder.lms import read_canvas_ids

    ids = read_canvas_ids(course_root)
    assert str(ids["sam-1111"]) == "1111" and str(ids["sam-2222"]) == "2222"
