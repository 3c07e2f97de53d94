"""The nbgrader course: release, sample submissions, autograding and the grade table.

``python -m autograder <command>`` (see :mod:`autograder.__main__`) drives these steps through the
real ``nbgrader`` commands, run in ``autograder/`` so that ``autograder/nbgrader_config.py`` applies:

1. :func:`release`: assemble ``<root>/source/<assignment>/`` from ``solutions/notebooks`` and the
   generated ``cnnlab/`` package (built in memory by :mod:`tools.build`), ``nbgrader
   generate_assignment``, then :func:`check_release` proves that nothing of the solutions reached
   ``<root>/release/``.
2. :func:`fabricate`: write ``<root>/submitted/<student>/<assignment>/`` for the sample students
   described in ``autograder/samples/<student>.toml``.
3. :func:`autograde`, :func:`generate_feedback`, :func:`export_csv`, :func:`grade_table`.

``<root>`` is :func:`course_root`: ``autograder/course`` (gitignored), or ``$CNNLAB_COURSE_ROOT``.
"""

from __future__ import annotations

import csv
import re
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autograder import database, provenance
from autograder.manifest import Assignment, ManifestError, load_manifest
from autograder.markers import LEAK_MARKERS
from autograder.messages import text_table
from autograder.nbgrader_run import (
    AUTOGRADER_DIR,
    REPO,
    SOLUTIONS_NB,
    SOLUTIONS_PKG,
    CourseError,
    NbgraderRun,
    _require,
    course_root,
    db_url,
    filter_output,
    nbgrader_env,
    run_nbgrader,
    summarize,
)
from autograder.release import (
    COURSE_MARKER,
    assemble_source,
    build_release,
    built_package,
    check_release,
    committed_release_problems,
    prepare_root,
    release,
    secret_lines,
    set_due_dates,
)
from autograder.sample_students import (
    SAMPLES_DIR,
    STUDENTS,
    TIMESTAMP,
    Sample,
    fabricate,
    load_sample,
    reference_variant,
)


@dataclass
class GradeRun:
    student: str
    assignments: list[str]
    seconds: float
    ok: bool
    problems: list[str]


def submitted_students(root: Path) -> list[str]:
    folder = Path(root) / "submitted"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def autograde(
    root: Path | None = None, students: Sequence[str] | None = None, verbose: bool = False, log=print
) -> list[GradeRun]:
    """``nbgrader autograde`` every submission, one command per student (all assignments at once).

    A failing submission (a notebook that is not JSON, say) is reported and does not stop the others.
    """
    root = Path(root or course_root())
    students = submitted_students(root) if students is None else list(students)
    runs = []
    for student in students:
        assignments = sorted(p.name for p in (root / "submitted" / student).iterdir() if p.is_dir())
        if not assignments:
            continue
        run = run_nbgrader(["autograde", "*", "--student", student, "--force"], root, verbose)
        runs.append(GradeRun(student, assignments, run.seconds, run.ok, run.problems()))
        per = run.seconds / len(assignments)
        status = "ok" if run.ok else f"nbgrader exit {run.returncode}"
        log(
            f"  autograded {student:<8} {len(assignments)} submissions in {run.seconds:5.1f} s "
            f"({per:.1f} s per submission) [{status}]"
        )
        if not run.ok:
            for line in summarize(run.problems())[:20]:
                log(f"      {line}")
    return runs


def autograde_all(root: Path | None = None, verbose: bool = False) -> NbgraderRun:
    """``nbgrader autograde`` every submission of every student in ONE command (one start-up).

    Faster than :func:`autograde` (the tests use it); :func:`failed_submissions` says what failed.
    """
    root = Path(root or course_root())
    return run_nbgrader(["autograde", "*", "--force"], root, verbose)


_FAILED = re.compile(r"There was an error processing assignment '([^']+)' for student '([^']+)'")


def failed_submissions(run: NbgraderRun) -> set[tuple[str, str]]:
    """``{(student, assignment)}`` that nbgrader reported it could not autograde in ``run``."""
    return {(m.group(2), m.group(1)) for m in _FAILED.finditer(run.output)}


def generate_feedback(root: Path | None = None, verbose: bool = False) -> NbgraderRun:
    """``nbgrader generate_feedback`` for every autograded submission."""
    root = Path(root or course_root())
    return run_nbgrader(["generate_feedback", "*", "--force"], root, verbose)


