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

import os
import time
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
from autograder.batch.judge import Job, Release
from autograder.batch.notebooks import check_notebooks
from autograder.batch.reports import Progress, write_reports
from autograder.errors import CnnlabError
from autograder.manifest import Assignment, load_manifest
from autograder.reference import load_reference

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
        times = read_times(options.times) if options.times else None
        intakes = intake_zips(options.zips, root, assignment, times=times)
        refused = [i for i in intakes if i.rejected]
        log(f"zips: {len(intakes) - len(refused)} unpacked into {root / 'submitted'}, {len(refused)} refused")
        for i in intakes:
            for text in ([i.rejected] if i.rejected else []) + i.notes:
                log(f"  {i.zip.name}: {text}")
    jobs = _jobs(name, root, assignment, options, intakes, log)
    # 2. the store: what is cached
    rows: dict[str, dict[str, Any]] = {}
    progress = Progress(len(jobs), options.progress)
    pending = []
    for job in jobs:
        cached = None if options.force else store.load_cached(out, job.student, job.key)
        if cached is not None:
            rows[job.student] = cached
            progress.update(job.student, cached=True)
        else:
            pending.append(job)
    # 3. the engine runs the judge (4) on each job, each in its own sandbox
    delay = float(os.environ.get(TEST_DELAY_ENV) or 0)
    preload = Preload(options.gradebook)
    engine = make_engine(options.workers, preload, options.scheduler, log) if pending else None
    if engine is not None:
        log(f"engine: {engine.description}")
    try:
        for row in engine.run(pending) if engine else ():
            if not row.get("grader_error"):
                store.save_result(out, row)
            rows[row["student"]] = row
            progress.update(row["student"], failed=bool(row.get("grader_error")))
            if delay:
                time.sleep(delay)
    finally:
        if engine is not None:
            engine.close()
    ordered = [rows[j.student] for j in jobs]
    preload.join()
    policy, extensions = deadlines.load_policy(), deadlines.load_extensions(root)
    for row in ordered:  # from the raw score every time: a penalty is never applied twice
        extra = extensions.get((row["student"], name), 0.0)
        row.update(deadlines.late_fields(row["total"], row.get("timestamp"), assignment.due, extra, policy))
    # 5. the gradebook and the reports
    gb_problem = None
    if options.gradebook and ordered:
        try:
            gb_problem = write_gradebook(root, assignment, ordered)
            if gb_problem is None:
                subs = dict(list_submissions(root, name, options.students))
                for row in ordered:
                    if not row.get("grader_error"):
                        write_autograded(root, assignment, row, subs.get(row["student"]))
        except Exception as exc:
            gb_problem = f"the gradebook could not be written ({type(exc).__name__}: {exc})"
        if gb_problem:
            log(f"warning: {gb_problem}")
    write_reports(out, assignment, ordered)
    graded = len(pending)
    return BatchResult(
        name, ordered, out, graded, len(jobs) - graded, time.monotonic() - t0, gb_problem, intakes
    )


def _jobs(
    name: str,
    root: Path,
    assignment: Assignment,
    options: Options,
    intakes: list[Intake],
    log: Callable[[str], None],
) -> list[Job]:
    """One job per submitted folder and per refused zip, with its cache key."""
    subs = list_submissions(root, name, options.students)
    rejected = {
        i.student: i.rejected
        for i in intakes
        if i.rejected and i.student and (options.students is None or i.student in options.students)
    }
    tasks = load_reference().tasks.TASKS
    task_rows = [(t, tasks[t].module, tasks[t].function, float(p)) for t, p in assignment.points.items()]
    release_pkg = store.release_package(root, name)
    drift = store.release_drift(release_pkg)
    if drift:
        log(
            f"warning: {release_pkg} is older than solutions/cnnlab ({', '.join(drift)} differ): "
            "release the course again, or provided code may differ from what nbgrader's kernel runs"
        )
    release_nbs = store.release_notebooks(root, assignment)
    fixed = store.fixed_key(release_pkg, task_rows, options.limits)
    release = Release.read(release_pkg)
    grader = store.grader_hash()
    zip_notes = {i.student: i.notes for i in intakes if i.student}
    jobs = []
    for student, sub in subs + [(s, None) for s in sorted(rejected) if s not in {x for x, _ in subs}]:
        if sub is not None and student in rejected:
            sub = None  # a refused zip replaces nothing but is still reported
        seeds = store.student_seeds(root, student, assignment.tasks)
        files, problems = read_submission(sub, list(assignment.files)) if sub else ({}, [])
        problems = list(zip_notes.get(student, [])) + check_notebooks(sub, assignment, release_nbs) + problems
        when, source = submission_time(sub)
        key = store.job_key(fixed, sub, seeds, rejected.get(student))
        jobs.append(
            Job(
                student=student,
                assignment=name,
                key=key,
                seeds=seeds,
                tasks=task_rows,
                files=files,
                problems=problems,
                rejected=rejected.get(student),
                timestamp=when,
                time_source=source,
                limits=options.limits,
                release=release,
                grader=grader,
            )
        )
    return jobs
