"""Stage 4, the judge: one submission's tasks run in the sandbox, then scored against the reference.

:func:`grade_job` is what an engine's worker calls. It draws each task's hidden cases from the
student's seeds (:func:`autograder.cases.task_inputs`), runs the student's functions on them in a
fresh sandbox (:class:`autograder.sandbox.Sandbox`: only data comes back), and scores what came back
with :func:`autograder.cases.grade_runs`, the code nbgrader's hidden ``grade_task`` uses, so that
both graders give honest submissions the same points.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autograder import cases, messages, sandbox
from autograder.batch import store
from autograder.batch.store import GRADER_VERSION
from autograder.records import Status, SubmissionResult, TaskResult
from autograder.reference import load_reference
from autograder.safe_text import clean


@dataclass(frozen=True)
class TaskJob:
    """One task of a job: what to call in the student's package, and what it is worth."""

    task_id: str  # e.g. "2.1"
    module: str  # the student's module, e.g. "conv"
    function: str  # e.g. "conv2d_forward"
    points: float  # the task's maximum, from autograder/assignments.toml

    def key_part(self) -> list[Any]:
        """What the cache key records of the task (:func:`autograder.batch.store.fixed_parts`)."""
        return [self.task_id, self.module, self.function, self.points]


@dataclass
class Job:
    """One submission to grade: plain data only (it may travel to another process or machine).

    ``files`` holds the student's editable files that could be read (path -> bytes); ``problems``
    what the client already found wrong (missing files, notebooks, the zip). ``rejected`` is why
    there is nothing to grade (a refused zip), else None."""

    student: str
    assignment: str
    key: str
    seeds: dict[str, int]
    tasks: list[TaskJob]
    files: dict[str, bytes]
    problems: list[str]
    rejected: str | None
    timestamp: str | None
    time_source: str  # where the time came from (the LMS, nbgrader's exchange, none)
    limits: sandbox.Limits
    release: Release  # the released cnnlab/ the sandbox provides (read-only)
    grader: str = ""  # the client's grader hash: a worker running other code refuses the job


@dataclass(frozen=True)
class Release:
    """The released ``cnnlab/`` package as bytes (it travels with the jobs: no shared file system)."""

    files: tuple[tuple[str, bytes], ...]
    digest: str

    @classmethod
    def read(cls, folder: Path) -> Release:
        found = [*Path(folder).glob("*"), *Path(folder).glob("*/*")]  # the package and its _internal/
        paths = sorted(p.relative_to(folder).as_posix() for p in found if p.suffix in (".py", ".json"))
        files = tuple((rel, (Path(folder) / rel).read_bytes()) for rel in paths)
        h = hashlib.sha256()
        for name, data in files:
            h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
        return cls(files, h.hexdigest())

    def folder(self) -> Path:
        """The package on this machine's disk, read-only to everyone but its owner (made once per
        content, under the system's temporary folder)."""
        base = Path(tempfile.gettempdir()) / f"cnnlab-release-{self.digest[:16]}-{os.getuid()}"
        target = base / "cnnlab"
        if (base / ".complete").is_file():
            return target
        staging = Path(tempfile.mkdtemp(prefix=".cnnlab-release-", dir=tempfile.gettempdir()))
        (staging / "cnnlab").mkdir()
        for name, data in self.files:
            (staging / "cnnlab" / name).parent.mkdir(mode=0o755, exist_ok=True)
            (staging / "cnnlab" / name).write_bytes(data)
            (staging / "cnnlab" / name).chmod(0o644)
        for folder in [staging / "cnnlab", *(staging / "cnnlab").glob("*")]:
            if folder.is_dir():
                folder.chmod(0o755)
        (staging / ".complete").write_text(self.digest)
        staging.chmod(0o755)
        try:
            os.rename(staging, base)
        except OSError:  # another worker made it first
            shutil.rmtree(staging, ignore_errors=True)
        return target


_WORKER = {"slot": 0, "owns_children": False}
OWN = ":own"  # the suffix of a backward task run on the student's own cache
SLOW_ENV = "CNNLAB_JUDGE_TEST_DELAY"  # tests only: seconds each job waits before grading


def init_worker(slot: int) -> None:
    """In a worker process of an engine: its slot (one sandbox user id / cgroup per slot), and the
    right to kill its stray children (they can only be sandboxes)."""
    _WORKER.update(slot=slot, owns_children=True)
    sandbox.die_with_parent()
    sandbox.become_subreaper()
    load_reference()


def _outcome(task_id: str, function: str, value: Any, verdicts: Any) -> Any:
    """A child's raw value as a ``verdicts.Outcome``, exactly as ``verdicts.call`` would make it."""
    if isinstance(value, sandbox.Raised):
        return verdicts.Raised(value.type, value.message)
    if isinstance(value, sandbox.Unreadable):
        return verdicts.Malformed(f"{function} returned something the grader cannot read ({value.why})")
    try:
        return verdicts.split_result(task_id, value)
    except Exception as exc:
        return verdicts.Malformed(
            f"{function} returned something the grader cannot read ({type(exc).__name__})"
        )


