"""Control groups of one worker slot: its children's processes, CPU and memory counted and capped.

Where the grader may make control groups (it runs as root, cgroup v1 or v2), every worker slot (a
process of the engine's pool, grading one submission at a time) gets one group in each controller,
made the first time the slot starts a child and kept for the slot's life; only one child of a slot
runs at a time, so the group's limits are that child's:

* ``pids``: at most ``Limits.nproc`` processes and threads (a fork bomb stays inside);
* ``cpu``: at most one core (v1 ``cpu.cfs_quota_us``, v2 ``cpu.max``), however many threads it runs,
  so a busy child cannot take the CPU of the children graded beside it;
* ``cpuacct`` (v1) / ``cpu.stat`` (v2): the child's own CPU time, the group's usage since the child
  started (its time budget is counted in it);
* ``memory``: at most ``Limits.memory_mb`` (v1 ``memory.limit_in_bytes``, v2 ``memory.max``), counting
  what ``RLIMIT_AS`` does not see: written pages of a ``memfd``, of ``/dev/shm`` and of the tmpfs; a
  kill at the limit is a rise of the group's ``oom_kill`` count while the child ran.

A fresh child enters the slot's group between fork and exec (one move; making and removing a group
per child, whose ``rmdir`` the kernel often refuses while it still tears the group down, is gone); a
zygote (:mod:`autograder.sandbox.zygote`) enters it once and its children are born in it (no move at
all). :meth:`ChildCgroup.close` kills whatever the child left in the group. The slot's group is
removed (retrying while the kernel holds it busy) when its process exits; a group left by a grader
process that died is removed by the next grader, and by the pool after its workers end
(:func:`sweep_stale`).
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import multiprocessing.util
import os
import signal
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

BASE_NAME = "cnnlab-grader"
ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("pids", "cpu", "cpuacct", "memory")
_OPEN: set[SlotCgroup] = set()  # groups of this process not yet removed (removed at exit)


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
        return f"a cgroup (v{self.version}: {', '.join(counted)}) per worker slot, one child at a time"


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


def _write(folder: str, name: str, value: str) -> None:
    Path(folder, name).write_text(value)


class SlotCgroup:
    """The groups of one worker slot (see the module docstring); made by :func:`slot_group`."""

    def __init__(self, layout: Layout, name: str) -> None:
        self.version = layout.version
        self.owner = os.getpid()
        self.folders: list[str] = []
        self.cpu_file: str | None = None
        self.memory_folder: str | None = None
        self.busy = False
        self.limits: tuple[int, int] | None = None
        try:
            for controller, base in sorted(layout.folders.items()):
                folder = os.path.join(base, name)
                if folder not in self.folders:
                    os.mkdir(folder)
                    self.folders.append(folder)
                    _OPEN.add(self)
                self._configure(controller, folder)
        except OSError:
            self.remove()
            raise

    def _configure(self, controller: str, folder: str) -> None:
        if controller == "cpu" and self.version == 1:
            _write(folder, "cpu.cfs_period_us", "100000")
            _write(folder, "cpu.cfs_quota_us", "100000")  # one core at the most
        elif controller == "cpu":
            _write(folder, "cpu.max", "100000 100000")
            self.cpu_file = os.path.join(folder, "cpu.stat")
        elif controller == "cpuacct":
            self.cpu_file = os.path.join(folder, "cpuacct.usage")
        elif controller == "memory":
            self.memory_folder = folder

    def set_limits(self, nproc: int, memory_bytes: int) -> None:
        """The pids and memory limits (of the one child that runs in the group at a time)."""
        if self.limits == (nproc, memory_bytes):
            return
        for folder in self.folders:
            if os.path.exists(os.path.join(folder, "pids.max")):
                _write(folder, "pids.max", str(nproc))
        if self.memory_folder is not None:
            memory = str(memory_bytes)
            if self.version == 1:
                with contextlib.suppress(OSError):  # memsw must stay >= the limit: lower it first
                    _write(self.memory_folder, "memory.memsw.limit_in_bytes", "-1")
                _write(self.memory_folder, "memory.limit_in_bytes", memory)
                with contextlib.suppress(OSError):  # no swap accounting on some kernels
                    _write(self.memory_folder, "memory.memsw.limit_in_bytes", memory)
            else:
                _write(self.memory_folder, "memory.max", memory)
                with contextlib.suppress(OSError):
                    _write(self.memory_folder, "memory.swap.max", "0")
        self.limits = (nproc, memory_bytes)

    def usage(self) -> float | None:
        """CPU seconds used by the group's processes since it was made (None: not counted here)."""
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

    def oom_kills(self) -> int:
        """How many processes of the group the kernel killed at its memory limit, so far."""
        if self.memory_folder is None:
            return 0
        name = "memory.oom_control" if self.version == 1 else "memory.events"
        try:
            for line in Path(self.memory_folder, name).read_text().splitlines():
                key, _, value = line.partition(" ")
                if key == "oom_kill":
                    return int(value)
        except (OSError, ValueError):
            return 0
        return 0

    def memory_bytes(self) -> int:
        """The memory charged to the group now (0 where not counted)."""
        if self.memory_folder is None:
            return 0
        name = "memory.usage_in_bytes" if self.version == 1 else "memory.current"
        try:
            return int(Path(self.memory_folder, name).read_text().strip())
        except (OSError, ValueError):
            return 0

    def procs(self) -> list[int]:
        return sorted({p for folder in self.folders for p in _procs(folder)})

    def kill_all(self, keep: set[int] | None = None, wait: float = 2.0) -> None:
        """Kill every process of the group but ``keep``, until none is left (or ``wait`` seconds)."""
        end = time.monotonic() + wait
        while True:
            left = [p for p in self.procs() if p not in (keep or set())]
            if not left or time.monotonic() > end:
                return
            for pid in left:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.001)

    def remove(self) -> None:
        """Kill what is left in the groups and remove them (only in the process that made them)."""
        if self.owner == os.getpid():
            for folder in self.folders:
                _remove(folder)
        self.folders = []
        _OPEN.discard(self)