def export_csv(root: Path | None = None, verbose: bool = False) -> Path:
    """``nbgrader export`` to ``<root>/grades.csv``; returns that path."""
    root = Path(root or course_root())
    path = root / "grades.csv"
    _require(run_nbgrader(["export", "--to", str(path)], root, verbose), "export")
    return path


def read_csv_totals(path: Path) -> dict[tuple[str, str], float]:
    """``{(student, assignment): score}`` from an ``nbgrader export`` CSV."""
    with open(path, newline="") as fh:
        return {(row["student_id"], row["assignment"]): float(row["score"]) for row in csv.DictReader(fh)}


NOT_SUBMITTED = "-"  # table mark: the assignment was not submitted


NOT_GRADED = "?"  # table mark: nbgrader recorded no score (cell deleted, notebook unreadable): counts 0


@dataclass
class Table:
    """Points per task per student, from the gradebook.

    ``rows[student][task]`` is the task's points, or :data:`NOT_SUBMITTED` / :data:`NOT_GRADED`.
    """

    tasks: list[str]  # task IDs, in manifest order
    max_points: dict[str, float]
    rows: dict[str, dict[str, float | str]]
    penalties: dict[str, float] = field(default_factory=dict)  # late penalty per student (all assignments)
    #: which grader wrote each submission's scores: ``graders[student][assignment]`` is
    #: ``provenance.NBGRADER`` or ``provenance.BATCH`` (absent: nothing graded)
    graders: dict[str, dict[str, str]] = field(default_factory=dict)

    def points(self, student: str, task: str) -> float:
        """The task's points, 0 when it was not submitted or not graded."""
        value = self.rows[student][task]
        return value if isinstance(value, float) else 0.0

    def total(self, student: str) -> float:
        return round(sum(self.points(student, t) for t in self.tasks), 6)

    def penalty(self, student: str) -> float:
        """The late penalty the gradebook holds for the student (0: on time, or no policy)."""
        return round(self.penalties.get(student, 0.0), 6)

    def score(self, student: str) -> float:
        """The total after the late penalty: the number the LMS export carries."""
        return round(max(0.0, self.total(student) - self.penalty(student)), 6)

    def format(self) -> str:
        """A text table: one row per student, one column per task, and the total."""
        head = ["student", *self.tasks, "total", "penalty", "score"]
        top = _fmt(sum(self.max_points.values()))
        maxrow = ["(max)", *(_fmt(self.max_points[t]) for t in self.tasks), top, "", top]
        body = [
            [
                s,
                *(_fmt(r[t]) for t in self.tasks),
                _fmt(self.total(s)),
                _fmt(self.penalty(s)),
                _fmt(self.score(s)),
            ]
            for s, r in self.rows.items()
        ]
        text = [text_table(head, body, maxrow)]
        marks = {v for r in self.rows.values() for v in r.values() if isinstance(v, str)}
        if NOT_SUBMITTED in marks:
            text.append(f"{NOT_SUBMITTED} not submitted")
        if NOT_GRADED in marks:
            text.append(
                f"{NOT_GRADED} no score: nbgrader could not grade this notebook (not readable) and flagged "
                "it for manual grading; counted as 0"
            )
        text += self.graded_by()
        return "\n".join(text)

    def graded_by(self) -> list[str]:
        """Which grader wrote the scores: one line if one grader wrote them all, else one per grader
        naming the submissions (``student assignment``) it wrote."""
        by: dict[str, list[str]] = {}
        for student, assignments in self.graders.items():
            for assignment, grader in assignments.items():
                by.setdefault(grader, []).append(f"{student} {assignment}")
        if len(by) == 1:
            return [f"scores written by: {next(iter(by))} (every submission)"]
        return [f"scores written by {grader}: {', '.join(subs)}" for grader, subs in sorted(by.items())]


