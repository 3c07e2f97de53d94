"""The parent's side of one sandboxed child: start it, read its frames, stop it.

The child answers with frames (see :mod:`autograder.sandbox.child`); the parent reads them with caps on
size (``output_mb``) and never unpickles anything. What cannot be read is the child's failure, never
the grader's.
"""

from __future__ import annotations

import os
import select
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder.records import Status
from autograder.sandbox import wire
from autograder.sandbox.confine import Limits


@dataclass
class TaskOutcome:
    """What happened to one task in the child.

    ``cases[i]`` is ``(value, args_after)``: ``value`` is the decoded return value, or a
    ``("raised", type name, message)`` tuple wrapped in :class:`Raised`, or :class:`Unreadable`.
    ``status`` is ``ok``, ``missing`` (no such function), ``import_error``, ``timeout``,
    ``budget`` (the per-task case budget ran out), ``crashed``, ``protocol`` or ``grader``.
    """

    task_id: str
    cases: list[tuple[Any, Any]] = field(default_factory=list)
    status: str = Status.OK
    error: str | None = None  # import error / missing function / crash description
    stopped_at: int | None = None  # cases run before a time limit stopped the task
    seconds: float = 0.0  # CPU seconds the task used
    limit: str | None = None  # which time limit stopped it: "cpu" (its own CPU time) or "wall" (waiting)


@dataclass(frozen=True)
class Raised:
    """The student's function raised ``type``: ``message`` (``memory``: a MemoryError, subclasses too)."""

    type: str
    message: str
    memory: bool = False


@dataclass(frozen=True)
class Unreadable:
    """The child could not send the return value (``why``)."""

    why: str


@dataclass
class TaskSpec:
    """One task to run: its function and its cases (argument tuples)."""

    task_id: str
    module: str
    function: str
    cases: list[tuple[Any, ...]]
    forward: str | None = None  # backward tasks: the forward whose cache the cases hold
    forward_args: list[tuple[Any, ...] | None] = field(default_factory=list)  # per case
    own_cache: bool = False  # run the backward on the cache of the student's own forward instead


WALL_FACTOR, WALL_SLACK = 3.0, 10.0  # a child waiting (not computing) is stopped after 3x its budget + 10 s


@dataclass(frozen=True)
class Deadline:
    """When the parent stops a child: its own CPU time reaching ``cpu`` (seconds), or the clock
    (``time.monotonic()``) reaching ``wall``, a child that waits instead of computing."""

    cpu: float
    wall: float


def _tree_cpu_seconds(pid: int) -> float:
    """CPU seconds of process ``pid`` and all its descendants (threads included; reaped children
    too), from ``/proc``: where no cgroup counts a child's time."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as fh:
                fields = fh.read().rsplit(b")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
    total, stack = 0.0, [pid]
    while stack:
        p = stack.pop()
        total += times.get(p, 0.0)
        stack += children.get(p, [])
    return total


class Child:
    """One running child process (already started) and the frames it has sent."""

    def __init__(
        self,
        proc: subprocess.Popen,
        stderr_path: Path,
        limits: Limits,
        cleanup: Any,
        watch: Path | None = None,
        cgroup: Any = None,
    ) -> None:
        self.proc = proc
        self.cgroup = cgroup  # its control groups (cgroups.ChildCgroup), which count its CPU time
        self.limit_hit: str | None = None  # "cpu" or "wall" after read() returned "timeout"
        self.watch = watch  # fallback: the writable folder, whose size the parent keeps under disk_mb
        self.limits = limits
        self.stderr_path = stderr_path
        self.cleanup = cleanup
        self.reader = wire.FrameReader(wire.MAX_FRAME)
        self.received = 0
        self.frames: list[tuple[dict[str, Any], list[bytes]]] = []
        self.eof = False

    def cpu_seconds(self) -> float:
        """CPU time the child (all its threads) has used so far: from its cgroup, else ``/proc``."""
        counted = self.cgroup.cpu_seconds() if self.cgroup is not None else None
        return counted if counted is not None else _tree_cpu_seconds(self.proc.pid)

    def deadline(self, cpu_seconds: float) -> Deadline:
        """The deadline ``cpu_seconds`` of the child's own CPU time from now."""
        cpu_seconds = max(cpu_seconds, 0.0)
        wall = time.monotonic() + cpu_seconds * WALL_FACTOR + WALL_SLACK
        return Deadline(self.cpu_seconds() + cpu_seconds, wall)

    def read(self, deadline: Deadline) -> str:
        """Read until a frame arrives, EOF or ``deadline``: ``frame``, ``eof``, ``timeout`` (then
        :attr:`limit_hit` says which), ``overflow`` (more than ``output_mb`` in all, or a malformed
        frame) or ``disk`` (the fallback's folder grew past ``disk_mb``). The CPU time and the folder
        are checked five times a second."""
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while not self.frames:
            if self.eof:
                return "eof"
            left = deadline.wall - time.monotonic()
            if left <= 0:
                self.limit_hit = "wall"
                return "timeout"
            if deadline.cpu != float("inf") and self.cpu_seconds() >= deadline.cpu:
                self.limit_hit = "cpu"
                return "timeout"
            if self.watch is not None and _folder_bytes(self.watch) > self.limits.disk_mb * 2**20:
                return "disk"
            ready, _, _ = select.select([fd], [], [], min(left, 0.2))
            if not ready:
                continue
            data = os.read(fd, 1 << 16)
            if not data:
                self.eof = True
                continue
            self.received += len(data)
            if self.received > self.limits.output_mb * 2**20:
                return "overflow"
            try:
                payloads = self.reader.feed(data)
                self.frames += [wire.unpack(p) for p in payloads]
            except Exception:  # noqa: BLE001 (whatever the child sent: its failure, never ours)
                return "overflow"
        return "frame"

    def pop(self) -> tuple[dict[str, Any], list[bytes]]:
        return self.frames.pop(0)

    def stop(self) -> str:
        """Kill the child's whole session; returns how it ended, e.g. ``exit status 3``."""
        if self.proc.pid is not None:  # None: a zygote's child (its monitor kills it)
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        self.proc.kill()  # bubblewrap: its PID namespace dies with it
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.cleanup()
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

    def stderr_tail(self) -> str:
        try:
            data = self.stderr_path.read_bytes()[-1500:]
        except OSError:
            return ""
        return data.decode(errors="replace").strip()


