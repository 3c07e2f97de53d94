"""The Dask engine: each submission is one task on a Dask distributed cluster.

``python -m autograder grade A --scheduler tcp://HOST:PORT`` (or ``$CNNLAB_DASK_SCHEDULER``);
``--scheduler local`` starts a :class:`distributed.LocalCluster` on this machine to try it. Without
the flag the local pool stays the default. Dask schedules; this module only submits and collects.

* No shared file system: a job carries the submission's files as bytes, the released package is
  scattered to the workers once, and the result row comes back to the client, which alone writes
  results, the gradebook and the reports (workers hold no database connection).
* A running Dask task cannot be cancelled: the task owns its sandbox and kills it at its own
  deadline (``--timeout``). The nanny's memory limit does not see a task's child processes: the
  limits live in the sandbox (RLIMIT_AS, the pids cgroup, the tmpfs).
* A lost worker (SIGKILL, a crashed machine) is an infrastructure failure: Dask reruns its tasks on
  another worker; a task that still fails (``KilledWorker``) gets a grader-error row, never a 0 and
  never a lost row: the next run grades it again.
* Keys include the submission's cache key (its files, seeds, the grader's hash), and tasks are
  submitted with ``pure=False``: identical submissions are never de-duplicated away.
* The dashboard binds 127.0.0.1 (``--scheduler local``); the link is printed.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from typing import Any

from autograder.batch.judge import Job, Release, error_row, grade_job

ENV = "CNNLAB_DASK_SCHEDULER"


def _grade_remote(job: Job, files: tuple[tuple[str, bytes], ...], digest: str) -> dict[str, Any]:
    """On a worker: the job with its release (scattered once), graded in the sandbox."""
    job.release = Release(files, digest)
    return grade_job(job)


class DaskEngine:
    """Jobs as Dask tasks on the cluster at ``address`` (``"local"``: a LocalCluster here)."""

    def __init__(self, address: str, workers: int = 0, log: Callable[[str], None] = print) -> None:
        from distributed import Client, LocalCluster

        self.cluster = None
        if address == "local":
            self.cluster = LocalCluster(
                n_workers=workers or 2,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
            )
            self.client = Client(self.cluster)
        else:
            self.client = Client(address, timeout="30s")
        self.log = log
        n = len(self.client.scheduler_info().get("workers", {}))
        link = self.client.dashboard_link
        self.description = f"Dask cluster at {self.client.scheduler.address}, {n} workers (dashboard {link})"

    def run(self, jobs: list[Job]) -> Iterator[dict[str, Any]]:
        from distributed import as_completed

        if not jobs:
            return
        release = jobs[0].release
        data = self.client.scatter(release.files, broadcast=True, hash=False)
        futures = {}
        for job in jobs:
            light = Job(**{**job.__dict__, "release": Release((), release.digest)})
            key = f"cnnlab-grade-{job.student}-{job.key[:16]}-{os.urandom(4).hex()}"
            future = self.client.submit(
                _grade_remote, light, data, release.digest, key=key, pure=False, retries=2
            )
            futures[future] = job
        for future in as_completed(futures):
            job = futures[future]
            try:
                yield future.result()
            except Exception as exc:  # KilledWorker, a lost connection: infrastructure, retried next run
                yield error_row(job, f"the cluster could not grade it ({type(exc).__name__}: {exc})"[:500])

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()
