"""Stage 3, the engine: how jobs run. One interface, :class:`Engine`; today one implementation.

An engine takes :class:`~autograder.batch.judge.Job` records (plain data: the submission's files
travel as bytes) and yields one result row per job, in any order, as they finish. It never raises
for a job: a job it could not run comes back as a grader-error row (not cached, retried by the
next run). Only the caller writes results, the gradebook and the reports.

:class:`LocalPool` is the embedded default: a pool of forked worker processes on this machine. Each
worker grades one submission at a time with :func:`~autograder.batch.judge.grade_job`, which runs the
student's code in the sandbox stage (:mod:`autograder.sandbox`). Another engine (a cluster, say) is
one more class with the same ``run`` method, chosen in :func:`make_engine`.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from autograder.batch.judge import Job, error_row, grade_job, init_worker


class Engine(Protocol):
    """Runs jobs; yields a result row per job as each finishes (never raises for a job)."""

    description: str

    def run(self, jobs: list[Job]) -> Iterator[dict[str, Any]]: ...

    def close(self) -> None: ...


def cores() -> int:
    """The cores this process may run on."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def _init_worker(counter: Any) -> None:
    with counter.get_lock():
        slot = counter.value
        counter.value += 1
    init_worker(slot)


class Preload:
    """Imports ``nbgrader.api`` and ``nbformat`` (about a second) in a thread while the workers
    grade, at the lowest CPU priority. Started only once the workers are forked (forking while a
    thread imports could leave a module lock held in the child), joined before any later fork."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.thread: threading.Thread | None = None

    @staticmethod
    def _work() -> None:
        # at the lowest priority (a thread's nice value is its own, on Linux): the workers grade
        # first, and the import takes what CPU they leave
        with contextlib.suppress(OSError, AttributeError):
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)
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


class LocalPool:
    """Forked worker processes on this machine (``workers``: 0 for one per core).

    A worker that dies (it should not: student code runs in its own sandboxed child) breaks the
    pool: its jobs are retried one at a time, and a job that breaks a pool twice gets a
    grader-error row."""

    def __init__(self, workers: int = 0, preload: Preload | None = None) -> None:
        self.workers = workers or cores()
        self.preload = preload
        self.description = f"local pool of {self.workers} worker processes"

    def close(self) -> None:
        pass

    def run(self, jobs: list[Job]) -> Iterator[dict[str, Any]]:
        if not jobs:
            return
        context = mp.get_context("fork")
        counter = context.Value("i", 0)
        queue, tries = list(jobs), {id(j): 0 for j in jobs}
        while queue:
            batch, queue = queue, []
            single = any(tries[id(j)] for j in batch)
            for group in [[j] for j in batch] if single else [batch]:
                yield from self._run_group(group, single, context, counter, tries, queue)

    def _run_group(
        self,
        group: list[Job],
        single: bool,
        context: Any,
        counter: Any,
        tries: dict[int, int],
        queue: list[Job],
    ) -> Iterable[dict[str, Any]]:
        if self.preload is not None and self.preload.thread is not None:
            self.preload.join()  # never fork while another thread imports
        with ProcessPoolExecutor(
            max_workers=1 if single else min(self.workers, len(group)),
            mp_context=context,
            initializer=_init_worker,
            initargs=(counter,),
        ) as pool:
            futures = {pool.submit(grade_job, job): job for job in group}
            if self.preload is not None:
                self.preload.start()  # the workers exist now (fork context: all started at once)
            for future in as_completed(futures):
                job = futures[future]
                try:
                    yield future.result()
                except BrokenProcessPool:
                    tries[id(job)] += 1
                    if tries[id(job)] >= 2:
                        yield error_row(job, "the grading worker died twice on this submission")
                    else:
                        queue.append(job)
                except Exception as exc:
                    yield error_row(job, f"{type(exc).__name__}: {exc}")
        _sweep_cgroups()  # the workers have ended: a group of one that was killed is removed now


def _sweep_cgroups() -> None:
    """Remove the worker slots' control groups whose worker is gone (a worker ends by removing its
    own; one that was killed cannot)."""
    from autograder.sandbox import cgroups

    layout = cgroups.detect()
    if layout is not None:
        with contextlib.suppress(OSError):
            cgroups.sweep_stale(layout)


def make_engine(
    workers: int = 0,
    preload: Preload | None = None,
    scheduler: str | None = None,
    log: Any = print,
    allow_unconfined: bool = False,
) -> Engine:
    """The engine the batch grader uses (the one place to choose): a Dask cluster when a scheduler
    is given (``--scheduler`` or ``$CNNLAB_DASK_SCHEDULER``), else the local pool."""
    scheduler = scheduler or os.environ.get("CNNLAB_DASK_SCHEDULER") or None
    if scheduler:
        from autograder.batch.dask_engine import DaskEngine

        return DaskEngine(scheduler, workers, log, allow_unconfined)
    return LocalPool(workers, preload)