def grade_job(job: Job) -> SubmissionResult:
    """Grade one submission; returns its result row (see :mod:`autograder.batch.store`).

    The inputs of each task are drawn from the student's seeds, the student's functions run on them
    in the sandbox stage, and the outputs are judged here, outside the sandbox, with the reference."""
    start = time.monotonic()
    if os.environ.get(SLOW_ENV):
        time.sleep(float(os.environ[SLOW_ENV]))  # tests only: a worker to kill while it grades
    ref = load_reference()
    verdicts = cases.verdicts_module(ref)
    row = _new_row(job)
    if job.grader and job.grader != store.grader_hash():
        row["grader_error"] = "this worker runs another version of the grader (install the client's there)"
        return _finish(row, job, 0.0)
    outcomes = None
    own_outcomes: dict[str, sandbox.TaskOutcome] = {}
    try:
        case_lists = {}
        with verdicts.quiet():
            for task in job.tasks:
                rng = cases.task_rng(task.task_id, job.seeds[task.task_id])
                case_lists[task.task_id] = cases.task_inputs(task.task_id, rng)
        if job.rejected:
            row["problems"].append(job.rejected)
        else:
            specs = [
                sandbox.TaskSpec(
                    t.task_id,
                    t.module,
                    t.function,
                    [c.args for c in case_lists[t.task_id]],
                    case_lists[t.task_id][0].forward if case_lists[t.task_id] else None,
                    [c.forward_args for c in case_lists[t.task_id]],
                )
                for t in job.tasks
            ]
            tasks = ref.tasks.TASKS
            own = {m: [t.function for t in tasks.values() if t.module == m] for m in cases.ISOLATED_MODULES}
            modules = sorted({t.module for t in job.tasks} | {Path(f).stem for f in job.files})
            # after the tasks, each backward task again on the cache of the student's own forward (its
            # outcome counts only where it is better; a crash there costs the tasks nothing)
            again = [
                dataclasses.replace(spec, task_id=spec.task_id + OWN, own_cache=True)
                for spec in specs
                if spec.forward
            ]
            box = sandbox.Sandbox(job.release.folder(), job.limits, slot=_WORKER["slot"])
            work = sandbox.Work(job.files, specs + again, own, modules, list(cases.ISOLATED_MODULES))
            everything, info = box.run(work)
            outcomes = everything[: len(specs)]
            own_outcomes = {o.task_id.removesuffix(OWN): o for o in everything[len(specs) :]}
            row["sandbox"] = {"children": info.get("children"), "hello": info.get("hello")}
        for i, task in enumerate(job.tasks):
            row["tasks"][task.task_id] = _grade_task(
                task,
                case_lists[task.task_id],
                None if outcomes is None else outcomes[i],
                own_outcomes.get(task.task_id),
                job,
                ref,
                verdicts,
            )
        errors = [t["error"] for t in row["tasks"].values() if t["status"] == Status.GRADER]
        if errors:
            row["grader_error"] = errors[0]
    except Exception as exc:  # the grader's own failure: reported, not cached, retried next run
        row["grader_error"] = f"{type(exc).__name__}: {exc}"
    finally:
        # bubblewrap's PID namespace dies with it (what is left to reap is bubblewrap's own); in the
        # fallback, a process still there was forked by the student's code
        if _WORKER["owns_children"] and sandbox.reap_orphans() and not sandbox.sandbox_mode().bwrap:
            row["problems"].append("your code left processes running: they were killed")
    return _finish(row, job, time.monotonic() - start)


def _runs(task_id: str, function: str, outcome: sandbox.TaskOutcome, verdicts: Any) -> list[cases.CaseRun]:
    runs = []
    for value, args_after in outcome.cases:
        after = args_after if isinstance(args_after, list) else ()
        runs.append(cases.CaseRun(_outcome(task_id, function, value, verdicts), tuple(after)))
    return runs


def _own_outcome(task_id: str, function: str, value: Any, after: Any, case: cases.Case, verdicts: Any) -> Any:
    """A backward's outcome on the cache of the student's own forward, or None: no forward, or the
    backward changed ``dout`` or what the forward was given (decided here, from the data the child
    sent back, never by code in the child)."""
    if value is None or not (isinstance(after, list) and len(after) == 2) or case.forward_args is None:
        return None
    try:
        unchanged = verdicts.same_values(after[0], case.args[0]) and verdicts.same_values(
            list(after[1]), list(case.forward_args)
        )
    except Exception:  # arguments replaced by objects that cannot even be compared
        return None
    return _outcome(task_id, function, value, verdicts) if unchanged else None


