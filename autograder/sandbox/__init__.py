"""The sandbox stage: run a student's task functions in confined child processes.

One object, one call::

    box = Sandbox(release_pkg, limits, slot)
    outcomes, info = box.run(Work(files, tasks, own, import_modules, isolated))

``files`` maps the student's editable files (``cnnlab/conv.py``) to their bytes (None: absent). Each
child runs :mod:`autograder.sandbox.child` (the runner), confined as :mod:`autograder.sandbox.confine`
describes (bubblewrap, seccomp, Landlock, limits) *before* any student code runs: forked by the
worker slot's zygote into new namespaces and a root of its own (:mod:`autograder.sandbox.zygotes`,
the default where nested user namespaces work), or a fresh ``python -I -S -B`` in a fresh bubblewrap
(``--zygote off``; after a zygote child crashed or hit a time limit, for the rest of the
submission), or, where bubblewrap cannot run, the fallback. The runner writes the released package
(with its checked-hash ``.pyc``) and the student's files into the child's own writable folder,
imports the package and runs the functions on the inputs it was sent. Only data
comes back (JSON and ``.npy`` bytes, never pickles, :mod:`autograder.sandbox.protocol`); judging is
the caller's business, so nothing the child does can change how it is judged.

A budget of the child's own CPU time (``timeout``; counted by its cgroup, else from ``/proc``) is
shared by the submission's tasks: a task gets the time the earlier tasks left, divided by the tasks
still to run, so what runs beside it cannot use it up; a child that waits instead of computing is
stopped after three times its budget (plus 10 s) of wall-clock time. A task that overruns, crashes
(or is killed at its cgroup's memory limit) or corrupts the protocol is recorded with the cases
finished so far (``TaskOutcome.limit`` says which time limit stopped it), and the next tasks run in
a new child with a new sandbox (nothing an earlier child wrote is ever seen again).
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.records import Status
from autograder.sandbox import cgroups, child, wire, zygotes
from autograder.sandbox.confine import (
    GRADER,
    SANDBOX,
    ChildCgroup,
    Limits,
    SandboxMode,
    bwrap_argv,
    child_env,
    child_sys_path,
    preexec,
    sandbox_mode,
    seccomp_filter,
)
from autograder.sandbox.protocol import (
    Child,
    Deadline,
    Raised,
    TaskOutcome,
    TaskSpec,
    Unreadable,
    decode_case,
    describe,
)

__all__ = [
    "Limits",
    "Raised",
    "Sandbox",
    "SandboxMode",
    "TaskOutcome",
    "TaskSpec",
    "Unreadable",
    "Work",
    "become_subreaper",
    "die_with_parent",
    "reap_orphans",
    "sandbox_mode",
]

RUNNER = Path(child.__file__).resolve()
WIRE = Path(wire.__file__).resolve()  # the runner loads it from beside itself
STARTUP_TIMEOUT = 60.0  # seconds for Python + numpy to start in the child (not the student's time)
_PR_SET_CHILD_SUBREAPER, _PR_SET_PDEATHSIG = 36, 1
_LIBC = ctypes.CDLL(None, use_errno=True)
_SYSTEM_READ = ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/etc/ld.so.cache"]
_SYSTEM_READ += ["/usr/share/fonts", "/usr/share/zoneinfo", "/etc/localtime"]


def become_subreaper() -> None:
    """Orphans of our children (a student's forked processes) become our children: we kill them."""
    _LIBC.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def die_with_parent() -> None:
    """SIGKILL this process when its parent dies (a killed grader leaves no workers behind)."""
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def reap_orphans(keep: set[int] | None = None) -> int:
    """Kill and reap every child of this process (sandbox leftovers re-parented to us), repeatedly
    until none is left; returns how many. Only for a process whose only children are sandboxes."""
    me, killed = os.getpid(), 0
    keep = (keep or set()) | zygotes.own_pids()  # this process's zygotes live on between jobs
    for _ in range(50):
        found = []
        for entry in os.listdir("/proc"):
            if not entry.isdigit() or int(entry) in (keep or set()):
                continue
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == me:
                found.append(int(entry))
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
            killed += 1
    return killed


_COMPILED: set[Path] = set()


def compile_release(folder: Path) -> None:
    """Give the released package ``.pyc`` files validated by their source's hash (as ``compileall
    --invalidation-mode checked-hash``), once per folder and process: a child copies them beside the
    sources into its writable folder and imports without compiling (a student's file, whose hash
    differs, is compiled from its source as always). A ``.pyc`` that is timestamp-based or whose
    hash is not its source's is made again; nothing happens where the folder is not ours."""
    folder = Path(folder)
    if folder in _COMPILED:
        return
    _COMPILED.add(folder)
    import importlib.util
    import py_compile

    try:
        if folder.stat().st_uid != os.geteuid():
            return
        for source in sorted([*folder.glob("*.py"), *folder.glob("*/*.py")]):  # the package and _internal/
            cached = Path(importlib.util.cache_from_source(str(source)))
            try:
                head = cached.read_bytes()[:16]
            except OSError:
                head = b""
            expect = importlib.util.MAGIC_NUMBER + (3).to_bytes(4, "little")
            expect += importlib.util.source_hash(source.read_bytes())
            if head != expect:
                py_compile.compile(
                    str(source), str(cached), doraise=True,
                    invalidation_mode=py_compile.PycInvalidationMode.CHECKED_HASH,
                )  # fmt: skip
            cached.chmod(0o644)
        for cache in [folder / "__pycache__", *folder.glob("*/__pycache__")]:
            if cache.is_dir():
                cache.chmod(0o755)
    except (OSError, py_compile.PyCompileError):
        pass


@dataclass
class Work:
    """What one submission's children run: the student's editable files (``cnnlab/conv.py`` ->
    bytes; None: absent), the tasks in order, each isolated module's own task functions, the modules
    to import up front, and the modules whose provided functions grading restores."""

    files: dict[str, bytes | None]
    tasks: list[TaskSpec]
    own: dict[str, list[str]] = field(default_factory=dict)
    import_modules: list[str] = field(default_factory=list)
    isolated: list[str] = field(default_factory=list)


class Sandbox:
    """Runs one submission's tasks, each child in a fresh sandbox (see the module docstring).

    ``release_pkg`` is the released ``cnnlab/`` (read-only for the child); ``slot`` tells concurrent
    workers apart (the fallback's dedicated user id). ``mode`` defaults to :func:`sandbox_mode`."""

    # a command the fallback's child runs under (e.g. ``strace``): tools/measure_syscalls.py only
    wrapper: Callable[[], list[str]] | None = None

    def __init__(self, release_pkg: Path, limits: Limits, slot: int = 0, mode: SandboxMode | None = None):
        self.release_pkg = Path(release_pkg).resolve()
        self.limits = limits
        self.mode = mode or sandbox_mode()
        self.uid = None if self.mode.uid is None else self.mode.uid + slot
        if self.mode.bwrap and self.mode.host_uid is not None:
            self.uid = self.mode.host_uid + slot  # bubblewrap runs as the slot's unprivileged host uid
        self.slot = slot
        compile_release(self.release_pkg)

    # -- one child

    def _request(
        self, folder: str, release: str, work: Work, tasks: list[TaskSpec], preconfined: bool = False
    ) -> bytes:
        blobs: list[bytes] = []
        task_list = []
        for t in tasks:
            cases = [wire.encode(list(args), blobs) for args in t.cases]  # a fresh memo per case
            fargs = [None if a is None else wire.encode(list(a), blobs) for a in t.forward_args]
            task_list.append(
                {"id": t.task_id, "module": t.module, "function": t.function, "cases": cases,
                 "budget": self.limits.task_budget, "forward": t.forward, "forward_args": fargs,
                 "own_cache": t.own_cache}
            )  # fmt: skip
        file_refs: dict[str, int | None] = {}
        for rel, data in work.files.items():
            file_refs[rel] = None if data is None else len(blobs)
            if data is not None:
                blobs.append(data)
        header: dict[str, Any] = {
            "sandbox": folder,
            "release": release,
            "files": file_refs,
            "path": child_sys_path(),
            "tasks": task_list,
            "task_functions": work.own,
            "import_modules": work.import_modules,
            "isolated_modules": work.isolated,
            "drop_caps": self.mode.drop_caps and not preconfined,
            "landlock": None,
            "seccomp": None,
        }
        if preconfined:  # a zygote's child applied every layer before it read this
            return wire.pack(header, blobs)
        if self.mode.landlock:
            header["landlock"] = {
                "read": [*header["path"], *self._prefixes(), *_SYSTEM_READ, release],
                "write": [folder],
                "devices": ["/dev/null", "/dev/zero", "/dev/urandom"],
            }
        if self.mode.seccomp:
            header["seccomp"] = len(blobs)  # the runner installs the strict allow list itself
            blobs.append(seccomp_filter() or b"")
        return wire.pack(header, blobs)

    def _zygote(self) -> zygotes.Zygote | None:
        if not self.mode.zygote:
            return None
        group = cgroups.slot_group(self.mode.cgroup, self.slot)
        if group is None or group.busy:  # another child of this slot runs (threads): a fresh child
            return None
        return zygotes.zygote_for(self.mode, self.release_pkg, RUNNER, WIRE, self.slot, self.uid)

    @staticmethod
    def _prefixes() -> list[str]:
        from autograder.sandbox.confine import _prefixes

        return _prefixes()

    def _start_forked(
        self, zygote: zygotes.Zygote, private: Path, work: Work, tasks: list[TaskSpec]
    ) -> Child:
        """Start one child forked from the slot's zygote (it confines itself before reading)."""
        request = self._request(SANDBOX, f"{GRADER}/cnnlab", work, tasks, preconfined=True)
        (private / "request.bin").write_bytes(request)
        keep = zygote.keep
        cgroup = ChildCgroup(
            self.mode.cgroup, self.limits.nproc + len(keep) + 1, self.limits.memory_mb, self.slot,
            zygote.base_memory, keep,
        )  # fmt: skip
        try:
            if not cgroup.folders or cgroup.private:  # its CPU time and memory would go uncounted
                raise zygotes.ZygoteError("the slot's control group cannot take the child's limits")
            proc = zygote.spawn(private / "request.bin", private / "stderr.txt", self.limits)
        except BaseException:
            cgroup.close(keep)
            raise
        return Child(proc, private / "stderr.txt", self.limits, lambda: cgroup.close(keep), None, cgroup)  # type: ignore[arg-type]

    def _start(self, private: Path, work: Work, tasks: list[TaskSpec]) -> Child:
        """Start one child: under bubblewrap, or (fallback) in a fresh folder of its own."""
        cgroup = ChildCgroup(self.mode.cgroup, self.limits.nproc, self.limits.memory_mb, self.slot)
        scratch = None
        seccomp_file = None
        pass_fds: tuple[int, ...] = ()
        if self.mode.bwrap:
            request = self._request(SANDBOX, f"{GRADER}/cnnlab", work, tasks)
            bpf = seccomp_filter(startup=True) if self.mode.seccomp else None
            if bpf:
                seccomp_file = tempfile.TemporaryFile(dir=private)  # noqa: SIM115
                seccomp_file.write(bpf)
                seccomp_file.seek(0)
                pass_fds = (seccomp_file.fileno(),)
            argv = bwrap_argv(
                self.mode, self.limits, RUNNER, WIRE, self.release_pkg, pass_fds[0] if pass_fds else None
            )
            env, cwd = {}, "/"
        else:
            scratch = Path(tempfile.mkdtemp(prefix="cnnlab-sandbox-"))
            folder = scratch / "work"
            folder.mkdir()
            if self.uid is not None:
                os.chown(folder, self.uid, self.uid)
                scratch.chmod(0o711)
            request = self._request(str(folder), str(self.release_pkg), work, tasks)
            argv = [os.path.realpath(sys.executable), "-I", "-S", "-B", str(RUNNER)]
            argv = (self.wrapper() if self.wrapper else []) + argv
            env, cwd = child_env(str(folder)), str(folder)
        (private / "request.bin").write_bytes(request)
        stdin = open(private / "request.bin", "rb")  # noqa: SIM115
        stderr = open(private / "stderr.txt", "wb")  # noqa: SIM115

        def cleanup() -> None:
            cgroup.close()
            if scratch is not None:
                shutil.rmtree(scratch, ignore_errors=True)

        try:
            proc = subprocess.Popen(
                argv,
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=cwd,
                env=env,
                start_new_session=True,
                preexec_fn=preexec(self.limits, self.uid, cgroup),
                close_fds=True,
                pass_fds=pass_fds,
            )
        except BaseException:
            cleanup()
            raise
        finally:
            stdin.close()
            stderr.close()
            if seccomp_file is not None:
                seccomp_file.close()
        watch = None if scratch is None else scratch / "work"
        return Child(proc, private / "stderr.txt", self.limits, cleanup, watch, cgroup)

    # -- the submission

    def run(self, work: Work) -> tuple[list[TaskOutcome], dict[str, Any]]:
        """Run ``work.tasks`` in order; an outcome per task, and facts about the sandbox (``hello``:
        what the child reported of its confinement, ``children``: how many ran)."""
        private = Path(tempfile.mkdtemp(prefix="cnnlab-grader-"))  # the parent's: 0700
        try:
            return self._run(private, work)
        finally:
            shutil.rmtree(private, ignore_errors=True)

    def _run(self, private: Path, work: Work) -> tuple[list[TaskOutcome], dict[str, Any]]:
        tasks = work.tasks
        outcomes = {t.task_id: TaskOutcome(t.task_id) for t in tasks}
        remaining = list(tasks)
        budget = self.limits.timeout  # CPU seconds the submission's children may still use
        info: dict[str, Any] = {"children": 0, "zygote": 0}
        fresh = False  # after a zygote child crashed or timed out: fresh children for the rest
        while remaining:
            info["children"] += 1
            zygote = None if fresh else self._zygote()
            if zygote is not None:
                try:
                    child = self._start_forked(zygote, private, work, remaining)
                    info["zygote"] += 1
                except zygotes.ZygoteError:
                    zygotes.discard(self.slot)  # a new zygote for the next submission
                    fresh = True
                    zygote, child = None, self._start(private, work, remaining)
            else:
                child = self._start(private, work, remaining)
            current: TaskOutcome | None = None
            phase = "start"
            deadline = Deadline(float("inf"), time.monotonic() + STARTUP_TIMEOUT)  # not the student's time
            cpu_started = 0.0
            ended = None
            oom = False
            try:
                while True:
                    status = child.read(deadline)
                    if status != "frame":
                        ended = status
                        break
                    header, blobs = child.pop()
                    kind = header.get("kind")
                    if kind in ("hello", "importing", "fatal") and phase != "start":
                        ended = "protocol"  # only the runner sends these, before any student code runs
                        break
                    if kind == "hello":
                        info["hello"] = header
                    elif kind == "fatal":
                        ended = "fatal: " + str(header.get("error"))[:500]
                        break
                    elif kind == "importing":
                        phase, cpu_started = "import", child.cpu_seconds()
                        deadline = child.deadline(budget)
                    elif kind == "import_error":
                        for t in remaining:
                            o = outcomes[t.task_id]
                            o.status = Status.MEMORY if header.get("memory") is True else Status.IMPORT_ERROR
                            o.error = str(header.get("error"))[:2000]
                        remaining = []
                        break
                    elif kind == "task_start":
                        now_cpu = child.cpu_seconds()
                        if phase == "import":
                            budget -= now_cpu - cpu_started
                        tid = header.get("task")
                        if phase not in ("import", "between") or not remaining or tid != remaining[0].task_id:
                            ended = "protocol"
                            break
                        current = outcomes[tid]
                        phase, cpu_started = "task", now_cpu
                        # the tasks share the time; the own-cache reruns (last) get what is left
                        n_tasks = sum(1 for t in remaining if not t.own_cache)
                        deadline = child.deadline(budget / (n_tasks if not remaining[0].own_cache else 1))
                    elif kind == "case" and current is not None and header.get("task") == current.task_id:
                        if header.get("index") != len(current.cases):
                            ended = "protocol"
                            break
                        current.cases.append(decode_case(header, blobs, self.limits))
                    elif kind == "task_missing" and current is not None:
                        current.status, current.error = Status.MISSING, str(header.get("error"))[:2000]
                    elif kind == "stopped" and current is not None:
                        current.status, current.stopped_at = Status.BUDGET, len(current.cases)
                    elif kind == "task_end" and current is not None and header.get("task") == current.task_id:
                        used = child.cpu_seconds() - cpu_started
                        current.seconds = used
                        budget -= used
                        remaining.pop(0)
                        current, phase = None, "between"
                        deadline = child.deadline(budget)
                    elif kind == "done":
                        break
                    else:
                        ended = "protocol"
                        break
            finally:
                used = child.cpu_seconds() - cpu_started if phase in ("import", "task") else 0.0
                oom = child.cgroup is not None and child.cgroup.out_of_memory()
                how = child.stop()
            if ended is None and remaining:
                ended = "protocol"  # "done" before every task ended: never run the same tasks again
            if ended is None:
                break  # done, or an import error: nothing left to run
            tail = child.stderr_tail()
            if zygote is not None:
                if phase == "start":  # its namespaces or root could not be made: no student code ran
                    zygotes.give_up(f"{ended}: {tail[-300:]}")
                    info["children"] -= 1
                    info["zygote"] -= 1
                    continue
                zygotes.discard(self.slot)  # a crash or a time limit: a new zygote, fresh children here
                fresh = True
            if phase == "start" or ended.startswith("fatal"):
                # Python never got to the student's code: the grader's problem, not the student's
                why = (
                    ended if ended.startswith("fatal") else f"the child did not start ({how}): {tail[-300:]}"
                )
                for t in remaining:
                    outcomes[t.task_id].status, outcomes[t.task_id].error = Status.GRADER, why
                break
            what = {"timeout": Status.TIMEOUT, "overflow": Status.PROTOCOL, "protocol": Status.PROTOCOL}
            what = what.get(ended, Status.CRASHED)  # eof, or "disk": the fallback's folder grew too large
            if oom and what == Status.CRASHED:
                what, ended = Status.MEMORY, "memory"  # the kernel killed it at the cgroup's memory limit
            limit = child.limit_hit if what == Status.TIMEOUT else None
            if phase == "import":
                for t in remaining:
                    o = outcomes[t.task_id]
                    o.status, o.limit = what, limit
                    kind = ended if ended in ("disk", "memory") else what
                    o.error = describe(kind, how, self.limits, "while importing", limit)
                break
            victim = current if current is not None else outcomes[remaining[0].task_id]
            victim.status, victim.limit = what, limit
            victim.stopped_at = len(victim.cases)
            where = f"during case {len(victim.cases) + 1}"
            kind = ended if ended in ("disk", "memory") else what
            victim.error = describe(kind, how, self.limits, where, limit)
            victim.seconds = used
            budget -= used
            remaining = [t for t in remaining if t.task_id != victim.task_id]
        return [outcomes[t.task_id] for t in tasks], info
