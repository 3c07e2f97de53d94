"""The batch grader, stage by stage: :func:`grade_assignment`.

1. intake (:mod:`.intake`): LMS zips into ``submitted/``, submission times, the student's files;
2. store (:mod:`.store`): cache keys; a result whose key matches is not graded again;
3. engine (:mod:`.engine`): runs the jobs (a local process pool by default);
4. judge (:mod:`.judge`): each job's tasks run in the sandbox (:mod:`autograder.sandbox`), then are
   scored against the reference; the row is saved at once (atomic, resumable);
5. gradebook (:mod:`.gradebook`) and reports (:mod:`.reports`): nbgrader's database and the
   ``autograded/`` notebooks, the CSV, the feedback files and the class summary.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder import database, deadlines, sandbox
from autograder.batch import store
from autograder.batch.engine import Preload, make_engine
from autograder.batch.gradebook import write_autograded, write_gradebook
from autograder.batch.intake import (
    Intake,
    intake_zips,
    list_submissions,
    read_submission,
    read_times,
    submission_time,
)
from autograder.batch.judge import Job, Release, TaskJob
from autograder.batch.notebooks import check_notebooks
from autograder.batch.reports import Progress, write_reports
from autograder.errors import CnnlabError
from autograder.lean_imports import decline_unused
from autograder.manifest import Assignment, load_manifest
from autograder.records import Status
from autograder.reference import load_reference
from autograder.safe_text import clean_text

TEST_DELAY_ENV = "CNNLAB_BATCH_TEST_DELAY"  # tests only: seconds to wait after saving each result


class BatchError(CnnlabError):
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
    times: Path | None = None  # a submission-times CSV exported from the LMS (with zips)
    scheduler: str | None = None  # a Dask scheduler address, "local", or None for the local pool
    allow_unconfined: bool = False  # run student code even where no sandbox is possible
    progress: bool = True
    log: Callable[[str], None] = print


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


def grade_assignment(name: str, root: Path, options: Options) -> BatchResult:
    """Grade every submission of assignment ``name`` in course ``root``, stage by stage."""
    t0 = time.monotonic()
    decline_unused()  # a second of imports nothing here uses (see autograder.lean_imports)
    log = options.log
    manifest = load_manifest()
    if name not in manifest:
        raise BatchError(f"unknown assignment {name!r}; the course has {', '.join(manifest)}")
    assignment = manifest[name]
    root = Path(root).resolve()
    out = Path(options.out or root / "batch" / name).resolve()
    store.prepare(out)
    mode = sandbox.sandbox_mode()
    log(f"sandbox: {mode.description}")
    for line in mode.advice:
        log(line)
    if not mode.confined and not options.allow_unconfined:
        raise BatchError(
            f"no sandbox on this machine ({mode.description}); install bubblewrap (Debian: apt-get install "
            "bubblewrap) or run on Linux >= 5.13 (Landlock), or pass --allow-unconfined to run student code "
            "with the grader's rights"
        )
    if options.gradebook:
        url = database.db_url(root)
        try:
            database.check(url)
        except database.DatabaseError as err:
            raise BatchError(str(err)) from None
        log(f"gradebook: {database.describe(url)}")
    # 1. intake
    intakes: list[Intake] = []
    if options.zips:
        try:
            times = read_times(options.times) if options.times else None
        except (OSError, ValueError) as err:  # the instructor's file, not a student's: stop, in one line
            raise BatchError(f"the submission-times CSV cannot be used: {err}") from None
        intakes = intake_zips(options.zips, root, assignment, times=times)
        refused = [i for i in intakes if i.rejected]
        log(f"zips: {len(intakes) - len(refused)} unpacked into {root / 'submitted'}, {len(refused)} refused")
        for i in intakes:
            for text in ([i.rejected] if i.rejected else []) + i.notes:
                log(f"  {i.zip.name}: {text}")
    jobs, fixed = _jobs(name, root, assignment, options, intakes, log)
    # 2. the store: what is cached
    rows: dict[str, dict[str, Any]] = {}
    progress = Progress(len(jobs), options.progress)
    pending = []
    why: Counter[str] = Counter()
    for job in jobs:
        cached = None if options.force else store.load_cached(out, job.student, job.key)
        if cached is not None:
            rows[job.student] = cached
            progress.update(job.student, cached=True)
        else:
            pending.append(job)
            why["--force" if options.force else store.why_regraded(out, job.student, fixed)] += 1
    for reason, n in why.items():  # never regrade without saying why
        if reason != "new submission":
            log(f"{reason}: grading {n} submission{'s' if n != 1 else ''} again")
    # 3. the engine runs the judge (4) on each job, each in its own sandbox
    delay = float(os.environ.get(TEST_DELAY_ENV) or 0)
    preload = Preload(options.gradebook)
    engine = (
        make_engine(options.workers, preload, options.scheduler, log, options.allow_unconfined)
        if pending
        else None
    )
    if engine is not None:
        log(f"engine: {engine.description}")
    by_student = {job.student: job for job in pending}
    held: list[Job] = []  # time-limited beside other submissions: graded again alone before saving
    try:
        for row in engine.run(pending) if engine else ():
            if len(pending) > 1 and time_limited(row):
                held.append(by_student[row["student"]])
                continue
            _keep(out, row, rows, progress, fixed)
            if delay:
                time.sleep(delay)
        if held:
            n = len(held)
            log(f"{n} submission(s) hit a time limit while others were graded: grading each again alone")
        for job in held:  # one at a time: nothing else of this batch runs beside it
            for row in engine.run([job]):  # type: ignore[union-attr]
                row["problems"].append("graded again alone after hitting a time limit beside others")
                _keep(out, row, rows, progress, fixed)
    finally:
        if engine is not None:
            engine.close()
    ordered = [rows[j.student] for j in jobs]
    preload.join()
    policy, extensions = deadlines.load_policy(), deadlines.load_extensions(root)
    for row in ordered:  # from the raw score every time: a penalty is never applied twice
        extra = extensions.get((row["student"], name), 0.0)
        try:
            row.update(
                deadlines.late_fields(row["total"], row.get("timestamp"), assignment.due, extra, policy)
            )
        except Exception:  # noqa: BLE001 (a time that does not parse: that student's note, no penalty)
            row.update(late_seconds=0.0, penalty=0.0, score=row["total"])
            row["problems"].append(
                f"the submission time {row.get('timestamp')!r} could not be read: no late penalty"
            )
    penalised = bool(assignment.due) and policy.method != "none"
    unmeasured = [
        r["student"] for r in ordered if "LATE" in str(r.get("time_source")) and not r.get("timestamp")
    ]
    for row in ordered if penalised else ():
        if row["student"] in unmeasured:
            row["problems"].append("marked late by the LMS, with no submission time: no late penalty applied")
    if unmeasured and penalised:  # never silent about lateness it could not measure
        log(
            f"warning: lateness not measured (marked LATE, no submission time; pass --times): "
            f"{', '.join(unmeasured)}"
        )
    # 5. the gradebook and the reports
    gb_problem = None
    if options.gradebook and ordered:
        try:
            gb_problem = write_gradebook(root, assignment, ordered)
            if gb_problem is None:
                subs = dict(list_submissions(root, name, options.students))
                for row in ordered:
                    if row.get("grader_error"):
                        continue
                    try:
                        write_autograded(root, assignment, row, subs.get(row["student"]))
                    except Exception as exc:  # noqa: BLE001 (one broken notebook never stops the others)
                        row["problems"].append(f"autograded/ notebooks not written ({type(exc).__name__})")
        except Exception as exc:
            gb_problem = f"the gradebook could not be written ({type(exc).__name__}: {exc})"
        if gb_problem:
            log(f"warning: {gb_problem}")
    write_reports(out, assignment, ordered)
    graded = len(pending)
    return BatchResult(
        name, ordered, out, graded, len(jobs) - graded, time.monotonic() - t0, gb_problem, intakes
    )


def time_limited(row: dict[str, Any]) -> bool:
    """Whether a time limit decided any task of the row (its verdict could depend on what ran beside it)."""
    return any(t.get("status") in (Status.TIMEOUT, Status.BUDGET) for t in row.get("tasks", {}).values())


def _keep(
    out: Path, row: dict[str, Any], rows: dict[str, dict[str, Any]], progress: Progress, fixed: str
) -> None:
    """A graded row: saved (unless the grader failed: retried next run), and counted."""
    row["cache_parts"] = json.loads(fixed)  # what the next run compares, to say why it regrades
    if not row.get("grader_error"):
        store.save_result(out, row)
    rows[row["student"]] = row
    progress.update(row["student"], failed=bool(row.get("grader_error")))


def _jobs(
    name: str,
    root: Path,
    assignment: Assignment,
    options: Options,
    intakes: list[Intake],
    log: Callable[[str], None],
) -> tuple[list[Job], str]:
    """One job per submitted folder and per refused zip, with its cache key; and the key's part
    that every job shares (:func:`store.fixed_key`)."""
    subs = list_submissions(root, name, options.students)
    rejected = {
        i.student: i.rejected
        for i in intakes
        if i.rejected and i.student and (options.students is None or i.student in options.students)
    }
    tasks = load_reference().tasks.TASKS
    task_jobs = [
        TaskJob(t, tasks[t].module, tasks[t].function, float(p)) for t, p in assignment.points.items()
    ]
    release_pkg = store.release_package(root, name)
    drift = store.release_drift(release_pkg)
    if drift:
        log(
            f"warning: {release_pkg} is older than solutions/cnnlab ({', '.join(drift)} differ): "
            "release the course again, or provided code may differ from what nbgrader's kernel runs"
        )
    release_nbs = store.release_notebooks(root, assignment)
    fixed = store.fixed_key(release_pkg, [t.key_part() for t in task_jobs], options.limits)
    release = Release.read(release_pkg)
    grader = store.grader_hash()
    zip_notes = {i.student: i.notes for i in intakes if i.student}
    jobs = []
    for student, sub in subs + [(s, None) for s in sorted(rejected) if s not in {x for x, _ in subs}]:
        if sub is not None and student in rejected:
            sub = None  # a refused zip replaces nothing but is still reported
        name_problem = None
        if clean_text(student) != student:  # a folder name that is not UTF-8: its own row, never a crash
            name_problem = f"the folder name {clean_text(student)!r} is not valid UTF-8: rename it"
            student, sub = clean_text(student), None
        seeds = store.student_seeds(root, student, assignment.tasks)
        job = Job(
            student=student,
            assignment=name,
            key="",
            seeds=seeds,
            tasks=task_jobs,
            files={},
            problems=list(zip_notes.get(student, [])),
            rejected=name_problem or rejected.get(student),
            timestamp=None,
            time_source="none",
            limits=options.limits,
            release=release,
            grader=grader,
        )
        try:  # one submission never stops the class: what cannot be read is its own reason
            _read_into(job, root, assignment, sub, release_nbs, fixed, job.rejected)
        except Exception as exc:  # noqa: BLE001
            job.files = {}
            job.rejected = f"the submission could not be read ({type(exc).__name__}: {clean_text(str(exc))})"
            job.key = store.job_key(fixed, None, seeds, job.rejected)
        jobs.append(job)
    return jobs, fixed


def _read_into(
    job: Job,
    root: Path,
    assignment: Assignment,
    sub: Path | None,
    release_nbs: dict[str, Path],
    fixed: str,
    rejected: str | None,
) -> None:
    """A job's files, problems, submission time and cache key, from the submitted folder."""
    files, problems = read_submission(sub, list(assignment.files)) if sub else ({}, [])
    job.files = files
    job.problems += check_notebooks(sub, assignment, release_nbs) + problems
    job.timestamp, job.time_source = submission_time(root, job.student, assignment.name, sub)
    job.key = store.job_key(fixed, sub, job.seeds, rejected)
