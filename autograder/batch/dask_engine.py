"""The Dask engine: each submission is one task on a Dask distributed cluster.

``python -m autograder grade A --scheduler tcp://HOST:PORT`` (or ``$CNNLAB_DASK_SCHEDULER``);
``--scheduler local`` starts a :class:`distributed.LocalCluster` on this machine to try it. Without
the flag the local pool stays the default. Dask schedules; this module only checks, submits and
collects. ``docs/big-classes.md`` says how to start a cluster.

* What a cluster machine needs is the installed distribution (``pip install 'cnnlab[grader,dask]'``):
  no checkout, no ``PYTHONPATH``, no working folder. The task is :func:`autograder.remote.grade`,
  which the scheduler unpickles too (it imports nothing of the course); the job travels pickled as
  bytes, and the release *and the reference* (:class:`autograder.reference.ReferenceFiles`: the
  judge computes the expected outputs on the worker) are scattered to every worker once.
* Before any job is submitted, :meth:`DaskEngine.check` runs a probe on the scheduler and on every
  worker (sent by value: it runs where ``autograder`` is missing). A machine without the grader,
  with another grader version, or a worker without a sandbox stops the run with one line naming
  it and what it lacks (:class:`ClusterError`), instead of a grader-error row per submission. A
  worker that joins later is probed as results come in (:meth:`DaskEngine.check_new_workers`);
  one without the grader at all closes at its first task, which Dask then runs elsewhere.
* No shared file system: a job carries the submission's files as bytes, and the result row comes
  back to the client, which alone writes results, the gradebook and the reports (workers hold no
  database connection).
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

import builtins
import contextlib
import dataclasses
import os
import pickle
import sys
import time
import types
from collections.abc import Callable, Iterator
from typing import Any

from autograder import reference, remote
from autograder.batch.judge import Job, Release, error_row
from autograder.batch.run import BatchError

ENV = "CNNLAB_DASK_SCHEDULER"
INSTALL = "pip install 'cnnlab[grader,dask]'"
WAIT_FOR_WORKERS = 60.0  # seconds a remote scheduler is given to have a worker


class ClusterError(BatchError):
    """A machine of the cluster cannot run the grader: one line, naming it and what it lacks."""


def _probe(sandbox: bool) -> dict[str, Any]:
    """On a cluster machine: what it offers the grader. Sent by value (:func:`_by_value`), so it
    imports everything it uses itself and reports a missing grader instead of failing to unpickle."""
    import socket
    import sys

    python = f"{sys.version_info[0]}.{sys.version_info[1]}"
    info: dict[str, Any] = {"host": socket.gethostname(), "python": python}
    try:
        from autograder import remote

        info.update(remote.capabilities(sandbox))
    except Exception as exc:
        info["missing"] = f"{type(exc).__name__}: {exc}"
    return info


def _by_value(func: Callable[..., Any]) -> Callable[..., Any]:
    """A copy of ``func`` whose module does not exist anywhere: cloudpickle (Dask's fallback) then
    sends its code instead of a reference to ``autograder``, which the other side may lack."""
    namespace = {"__builtins__": builtins, "__name__": "cnnlab_cluster_probe"}
    return types.FunctionType(func.__code__, namespace, func.__name__, func.__defaults__)


def machine_problems(who: str, info: dict[str, Any], client: dict[str, Any], sandbox: bool) -> list[str]:
    """What keeps the machine ``who`` (its probe ``info``) from grading like this ``client``."""
    if info.get("missing"):
        return [f"{who} cannot import the grader ({info['missing']}): {INSTALL} there"]
    problems = []
    if info.get("python") != client["python"]:
        problems.append(f"{who} runs Python {info.get('python')}, this client Python {client['python']}")
    if info.get("code") != client["code"]:
        problems.append(
            f"{who} runs another grader (cnnlab {info.get('version')}, code {str(info.get('code'))[:12]}; "
            f"this client: cnnlab {client['version']}, code {client['code'][:12]}): install the same "
            "version there"
        )
    if sandbox and not info.get("confined"):
        problems.append(
            f"{who} has no sandbox for student code ({info.get('sandbox')}): install bubblewrap there "
            "(Debian: apt-get install bubblewrap)"
        )
    return problems


class DaskEngine:
    """Jobs as Dask tasks on the cluster at ``address`` (``"local"``: a LocalCluster here).

    The cluster is checked (:meth:`check`) before anything is submitted; :class:`ClusterError`
    says which machine cannot grade and why."""

    def __init__(
        self,
        address: str,
        workers: int = 0,
        log: Callable[[str], None] = print,
        allow_unconfined: bool = False,
    ) -> None:
        from distributed import Client, LocalCluster

        self.require_sandbox = not allow_unconfined  # --allow-unconfined: a worker without one may grade
        self.cluster = None
        self.log = log
        self.checked: set[str] = set()  # workers whose probe passed
        self.last_check = 0.0
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
            try:
                self.client = Client(address, timeout="30s")
            except OSError as exc:
                raise ClusterError(f"no Dask scheduler at {address} ({exc})") from None
        try:
            self._wait_for_workers()
            sandboxes = self.check()
        except BaseException:
            self.close()
            raise
        n = len(self.client.scheduler_info().get("workers", {}))
        link = self.client.dashboard_link
        self.description = f"Dask cluster at {self.client.scheduler.address}, {n} workers (dashboard {link})"
        for text, count in sandboxes.items():
            log(f"sandbox on {count} worker{'s' * (count != 1)}: {text}")

    def _wait_for_workers(self) -> None:
        if self.client.scheduler_info().get("workers"):
            return
        try:
            self.client.wait_for_workers(1, timeout=WAIT_FOR_WORKERS)
        except TimeoutError:
            raise ClusterError(
                f"no Dask worker joined the scheduler at {self.client.scheduler.address} within "
                f"{WAIT_FOR_WORKERS:.0f} s: start one (dask worker ADDRESS --nthreads 1)"
            ) from None

    def _mine(self) -> dict[str, Any]:
        return {"python": f"{sys.version_info[0]}.{sys.version_info[1]}", **remote.capabilities(False)}

    def _workers(self) -> dict[str, Any]:
        return self.client.scheduler_info().get("workers", {})

    def check(self) -> dict[str, int]:
        """Probe the scheduler and every worker; raise :class:`ClusterError` (one line) unless each
        runs this client's grader (workers: with a sandbox). Returns the workers' sandboxes."""
        address = self.client.scheduler.address
        try:
            info = self.client.run_on_scheduler(_by_value(_probe), False)
        except Exception as exc:
            raise ClusterError(
                f"the Dask scheduler at {address} cannot run the grader's check ({type(exc).__name__}: {exc})"
            ) from None
        who = f"the Dask scheduler at {address} (host {info.get('host')})"
        problems = machine_problems(who, info, self._mine(), False)
        sandboxes, more = self._probe_workers(None)
        if problems or more:
            raise ClusterError("; ".join(problems + more))
        return sandboxes

    def _probe_workers(self, addresses: list[str] | None) -> tuple[dict[str, int], list[str]]:
        """Probe ``addresses`` (None: every worker): their sandboxes and what keeps them from grading.
        A worker that passes is remembered (:attr:`checked`); one that left meanwhile is skipped."""
        mine, names = self._mine(), {a: w.get("name", a) for a, w in self._workers().items()}
        try:
            infos = self.client.run(_by_value(_probe), True, workers=addresses, on_error="return")
        except Exception as exc:
            if addresses is not None:
                return {}, []  # a new worker that left again: checked when it comes back
            raise ClusterError(
                f"the Dask workers cannot run the grader's check ({type(exc).__name__}: {exc})"
            ) from None
        sandboxes: dict[str, int] = {}
        problems: list[str] = []
        for worker, info in sorted(infos.items()):
            who = f"Dask worker {names.get(worker, worker)} at {worker}"
            if isinstance(info, BaseException):
                if worker in self._workers():
                    problems.append(f"{who} cannot run the grader's check ({type(info).__name__}: {info})")
                continue
            found = machine_problems(f"{who} (host {info.get('host')})", info, mine, self.require_sandbox)
            problems += found
            if not found:
                self.checked.add(worker)
                sandboxes[info["sandbox"]] = sandboxes.get(info["sandbox"], 0) + 1
        return sandboxes, problems

    def check_new_workers(self, force: bool = False) -> None:
        """Probe the workers that joined since the last check (at most once a second unless
        ``force``); raise :class:`ClusterError` if one of them cannot grade.

        A worker without the grader at all rarely stays to be probed: it fails to unpickle its
        first task and closes, and Dask runs its tasks elsewhere (nothing is lost)."""
        now = time.monotonic()
        if now - self.last_check < 1.0 and not force:
            return
        self.last_check = now
        new = sorted(set(self._workers()) - self.checked)
        if new:
            _, problems = self._probe_workers(new)
            if problems:
                raise ClusterError("; ".join(problems))

    def run(self, jobs: list[Job]) -> Iterator[dict[str, Any]]:
        from distributed import as_completed

        if not jobs:
            return
        release = jobs[0].release
        ref = reference.ReferenceFiles.read()
        release_data, reference_data = self.client.scatter(
            [release.files, ref.files], broadcast=True, hash=False
        )
        futures = {}
        for job in jobs:
            light = dataclasses.replace(job, release=Release((), release.digest))
            key = f"cnnlab-grade-{job.student}-{job.key[:16]}-{os.urandom(4).hex()}"
            future = self.client.submit(
                remote.grade,
                pickle.dumps(light),
                release_data,
                reference_data,
                key=key,
                pure=False,
                retries=2,
            )
            futures[future] = job
        for future in as_completed(futures):
            job = futures[future]
            try:
                row = future.result()
            except Exception as exc:  # KilledWorker, a lost connection: infrastructure, retried next run
                row = error_row(job, f"the cluster could not grade it ({type(exc).__name__}: {exc})"[:500])
            # a worker that joined with another grader stops the run (before its refusals count)
            self.check_new_workers(force=bool(row.get("grader_error")))
            yield row

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.client.close()
        if self.cluster is not None:
            with contextlib.suppress(Exception):
                self.cluster.close()