def _fmt(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return f"{round(value, 2):g}"


def grade_table(
    root: Path | None = None,
    students: Sequence[str] | None = None,
    manifest: dict[str, Assignment] | None = None,
) -> Table:
    """Points per task (the score of check cell ``task<X>_<Y>``) per student, from nbgrader's gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    root = Path(root or course_root())
    manifest = load_manifest() if manifest is None else manifest
    tasks = [t for a in manifest.values() for t in a.tasks]
    max_points = {t: float(p) for a in manifest.values() for t, p in a.points.items()}
    rows: dict[str, dict[str, float | str]] = {}
    penalties: dict[str, float] = {}
    graders: dict[str, dict[str, str]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's SAWarning noise
        with Gradebook(db_url(root), "cnnlab") as gb:
            for student in [s.id for s in gb.students] if students is None else students:
                row: dict[str, float | str] = {}
                for name, assignment in manifest.items():
                    try:
                        submission = gb.find_submission(name, student)
                    except MissingEntry:
                        row.update(dict.fromkeys(assignment.tasks, NOT_SUBMITTED))
                        continue
                    late = float(submission.late_submission_penalty or 0.0)
                    penalties[student] = penalties.get(student, 0.0) + late
                    grader = provenance.grader_of(root, student, name, assignment.notebooks)
                    if grader:
                        graders.setdefault(student, {})[name] = grader
                    for task in assignment.tasks:
                        grade_id = "task" + task.replace(".", "_")
                        row[task] = NOT_GRADED
                        for nb in assignment.notebook_ids:
                            try:
                                grade = gb.find_grade(grade_id, nb, name, student)
                            except MissingEntry:
                                continue
                            if grade.auto_score is not None or grade.manual_score is not None:
                                row[task] = float(grade.score)
                rows[student] = row
    return Table(tasks, max_points, rows, penalties=penalties, graders=graders)


def feedback_files(root: Path) -> list[Path]:
    return sorted((Path(root) / "feedback").rglob("*.html"))


DEMO_SECRET = "cnnlab-demo-secret: sample students only, never for a real course"


def use_fixed_secret(root: Path) -> None:
    """Give the course root a fixed course secret (:mod:`autograder.secret`), so that the sample
    students' hidden cases, and so the demo's table, are the same on every run. A real course root
    gets a random secret on first use instead."""
    from autograder.secret import GRADERS, secret_path

    for grader in GRADERS:  # one value for both paths here: the demo compares their totals side by side
        path = secret_path(root, grader)
        path.write_text(DEMO_SECRET + "\n")
        path.chmod(0o600)


def demo_batch(root: Path, manifest: dict[str, Assignment], log=print) -> dict[str, float]:
    """The batch grader (:mod:`autograder.batch`) on every assignment of the demo's course, without
    writing the gradebook (nbgrader's scores stay there); the total per student."""
    from autograder.batch import BatchError, Options, grade_assignment

    totals: dict[str, float] = dict.fromkeys(STUDENTS, 0.0)
    for name in manifest:
        options = Options(gradebook=False, force=True, progress=False, log=lambda s: None)
        try:
            result = grade_assignment(name, root, options)
        except BatchError as err:
            log(f"{name}: the batch grader could not run: {err}")
            continue
        for row in result.rows:
            totals[row["student"]] = totals.get(row["student"], 0.0) + float(row["total"])
        errors = [r["student"] for r in result.grader_errors]
        log(
            f"graded {name}: {len(result.rows)} submissions in {result.seconds:.1f} s"
            + (f" (grader errors: {', '.join(errors)})" if errors else "")
        )
    return totals


def compare_totals(table: Table, batch_totals: dict[str, float]) -> str:
    """Each student's total from nbgrader and from the batch grader, side by side."""
    head = ["student", "nbgrader", "batch grader"]
    body = [[s, _fmt(table.total(s)), _fmt(batch_totals.get(s, 0.0))] for s in table.rows]
    top = _fmt(sum(table.max_points.values()))
    lines = ["Total points per student, by each grader:", "", text_table(head, body, ["(max)", top, top])]
    differ = [s for s in table.rows if abs(table.total(s) - batch_totals.get(s, 0.0)) > 1e-6]
    if not differ:
        lines.append("both graders agree on every student")
        return "\n".join(lines)
    lines.append(f"the graders disagree on: {', '.join(differ)} (see each grader's feedback)")
    for student in differ:
        ungraded = [t for t in table.tasks if table.rows[student][t] == NOT_GRADED]
        if ungraded:
            lines.append(
                f"  {student}: nbgrader left {', '.join(ungraded)} for manual grading ({NOT_GRADED}, an "
                "unreadable notebook); the batch grader graded the code in cnnlab/"
            )
    return "\n".join(lines)


def demo(root: Path | None = None, verbose: bool = False, log=print) -> Table:
    """Release, fabricate the sample students, autograde with nbgrader, feedback, export, the table;
    then the batch grader on the same submissions, and both graders' totals side by side."""
    root = Path(root or course_root())
    t0 = time.perf_counter()
    manifest = load_manifest()
    log(f"course root: {root}")
    url = db_url(root)
    try:
        database.check(url)
    except database.DatabaseError as err:
        raise CourseError(str(err)) from None
    log(f"gradebook: {database.describe(url)}")
    others = sorted(set(submitted_students(root)) - set(STUDENTS))
    if others:
        raise CourseError(
            f"{root} holds submissions of {others}: the demo starts from an empty course root and would "
            "delete them (and the course secret). Run it elsewhere: "
            "CNNLAB_COURSE_ROOT=/tmp/cnnlab-demo python -m autograder demo"
        )
    prepare_root(root, fresh=True)
    use_fixed_secret(root)
    log("[1/6] release: assemble source/, nbgrader generate_assignment, release check")
    release(root, manifest, verbose, log=lambda s: log(f"  {s}"))
    log(f"[2/6] fabricate sample submissions: {', '.join(STUDENTS)}")
    for student in fabricate(root, STUDENTS, manifest):
        log(f"  {student:<8} {load_sample(student).description}")
    log("[3/6] nbgrader autograde (one command per student, all assignments)")
    runs = autograde(root, STUDENTS, verbose, log)
    log("[4/6] nbgrader generate_feedback")
    fb = generate_feedback(root, verbose)
    if not fb.ok:
        log(f"  generate_feedback reported errors (exit {fb.returncode}):")
        for line in summarize(fb.problems())[:20]:
            log(f"      {line}")
    log("[5/6] nbgrader export")
    csv_path = export_csv(root, verbose)
    table = grade_table(root, STUDENTS, manifest)
    log("")
    log("Points per task (rows: students; columns: task IDs), from the nbgrader gradebook:")
    log("")
    log(table.format())
    log("")
    totals = read_csv_totals(csv_path)
    for student in STUDENTS:
        csv_total = sum(v for (s, _), v in totals.items() if s == student)
        if abs(csv_total - table.total(student)) > 1e-9:
            log(f"warning: {student}: the exported CSV total {csv_total:g} differs from the table")
    log("[6/6] the batch grader (the path for untrusted code: each submission sandboxed), next to nbgrader")
    batch_totals = demo_batch(root, manifest, log=lambda s: log(f"  {s}"))
    log("")
    log(compare_totals(table, batch_totals))
    log("")
    graded = [r for r in runs if r.assignments]
    n_sub = sum(len(r.assignments) for r in graded)
    secs = sum(r.seconds for r in graded)
    log(
        f"autograde: {n_sub} submissions in {secs:.0f} s, {secs / max(n_sub, 1):.1f} s per submission "
        "(one nbgrader start-up per student included)"
    )
    log(f"grades CSV (nbgrader export): {csv_path}")
    log(f"batch grader: {root / 'batch'}/<assignment>/grades.csv, feedback/<student>.md, summary.md")
    log(
        f"feedback HTML: {root / 'feedback'}/<student>/<assignment>/<notebook>.html "
        f"({len(feedback_files(root))} files)"
    )
    log(f"demo finished in {time.perf_counter() - t0:.0f} s")
    return table


__all__ = [
    "AUTOGRADER_DIR",
    "COURSE_MARKER",
    "LEAK_MARKERS",
    "REPO",
    "SAMPLES_DIR",
    "SOLUTIONS_NB",
    "SOLUTIONS_PKG",
    "STUDENTS",
    "TIMESTAMP",
    "CourseError",
    "ManifestError",
    "NbgraderRun",
    "Sample",
    "assemble_source",
    "autograde",
    "build_release",
    "built_package",
    "check_release",
    "committed_release_problems",
    "course_root",
    "db_url",
    "demo",
    "export_csv",
    "fabricate",
    "filter_output",
    "generate_feedback",
    "grade_table",
    "load_sample",
    "nbgrader_env",
    "prepare_root",
    "reference_variant",
    "release",
    "run_nbgrader",
    "secret_lines",
    "set_due_dates",
    "summarize",
]
