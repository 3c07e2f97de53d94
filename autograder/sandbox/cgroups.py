"""Control groups of one child each: its processes, CPU and memory counted and capped on their own.

Where the grader may make control groups (it runs as root, cgroup v1 or v2), every child gets a
group of its own in each controller, made before the child starts and entered between fork and exec:

* ``pids``: at most ``Limits.nproc`` processes and threads (a fork bomb stays inside);
* ``cpu``: at most one core (v1 ``cpu.cfs_quota_us``, v2 ``cpu.max``), however many threads it runs,
  so a busy child cannot take the CPU of the children graded beside it;
* ``cpuacct`` (v1) / ``cpu.stat`` (v2): the child's own CPU time, which its time budget is counted in;
* ``memory``: at most ``Limits.memory_mb`` (v1 ``memory.limit_in_bytes``, v2 ``memory.max``), counting
  what ``RLIMIT_AS`` does not see: written pages of a ``memfd``, of ``/dev/shm`` and of the tmpfs.

:meth:`ChildCgroup.close` kills what is left in the group and removes it (retrying while the kernel
still holds it busy); a group left by a grader that died is removed by the next one
(:func:`sweep_stale`), and every group this process made is removed when it exits.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

BASE_NAME = "cnnlab-grader"
ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("pids", "cpu", "cpuacct", "memory")
_OPEN: set[ChildCgroup] = set()  # groups of this process not yet removed (removed at exit)


@dataclass(frozen=True)
class Layout:
    """Where this machine lets the grader make groups: ``folders`` maps each controller to its
    ``cnnlab-grader`` folder (v1: one hierarchy per controller; v2: the same folder for all)."""

    version: int
    folders: dict[str, str]

    @property
    def controllers(self) -> list[str]:
        return sorted(self.folders)

    def describe(self) -> str:
        counted = [c for c in ("pids", "cpu", "memory") if c in self.folders]
        return f"a cgroup (v{self.version}: {', '.join(counted)}) per child"


def _writable_base(hierarchy: Path, probe_file: str) -> str | None:
    folder = hierarchy / BASE_NAME
    try:
        folder.mkdir(exist_ok=True)
        probe = folder / f"probe-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        probe.mkdir()
        ok = (probe / probe_file).exists()
        probe.rmdir()
        return str(folder) if ok else None
    except OSError:
        return None


@functools.lru_cache(maxsize=1)
def detect() -> Layout | None:
    """The cgroup layout the grader may use here, or None (not root, or nothing writable)."""
    if os.geteuid() != 0:
        return None
    if (ROOT / "cgroup.controllers").is_file():  # v2: one tree
        try:
            available = (ROOT / "cgroup.controllers").read_text().split()
            wanted = [c for c in ("pids", "cpu", "memory") if c in available]
            (ROOT / BASE_NAME).mkdir(exist_ok=True)
            for where in (ROOT, ROOT / BASE_NAME):
                (where / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in wanted))
        except OSError:
            return None
        base = _writable_base(ROOT, "cgroup.procs")
        if base is None:
            return None
        layout = Layout(2, {c: base for c in wanted})
    else:
        probes = {"pids": "pids.max", "cpu": "cpu.cfs_quota_us", "cpuacct": "cpuacct.usage"}
        probes["memory"] = "memory.limit_in_bytes"
        folders = {}
        for controller in V1_CONTROLLERS:
            base = _writable_base(ROOT / controller, probes[controller])
            if base is not None:  # cpu and cpuacct may be one hierarchy (cpu,cpuacct)
                folders[controller] = os.path.realpath(base)
        if not folders:
            return None
        layout = Layout(1, folders)
    sweep_stale(layout)
    return layout


def owner(name: str) -> int | None:
    """The grader process that made group ``name`` (``<pid>-<random>``), or None (not one of ours)."""
    pid, dash, rest = name.partition("-")
    if not (dash and rest and pid.isdigit() and 0 < int(pid) < 2**22):
        return None
    return int(pid)


def _alive(pid: int) -> bool:
    return Path(f"/proc/{pid}").exists()


def _procs(folder: str) -> list[int]:
    try:
        return [int(p) for p in Path(folder, "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def _remove(folder: str, attempts: int = 100) -> bool:
    """Kill every process of the group, then remove it; retried while the kernel says busy."""
    for i in range(attempts):
        for pid in _procs(folder):
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
        try:
            os.rmdir(folder)
            return True
        except FileNotFoundError:
            return True
        except OSError:
            time.sleep(0.002 * min(i + 1, 25))
    return False


def sweep_stale(layout: Layout) -> int:
    """Remove the groups a grader process that no longer runs left behind; returns how many."""
    removed = 0
    for base in set(layout.folders.values()):
        with contextlib.suppress(OSError):
            for entry in os.scandir(base):
                pid = owner(entry.name)
                if entry.is_dir() and pid is not None and not _alive(pid):
                    removed += _remove(entry.path, attempts=20)
    return removed


class ChildCgroup:
    """The groups of one child (a no-op where ``layout`` is None): see the module docstring."""

    def __init__(self, layout: Layout | None, nproc: int, memory_mb: int) -> None:
        self.folders: list[str] = []
        self.cpu_file: str | None = None
        self.memory_folder: str | None = None
        self.version = 0 if layout is None else layout.version
        if layout is None:
            return
        name = f"{os.getpid()}-{uuid.uuid4().hex[:12]}"
        memory = str(memory_mb * 2**20)
        try:
            for controller, base in sorted(layout.folders.items()):
                folder = os.path.join(base, name)
                if folder not in self.folders:
                    os.mkdir(folder)
                    self.folders.append(folder)
                    _OPEN.add(self)
                self._configure(controller, folder, nproc, memory)
        except OSError:
            self.close()
            self.folders = []

    def _configure(self, controller: str, folder: str, nproc: int, memory: str) -> None:
        write = lambda name, value: Path(folder, name).write_text(value)  # noqa: E731
        if controller == "pids":
            write("pids.max", str(nproc))
        elif controller == "cpu" and self.version == 1:
            write("cpu.cfs_period_us", "100000")
            write("cpu.cfs_quota_us", "100000")  # one core at the most
        elif controller == "cpu":
            write("cpu.max", "100000 100000")
            self.cpu_file = os.path.join(folder, "cpu.stat")
        elif controller == "cpuacct":
            self.cpu_file = os.path.join(folder, "cpuacct.usage")
        elif controller == "memory":
            self.memory_folder = folder
            if self.version == 1:
                write("memory.limit_in_bytes", memory)
                with contextlib.suppress(OSError):  # no swap accounting on some kernels
                    write("memory.memsw.limit_in_bytes", memory)
            else:
                write("memory.max", memory)
                with contextlib.suppress(OSError):
                    write("memory.swap.max", "0")

    def enter(self) -> None:
        """Called in the child between fork and exec: it and all it starts count here."""
        pid = str(os.getpid())
        for folder in self.folders:
            with open(os.path.join(folder, "cgroup.procs"), "w") as fh:
                fh.write(pid)

    def cpu_seconds(self) -> float | None:
        """CPU time used by the group's processes so far, in seconds (None: not counted here)."""
        if self.cpu_file is None:
            return None
        try:
            text = Path(self.cpu_file).read_text()
        except OSError:
            return None
        if self.cpu_file.endswith("cpuacct.usage"):
            return int(text.strip()) / 1e9
        for line in text.splitlines():  # v2 cpu.stat
            if line.startswith("usage_usec "):
                return int(line.split()[1]) / 1e6
        return None

    def out_of_memory(self) -> bool:
        """Whether the kernel killed a process of the group for going over its memory limit."""
        if self.memory_folder is None:
            return False
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            for line in Path(self.memory_folder, name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill" and int(value) > 0:
                    return True
        except (OSError, ValueError):
            return False
        return False

    def close(self) -> None:
        """Kill what is left in the groups and remove them."""
        for folder in self.folders:
            _remove(folder)
        self.folders = []
        _OPEN.discard(self)


@atexit.register
def _close_all() -> None:
    """On the grader's exit: its own groups, and any that its workers (killed, or gone without
    cleaning up) left behind."""
    for group in list(_OPEN):
        group.close()
    if detect.cache_info().currsize:
        layout = detect()
        if layout is not None:
            sweep_stale(layout)