def _folder_bytes(folder: Path) -> int:
    """Bytes of the regular files below ``folder`` (links not followed; vanished files skipped)."""
    total, stack = 0, [str(folder)]
    while stack:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError:
                        continue
        except OSError:
            continue
    return total


def describe(what: str, how: str, limits: Limits, where: str, limit: str | None = None) -> str:
    if what == Status.TIMEOUT and limit == "wall":
        return (
            f"your code waited without computing for longer than the time limit allows {where} "
            f"({limits.timeout:g} s of CPU time for the submission; a sleep, or a blocked read?)"
        )
    if what == Status.TIMEOUT:
        return (
            f"the time limit ({limits.timeout:g} s of CPU time for the submission) ran out {where} "
            "(an endless loop?)"
        )
    if what == "memory":
        return f"your code used more than the memory limit of {limits.memory_mb} MB {where}"
    if what == Status.CRASHED:
        return (
            f"your code ended the grading process {where} "
            f"({how}; os._exit, a crash, or the memory limit of {limits.memory_mb} MB?)"
        )
    if what == "disk":
        return f"your code wrote more than {limits.disk_mb} MB to disk {where}"
    return f"the grading process sent output the grader cannot read {where} ({how})"


def decode_case(header: dict[str, Any], blobs: list[bytes], limits: Limits) -> tuple[Any, Any]:
    """One case's (value, args_after), decoded; an undecodable value is :class:`Unreadable`."""
    cap = limits.output_mb * 2**20
    cache: dict[int, Any] = {}
    try:
        args_after = (
            None if header.get("args_after") is None else wire.decode(header["args_after"], blobs, cache, cap)
        )
    except Exception as exc:  # noqa: BLE001
        return Unreadable(f"arguments unreadable: {str(exc)[:300]}"), None
    if header.get("no_forward") is True:
        return None, args_after  # own-cache runs: the student's forward did not give a cache
    if "raised" in header:
        raised = header["raised"]
        if not (isinstance(raised, list) and len(raised) == 2):
            return Unreadable("a malformed exception record"), args_after
        memory = header.get("memory") is True
        return Raised(str(raised[0])[:200], str(raised[1])[: wire.MAX_TEXT + 3], memory), args_after
    if "unencodable" in header:
        return Unreadable(str(header["unencodable"])[:500]), args_after
    try:
        return wire.decode(header.get("result"), blobs, cache, cap), args_after
    except Exception as exc:  # noqa: BLE001
        return Unreadable(str(exc)[:500]), args_after