def _grade_task(
    task: TaskJob,
    case_list: list[cases.Case],
    outcome: sandbox.TaskOutcome | None,
    own_outcome: sandbox.TaskOutcome | None,
    job: Job,
    ref: Any,
    verdicts: Any,
) -> TaskResult:
    task_id, function, maximum = task.task_id, task.function, task.points
    n = len(case_list)
    runs: list[cases.CaseRun] = []
    status = Status.REJECTED if outcome is None else Status(outcome.status)
    first_line = None
    if outcome is None:
        result = cases.GradeResult(0.0, 0, n, [job.rejected or "nothing to grade"])
    elif status in (Status.IMPORT_ERROR, Status.MEMORY) and not outcome.cases:
        why = outcome.error or ""
        if status == Status.MEMORY:
            why += f"; the grader allows {job.limits.memory_mb} MB"
        result = cases.GradeResult(0.0, 0, n, [])
        first_line = messages.not_importable(task_id, function, why, maximum)
    elif status == Status.MISSING:
        result = cases.missing_function_result(task_id, n, outcome.error or "")
    elif status == Status.GRADER:
        result = cases.GradeResult(0.0, 0, n, [])
        first_line = messages.grader_failed(task_id, function, outcome.error or "", maximum)
    else:
        runs = _runs(task_id, function, outcome, verdicts)
        if own_outcome is not None and own_outcome.status == Status.OK:  # on the student's own cache
            owns = [
                _own_outcome(task_id, function, value, after, case, verdicts)
                for (value, after), case in zip(own_outcome.cases, case_list, strict=False)
            ]
            owns += [None] * (len(runs) - len(owns))
            runs = [cases.CaseRun(r.got, r.args_after, o) for r, o in zip(runs, owns, strict=True)]
        notes = []
        if status == Status.BUDGET:
            notes.append(cases.stopped_message(len(runs), n, job.limits.task_budget))
        elif status in (Status.TIMEOUT, Status.CRASHED, Status.PROTOCOL):
            notes.append(f"stopped after {len(runs)} of {n} cases: {outcome.error}")
        if any(isinstance(v, sandbox.Raised) and v.memory for v, _ in outcome.cases):
            status = Status.MEMORY if status == Status.OK else status
            notes.append(f"(the grader allows {job.limits.memory_mb} MB of memory)")
        result = cases.grade_runs(task_id, case_list, runs, ref, notes)
    points, lines = cases.task_report(task_id, result, maximum)
    if first_line is not None:
        lines = [first_line, *lines[1:]]
    raised = {r.got.type for r in runs if isinstance(r.got, verdicts.Raised)}
    summary = messages.summary(
        status,
        result.n_passed,
        result.n_total,
        function,
        result.mistakes,
        raised == {"NotImplementedError"},
        timeout=job.limits.timeout,
        memory_mb=job.limits.memory_mb,
    )
    return {
        "function": function,
        "points": points,
        "max": float(maximum),
        "passed": result.n_passed,
        "total": result.n_total,
        "status": str(status),
        "summary": "" if points >= maximum else summary,
        "messages": result.messages,
        "mistakes": result.mistakes,
        "report": lines,
        "seconds": round(outcome.seconds, 3) if outcome else 0.0,
        "error": outcome.error if outcome else None,
    }


def _finish(row: SubmissionResult, job: Job, seconds: float) -> SubmissionResult:
    tasks = row["tasks"]
    if job.tasks and len(tasks) < len(job.tasks):  # the grader failed half-way: zeros, reported
        for task in job.tasks:
            task_id, function, maximum = task.task_id, task.function, task.points
            tasks.setdefault(
                task_id,
                {
                    "function": function,
                    "points": 0.0,
                    "max": float(maximum),
                    "passed": 0,
                    "total": 0,
                    "status": str(Status.GRADER),
                    "summary": "grader error",
                    "messages": [],
                    "mistakes": [],
                    "report": [
                        messages.grader_failed(task_id, function, str(row.get("grader_error")), maximum)
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
    return clean(row)  # text from the submission is encodable wherever it lands


def _new_row(job: Job, grader_error: str | None = None) -> SubmissionResult:
    """A result row before grading: who, what, when, the problems the client found."""
    return {
        "student": job.student,
        "assignment": job.assignment,
        "key": job.key,
        "grader": GRADER_VERSION,
        "problems": list(job.problems),
        "tasks": {},
        "grader_error": grader_error,
        "timestamp": job.timestamp,
        "time_source": job.time_source,
    }


def error_row(job: Job, error: str) -> SubmissionResult:
    """The row of a job that could not be graded (not cached: retried by the next run)."""
    return _finish(_new_row(job, error), job, 0.0)
