"""OUTSIDE the sandbox (the grader's side): one zygote per worker slot, and a child forked from it.

A zygote (:mod:`autograder.sandbox.zygote`, which runs inside) lives in a bubblewrap sandbox of its
own, started once per worker slot, moved into the slot's control groups once (its children are born
there: no move per child) and restarted every :data:`RESTART_EVERY` jobs, so that the memory layout
of the preloaded libraries and the string-hash seed it shares with its children rotate. The grader
hands it one child at a time: the request file, a response pipe, the stderr file, a status pipe
and a kill pipe, sent as descriptors over a ``SOCK_SEQPACKET`` socket; it never sees a request's
contents. :class:`ZygoteProcess` is the grader's handle on that child, in the shape of a
``subprocess.Popen`` that :class:`autograder.sandbox.protocol.Child` reads and stops.

A zygote that cannot start, or whose first child cannot make its namespaces, is given up for the
life of the process (the slot goes on with fresh bubblewrap children).
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from autograder.sandbox import cgroups
from autograder.sandbox.confine import (
    GRADER,
    INSIDE_UID,
    SANDBOX,
    Limits,
    SandboxMode,
    bwrap_base,
    child_env,
    child_sys_path,
    seccomp_filter,
    system_layout,
)

RESTART_EVERY = 50  # jobs per zygote
READY_TIMEOUT = 60.0  # seconds for a zygote to start (bubblewrap, Python, numpy): not a student's time
ZYGOTE = Path(__file__).resolve().with_name("zygote.py")
_ZYGOTES: dict[tuple[int, int], Zygote] = {}  # (process, slot) -> its zygote
_BROKEN: dict[int, str] = {}  # process -> why its zygotes were given up


class ZygoteError(Exception):
    """A zygote could not start or fork a child (the grader's problem: fresh children instead)."""


class Zygote:
    """The zygote of one worker slot (see the module docstring)."""

    # a command the zygote's bubblewrap runs under (``strace``): tools/measure_syscalls.py only
    wrapper: Callable[[], list[str]] | None = None

    def __init__(
        self, mode: SandboxMode, release: Path, runner: Path, wire: Path, slot: int, uid: int | None
    ):
        self.mode, self.release, self.runner, self.wire = mode, release, runner, wire
        self.slot, self.uid = slot, uid
        self.jobs = 0
        self.group = cgroups.slot_group(mode.cgroup, slot)
        if self.group is None:
            raise ZygoteError("no control group for the slot")
        self.group.kill_all()  # nothing may be left of an earlier zygote or child
        self.group.set_limits(64, 2**40)  # the zygote starting: each child sets its own below
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.sock = ours
        self.stderr = tempfile.TemporaryFile()  # noqa: SIM115
        program = seccomp_filter(zygote=True) if mode.seccomp else None
        seccomp = tempfile.TemporaryFile()  # noqa: SIM115
        if program:
            seccomp.write(program)
            seccomp.seek(0)
        argv = bwrap_base(mode.bwrap or "bwrap", 1, zygote=True)
        argv += [
            "--ro-bind",
            str(runner),
            f"{GRADER}/_runner.py",
            "--ro-bind",
            str(wire),
            f"{GRADER}/wire.py",
        ]
        argv += [
            "--ro-bind",
            str(ZYGOTE),
            f"{GRADER}/_zygote.py",
            "--ro-bind",
            str(release),
            f"{GRADER}/cnnlab",
        ]
        for key, value in child_env(SANDBOX).items():
            argv += ["--setenv", key, value]
        if program:
            argv += ["--seccomp", str(seccomp.fileno())]
        argv += ["--", os.path.realpath(sys.executable), "-I", "-S", "-B", f"{GRADER}/_zygote.py"]
        argv.append(str(theirs.fileno()))
        argv = (self.wrapper() if self.wrapper else []) + argv
        group = self.group

        def preexec() -> None:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGKILL, 0, 0, 0)  # dies with the worker
            for folder in group.folders:  # the one move: its children are born in the group
                with open(os.path.join(folder, "cgroup.procs"), "w") as fh:
                    fh.write(str(os.getpid()))
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            if uid is not None:
                os.setgroups([])
                os.setgid(uid)
                os.setuid(uid)

        try:
            self.proc = subprocess.Popen(
                argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.stderr,
                env={}, start_new_session=True, close_fds=True, preexec_fn=preexec,
                pass_fds=(theirs.fileno(), seccomp.fileno()),
            )  # fmt: skip
        except OSError as exc:
            raise ZygoteError(f"bubblewrap did not start: {exc}") from exc
        finally:
            theirs.close()
            seccomp.close()
        try:
            self._setup()
        except BaseException:
            self.close()
            raise
        self.keep = set(self.group.procs())  # bubblewrap, its init and the zygote: never killed per job
        self.base_memory = self.group.memory_bytes()

    def _setup(self) -> None:
        binds, links = system_layout()
        release = f"{GRADER}/cnnlab"  # the runner and the zygote's code are loaded: not there
        rules = [*child_sys_path(), *binds, release]
        setup = {
            "path": child_sys_path(),
            "inside_uid": INSIDE_UID,
            "binds": [*binds, release],
            "symlinks": links,
            "landlock": {"read": rules},
            "seccomp": ((seccomp_filter() if self.mode.seccomp else None) or b"").hex(),
            "preload": stdlib_imports(self.release),
        }
        try:
            self.sock.sendall(json.dumps(setup).encode())
            ready, _, _ = select.select([self.sock], [], [], READY_TIMEOUT)
            answer = self.sock.recv(1 << 16) if ready else b""
        except OSError:
            answer = b""
        if answer != b'{"kind": "ready"}':
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=1)
            self.stderr.seek(0)
            tail = self.stderr.read()[-500:].decode(errors="replace").strip()
            raise ZygoteError(f"the zygote did not start: {tail or 'no answer'}")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def spawn(self, request: Path, stderr: Path, limits: Limits) -> ZygoteProcess:
        """Fork one child that reads ``request`` and writes its frames to a pipe (its handle)."""
        self.jobs += 1
        response_r, response_w = os.pipe()
        status_r, status_w = os.pipe()
        kill_r, kill_w = os.pipe()
        req = os.open(request, os.O_RDONLY)
        err = os.open(stderr, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        memory = limits.memory_mb * 2**20
        job = {
            "disk_bytes": limits.disk_mb * 2**20,
            "rlimits": {
                "RLIMIT_AS": memory,
                "RLIMIT_FSIZE": limits.fsize_mb * 2**20,
                "RLIMIT_CORE": 0,
                "RLIMIT_CPU": int(limits.timeout) + 5,
                "RLIMIT_NOFILE": limits.nofile,
            },
        }
        try:
            socket.send_fds(self.sock, [json.dumps(job).encode()], [req, response_w, err, status_w, kill_r])
        except OSError as exc:
            for fd in (response_r, status_r, kill_w):
                os.close(fd)
            raise ZygoteError(f"the zygote does not answer: {exc}") from exc
        finally:
            for fd in (req, response_w, err, status_w, kill_r):
                os.close(fd)
        return ZygoteProcess(os.fdopen(response_r, "rb", buffering=0), status_r, kill_w)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()
        proc = getattr(self, "proc", None)
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        if self.group is not None:
            self.group.kill_all()
        self.stderr.close()


def stdlib_imports(package: Path) -> list[str]:
    """The standard-library modules the released package's sources import (read, never run): the
    zygote preloads them, so that no child imports them again."""
    import ast

    found: set[str] = set()
    for source in sorted([*Path(package).glob("*.py"), *Path(package).glob("*/*.py")]):  # and _internal/
        try:
            tree = ast.parse(source.read_bytes())
        except (OSError, SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module]
            found |= {n for n in names if n.split(".")[0] in sys.stdlib_module_names}
    return sorted(found)


class ZygoteProcess:
    """The grader's handle on one zygote child, shaped like the ``Popen`` that ``Child`` expects:
    ``stdout`` (its frames), ``kill`` (the monitor kills its PID namespace) and ``wait`` (its wait
    status, from the monitor). ``pid`` is None: it lives in other PID namespaces."""

    pid = None

    def __init__(self, stdout: Any, status_fd: int, kill_fd: int) -> None:
        self.stdout = stdout
        self.status_fd, self.kill_fd = status_fd, kill_fd
        self.returncode: int | None = None

    def kill(self) -> None:
        if self.kill_fd >= 0:
            with contextlib.suppress(OSError):
                os.write(self.kill_fd, b"k")
            os.close(self.kill_fd)
            self.kill_fd = -1

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is not None:
            return self.returncode
        end = time.monotonic() + (10.0 if timeout is None else timeout)
        data = b""
        while time.monotonic() < end:
            ready, _, _ = select.select([self.status_fd], [], [], max(end - time.monotonic(), 0))
            if not ready:
                break
            chunk = os.read(self.status_fd, 64)
            if not chunk:
                break
            data += chunk
        os.close(self.status_fd)
        try:
            self.returncode = os.waitstatus_to_exitcode(int(data))
        except ValueError:
            self.returncode = -signal.SIGKILL  # the monitor itself was killed (its slot's group)
        return self.returncode


def zygote_for(
    mode: SandboxMode, release: Path, runner: Path, wire: Path, slot: int, uid: int | None
) -> Zygote | None:
    """The running zygote of this process's slot (started or restarted as needed), or None where
    zygotes do not work here (then why is in :func:`broken`)."""
    pid = os.getpid()
    if not mode.zygote or pid in _BROKEN:
        return None
    key = (pid, slot)
    zygote = _ZYGOTES.get(key)
    if zygote is not None and (
        zygote.jobs >= RESTART_EVERY or not zygote.alive() or zygote.release != release
    ):
        discard(slot)
        zygote = None
    if zygote is None:
        try:
            zygote = Zygote(mode, release, runner, wire, slot, uid)
        except (ZygoteError, OSError) as exc:
            give_up(str(exc))
            return None
        _ZYGOTES[key] = zygote
        _at_exit()
    return zygote


def discard(slot: int) -> None:
    """Stop this slot's zygote (after a child crashed or timed out: the next job starts a new one)."""
    zygote = _ZYGOTES.pop((os.getpid(), slot), None)
    if zygote is not None:
        zygote.close()


def give_up(why: str) -> None:
    """No more zygotes in this process: fresh children from now on (said once, on stderr)."""
    if os.getpid() not in _BROKEN:
        with contextlib.suppress(OSError, ValueError):
            print(
                f"note: no zygote in grading worker {os.getpid()} ({why[:300]}): fresh children",
                file=sys.stderr,
            )
    _BROKEN[os.getpid()] = why
    for pid, slot in list(_ZYGOTES):
        if pid == os.getpid():
            discard(slot)


def own_pids() -> set[int]:
    """The bubblewrap processes of this process's running zygotes (its direct children)."""
    return {z.proc.pid for (pid, _), z in _ZYGOTES.items() if pid == os.getpid() and z.alive()}


def broken() -> str | None:
    return _BROKEN.get(os.getpid())


def close_all() -> None:
    for pid, slot in list(_ZYGOTES):
        if pid == os.getpid():
            discard(slot)


_REGISTERED: list[int] = []


def _at_exit() -> None:
    if os.getpid() not in _REGISTERED:
        _REGISTERED.append(os.getpid())
        import multiprocessing.util

        multiprocessing.util.Finalize(None, close_all, exitpriority=200)  # before the cgroups (100)


atexit.register(close_all)