_SLOTS: dict[tuple[int, int], SlotCgroup] = {}  # (process, slot) -> its group


def slot_group(layout: Layout | None, slot: int) -> SlotCgroup | None:
    """The group of worker slot ``slot`` of this process, made on first use (None: no cgroups, or
    the group cannot be made)."""
    if layout is None:
        return None
    key = (os.getpid(), slot)
    group = _SLOTS.get(key)
    if group is None or not group.folders:
        try:
            group = SlotCgroup(layout, f"{os.getpid()}-slot{slot}-{uuid.uuid4().hex[:8]}")
        except OSError:
            return None
        _SLOTS[key] = group
        _at_worker_exit()
    return group


class ChildCgroup:
    """One child's share of its slot's group (a no-op where ``layout`` is None): the child's CPU time
    and memory kills are what the group counted since the child started. ``base_memory``: bytes the
    group holds for the child's parent (a zygote's preloaded libraries), added to the limit;
    ``keep``: that parent's processes, never killed for a child."""

    def __init__(
        self,
        layout: Layout | None,
        nproc: int,
        memory_mb: int,
        slot: int = 0,
        base_memory: int = 0,
        keep: set[int] | None = None,
    ) -> None:
        self.version = 0 if layout is None else layout.version
        self.group = slot_group(layout, slot)
        self.private = False
        if self.group is not None and self.group.busy:  # a second child of one slot at a time: its own
            try:
                self.group = SlotCgroup(layout, f"{os.getpid()}-child-{uuid.uuid4().hex[:12]}")  # type: ignore[arg-type]
                self.private = True
            except OSError:
                self.group = None
        self.cpu0, self.oom0 = 0.0, 0
        if self.group is None:
            return
        try:
            self.group.kill_all(keep)  # nothing of an earlier child may share its limits
            self.group.set_limits(nproc, memory_mb * 2**20 + base_memory)
        except OSError:
            self.group = None
            return
        self.group.busy = True
        self.cpu0, self.oom0 = self.group.usage() or 0.0, self.group.oom_kills()

    @property
    def folders(self) -> list[str]:
        return [] if self.group is None else list(self.group.folders)

    def enter(self) -> None:
        """Called in the child between fork and exec: it and all it starts count here."""
        pid = str(os.getpid())
        for folder in self.folders:
            with open(os.path.join(folder, "cgroup.procs"), "w") as fh:
                fh.write(pid)

    def cpu_seconds(self) -> float | None:
        """CPU time used by the child's processes so far, in seconds (None: not counted here)."""
        used = None if self.group is None else self.group.usage()
        return None if used is None else max(used - self.cpu0, 0.0)

    def out_of_memory(self) -> bool:
        """Whether the kernel killed a process of the child for going over its memory limit."""
        return self.group is not None and self.group.oom_kills() > self.oom0

    def close(self, keep: set[int] | None = None) -> None:
        """Kill what the child left in the group (``keep``: the slot's zygote)."""
        if self.group is None:
            return
        self.group.kill_all(keep)
        self.group.busy = False
        if self.private:
            self.group.remove()
        self.group = None


def close_all() -> None:
    """Remove every group this process made (at its exit; a pool's worker too), and any that its
    workers (killed, or gone without cleaning up) left behind."""
    for group in list(_OPEN):
        group.remove()
    _SLOTS.clear()
    if detect.cache_info().currsize:
        layout = detect()
        if layout is not None:
            sweep_stale(layout)


atexit.register(close_all)
_FINALIZER: list[int] = []  # the processes whose multiprocessing finalizer is registered


def _at_worker_exit() -> None:
    """A pool's worker ends through multiprocessing, which runs no atexit handler but its own
    finalizers (cleared in each new worker): register one there too."""
    if os.getpid() not in _FINALIZER:
        _FINALIZER.append(os.getpid())
        multiprocessing.util.Finalize(None, close_all, exitpriority=100)
