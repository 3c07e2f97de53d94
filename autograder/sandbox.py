"""Run a student's task functions in a sandboxed child process (the parent side of ``child.py``).

:func:`run_tasks` starts ``python -I -S -B _runner.py`` (:mod:`autograder.child`) in a fresh sandbox
folder made by :func:`prepare_sandbox` (a copy of the released ``cnnlab/`` with only the manifest's
student-editable files taken from the submission, and a pristine released copy in ``.release/``),
sends it the inputs, and collects what the student's functions returned, case by case, as data
(JSON and ``.npy`` bytes, never pickles). Comparing with the reference is the caller's business
(:func:`autograder.cases.grade_runs`): nothing the child does can change how it is judged.

Confinement of the child:

* a new session (killed as a group), ``PR_SET_PDEATHSIG`` (dies with its parent), a minimal
  environment, stdout/stderr on ``/dev/null``, ``RLIMIT_AS`` (``memory_mb``), ``RLIMIT_FSIZE``,
  ``RLIMIT_NOFILE``, no core files, one BLAS thread;
* Landlock when the kernel has it (:func:`sandbox_mode`): the child may read the Python
  installation and system libraries only (not the repository, not the course, not ``/tmp``),
  write only its sandbox folder, open no TCP connection, signal or trace nothing outside;
* as root, a dedicated user id per worker when the interpreter is readable by other users
  (``setgid``/``setuid``, ``RLIMIT_NPROC``); otherwise the child stays uid 0 but drops every
  capability for good (it then owns root's files, which is why Landlock is required then);
* a wall-clock budget (``timeout``) shared by the submission's tasks: a task gets the time the
  earlier tasks left, divided by the tasks still to run; a task that overruns it, crashes or
  corrupts the protocol is recorded with the cases finished so far and the next tasks run in a
  new child.
"""

from __future__ import annotations

import ctypes
import os
import resource
import select
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from autograder import child as wire

RUNNER = Path(wire.__file__).resolve()
STARTUP_TIMEOUT = 60.0  # seconds for Python + numpy to start in the child (not the student's time)
UID_BASE = 64000  # dedicated user ids for children, when running as root: UID_BASE + worker slot
_PR_SET_PDEATHSIG, _PR_SET_CHILD_SUBREAPER = 1, 36
_LIBC = ctypes.CDLL(None, use_errno=True)


@dataclass
class Limits:
    """Resource limits of one submission's child processes."""

    timeout: float = 60.0  # wall-clock seconds for all of a submission's tasks (import included)
    memory_mb: int = 1024  # RLIMIT_AS
    fsize_mb: int = 64  # RLIMIT_FSIZE: largest file the child may write
    output_mb: int = 64  # bytes the child may send back, in all
    nofile: int = 256  # RLIMIT_NOFILE
    nproc: int = 64  # RLIMIT_NPROC (only with a dedicated user id)
    task_budget: float = 20.0  # cases not started after this many seconds of a task fail (as in nbgrader)


@dataclass
class SandboxMode:
    """How children are confined on this machine (see :func:`sandbox_mode`)."""

    landlock: int  # Landlock ABI, 0 if none
    uid: int | None  # dedicated user id base (root only), None to keep the grader's uid
    drop_caps: bool  # root without a dedicated uid: drop every capability
    confined: bool  # whether file writes outside the sandbox are impossible
    description: str


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
    status: str = "ok"
    error: str | None = None  # import error / missing function / crash description
    stopped_at: int | None = None  # cases run before a time limit stopped the task
    seconds: float = 0.0


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


# --------------------------------------------------------------------------- the machine


def _prefixes() -> list[str]:
    """The Python installation: interpreter, standard library, site-packages (real paths)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths |= {sysconfig.get_path(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return sorted({os.path.realpath(p) for p in paths if p})


def child_sys_path() -> list[str]:
    """The child's ``sys.path`` after its sandbox folder: the entries of ours that lie inside the
    Python installation (standard library and site-packages; never the repository)."""
    prefixes = [p + os.sep for p in _prefixes()]
    out = []
    for p in sys.path:
        real = os.path.realpath(p) if p else ""
        if real and any((real + os.sep).startswith(pre) for pre in prefixes) and real not in out:
            out.append(real)
    for key in ("purelib", "platlib"):
        site = os.path.realpath(sysconfig.get_path(key))
        if site not in out:
            out.append(site)
    return out


def _readable_by_others(path: str) -> bool:
    """Whether every folder above ``path`` can be traversed and ``path`` read by any user."""
    p = Path(path).resolve()
    try:
        for parent in reversed(p.parents):
            if not parent.stat().st_mode & stat.S_IXOTH:
                return False
        mode = p.stat().st_mode
    except OSError:
        return False
    return bool(mode & stat.S_IROTH) and (not stat.S_ISDIR(mode) or bool(mode & stat.S_IXOTH))


def _free_uids(base: int, count: int = 64) -> bool:
    """Whether no user or group has an id in ``base .. base + count - 1``."""
    import grp
    import pwd

    taken = {u.pw_uid for u in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    return not taken & set(range(base, base + count))


def sandbox_mode(uid_base: int = UID_BASE) -> SandboxMode:
    """What confinement this machine allows (printed by the batch grader)."""
    abi = wire.landlock_abi()
    is_root = os.geteuid() == 0
    interpreter_public = all(
        _readable_by_others(p) for p in [os.path.realpath(sys.executable), *child_sys_path()]
    )
    uid = uid_base if is_root and interpreter_public and _free_uids(uid_base) else None
    parts = []
    if abi:
        parts.append(
            f"Landlock ABI {abi} (reads: Python and system libraries only; writes: its sandbox folder only"
            + ("; no TCP" if abi >= 4 else "")
            + ("; no signals outside" if abi >= 6 else "")
            + ")"
        )
    if uid is not None:
        parts.append(f"dedicated user ids {uid}+ (no capabilities, RLIMIT_NPROC)")
    elif is_root:
        why = (
            "the Python installation is not readable by other users"
            if not interpreter_public
            else "user ids taken"
        )
        parts.append(f"uid 0 with every capability dropped ({why}: no dedicated user id)")
    confined = bool(abi) or uid is not None
    if not confined:
        parts.append("NO SANDBOX: student code can write wherever the grader can (no Landlock, not root)")
    return SandboxMode(abi, uid, is_root and uid is None, confined, "; ".join(parts))


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


# --------------------------------------------------------------------------- the sandbox folder


def prepare_sandbox(
    folder: Path, release_pkg: Path, submission: Path | None, editable: list[str], max_file: int = 4 * 2**20
) -> list[str]:
    """Fill ``folder`` (created empty): ``cnnlab/`` is the released package with the student's
    versions of ``editable`` (paths like ``cnnlab/conv.py``) from ``submission``; ``.release/cnnlab``
    is the released package untouched; ``_runner.py`` the child. Returns problems with the student's
    files (missing, not a regular file, too large): such a file is simply absent, as in nbgrader."""
    problems = []
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    shutil.copytree(release_pkg, folder / ".release" / "cnnlab", ignore=ignore)
    shutil.copytree(release_pkg, folder / "cnnlab", ignore=ignore)
    for rel in editable:
        target = folder / rel
        target.unlink(missing_ok=True)
        source = None if submission is None else submission / rel
        if source is None or not os.path.lexists(source):
            problems.append(f"{rel} is missing from the submission")
            continue
        info = os.lstat(source)
        if not stat.S_ISREG(info.st_mode):
            problems.append(f"{rel} is not a regular file (a link or a folder): ignored")
            continue
        if info.st_size > max_file:
            problems.append(f"{rel} is larger than {max_file // 2**20} MB: ignored")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, target)
    shutil.copyfile(RUNNER, folder / "_runner.py")
    (folder / "tmp").mkdir()
    return problems


def _chown_tree(folder: Path, uid: int, gid: int) -> None:
    for dirpath, dirnames, filenames in os.walk(folder):
        os.chown(dirpath, uid, gid)
        for name in dirnames + filenames:
            os.chown(os.path.join(dirpath, name), uid, gid, follow_symlinks=False)


# --------------------------------------------------------------------------- running the child


@dataclass
class TaskSpec:
    """One task to run: its function and its cases (argument tuples)."""

    task_id: str
    module: str
    function: str
    cases: list[tuple[Any, ...]]


class _Child:
    """One child process and the frames it has sent."""

    def __init__(
        self, folder: Path, private: Path, request: bytes, limits: Limits, mode: SandboxMode, slot: int
    ):
        self.limits = limits
        (private / "request.bin").write_bytes(request)
        stdin = open(private / "request.bin", "rb")  # noqa: SIM115
        stderr = open(private / "stderr.txt", "wb")  # noqa: SIM115
        uid = None if mode.uid is None else mode.uid + slot
        env = {
            "PATH": "/usr/bin:/bin",
            "HOME": str(folder),
            "TMPDIR": str(folder / "tmp"),
            "MPLCONFIGDIR": str(folder / "tmp"),
            "MPLBACKEND": "Agg",
            "OPENBLAS_NUM_THREADS": "1",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "LANG": "C.UTF-8",
        }
        memory = limits.memory_mb * 2**20
        fsize = limits.fsize_mb * 2**20

        def preexec() -> None:
            _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
            resource.setrlimit(resource.RLIMIT_NOFILE, (limits.nofile, limits.nofile))
            if uid is not None:
                resource.setrlimit(resource.RLIMIT_NPROC, (limits.nproc, limits.nproc))

        if uid is not None:
            _chown_tree(folder, uid, uid)
        kwargs: dict[str, Any] = {}
        if uid is not None:
            kwargs = {"user": uid, "group": uid, "extra_groups": []}
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-S", "-B", str(folder / "_runner.py")],
                stdin=stdin,
                stdout=subprocess.PIPE,
                stderr=stderr,
                cwd=folder,
                env=env,
                start_new_session=True,
                preexec_fn=preexec,
                close_fds=True,
                **kwargs,
            )
        finally:
            stdin.close()
            stderr.close()
        self.private = private
        self.reader = wire.FrameReader(wire.MAX_FRAME)
        self.received = 0
        self.frames: list[tuple[dict[str, Any], list[bytes]]] = []
        self.eof = False

    def read(self, deadline: float) -> str:
        """Read until a frame arrives, EOF or ``deadline``: ``frame``, ``eof``, ``timeout`` or
        ``overflow`` (more than ``output_mb`` in all, or a malformed frame)."""
        fd = self.proc.stdout.fileno()  # type: ignore[union-attr]
        while not self.frames:
            if self.eof:
                return "eof"
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
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
            except wire.ProtocolError:
                return "overflow"
        return "frame"

    def pop(self) -> tuple[dict[str, Any], list[bytes]]:
        return self.frames.pop(0)

    def stop(self) -> str:
        """Kill the child's whole session; returns how it ended, e.g. ``exit status 3``."""
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            code = self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            code = self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        if code < 0:
            try:
                return f"killed by {signal.Signals(-code).name}"
            except ValueError:
                return f"killed by signal {-code}"
        return f"exit status {code}"

    def stderr_tail(self) -> str:
        try:
            data = (self.private / "stderr.txt").read_bytes()[-1500:]
        except OSError:
            return ""
        return data.decode(errors="replace").strip()


def _request(
    folder: Path,
    tasks: list[TaskSpec],
    mode: SandboxMode,
    limits: Limits,
    own: dict[str, list[str]],
    import_modules: list[str],
    isolated: list[str],
) -> bytes:
    blobs: list[bytes] = []
    task_list = []
    for t in tasks:
        cases = []
        for args in t.cases:
            cases.append(wire.encode(list(args), blobs))  # a fresh memo per case: cases share nothing
        task_list.append(
            {
                "id": t.task_id,
                "module": t.module,
                "function": t.function,
                "cases": cases,
                "budget": limits.task_budget,
            }
        )
    header: dict[str, Any] = {
        "sandbox": str(folder),
        "path": child_sys_path(),
        "tasks": task_list,
        "task_functions": own,
        "import_modules": import_modules,
        "isolated_modules": isolated,
        "drop_caps": mode.drop_caps,
        "landlock": None,
    }
    if mode.landlock:
        system = ["/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/etc/ld.so.cache"]
        system += ["/usr/share/fonts", "/usr/share/zoneinfo", "/etc/localtime"]
        header["landlock"] = {
            "read": [*_prefixes(), *header["path"], *system],
            "write": [str(folder)],
            "devices": ["/dev/null", "/dev/zero", "/dev/urandom"],
        }
    return wire.pack(header, blobs)


def run_tasks(
    folder: Path,
    private: Path,
    tasks: list[TaskSpec],
    own: dict[str, list[str]],
    import_modules: list[str],
    isolated: list[str],
    limits: Limits,
    mode: SandboxMode,
    slot: int = 0,
) -> tuple[list[TaskOutcome], dict[str, Any]]:
    """Run ``tasks`` (in order) in children confined to ``folder``; ``private`` is a folder of the
    parent's for the request and the child's stderr. Returns an outcome per task and facts about
    the sandbox (``hello``: what the child reported, ``children``: how many ran)."""
    outcomes = {t.task_id: TaskOutcome(t.task_id) for t in tasks}
    remaining = list(tasks)
    budget = limits.timeout
    info: dict[str, Any] = {"children": 0}
    while remaining:
        info["children"] += 1
        request = _request(folder, remaining, mode, limits, own, import_modules, isolated)
        child = _Child(folder, private, request, limits, mode, slot)
        current: TaskOutcome | None = None
        phase, deadline, started = "start", time.monotonic() + STARTUP_TIMEOUT, time.monotonic()
        ended = None
        try:
            while True:
                status = child.read(deadline)
                if status != "frame":
                    ended = status
                    break
                header, blobs = child.pop()
                kind = header.get("kind")
                now = time.monotonic()
                if kind in ("hello", "importing", "fatal") and phase != "start":
                    ended = "protocol"  # only the runner sends these, before any student code runs
                    break
                if kind == "hello":
                    info["hello"] = header
                elif kind == "fatal":
                    ended = "fatal: " + str(header.get("error"))[:500]
                    break
                elif kind == "importing":
                    phase, started, deadline = "import", now, now + budget
                elif kind == "import_error":
                    for t in remaining:
                        o = outcomes[t.task_id]
                        o.status = "memory" if header.get("memory") is True else "import_error"
                        o.error = str(header.get("error"))[:2000]
                    remaining = []
                    break
                elif kind == "task_start":
                    if phase == "import":
                        budget -= now - started
                    tid = header.get("task")
                    if phase not in ("import", "between") or not remaining or tid != remaining[0].task_id:
                        ended = "protocol"
                        break
                    current = outcomes[tid]
                    phase, started = "task", now
                    deadline = now + max(budget, 0.0) / len(remaining)
                elif kind == "case" and current is not None and header.get("task") == current.task_id:
                    if header.get("index") != len(current.cases):
                        ended = "protocol"
                        break
                    current.cases.append(_case(header, blobs, limits))
                elif kind == "task_missing" and current is not None:
                    current.status, current.error = "missing", str(header.get("error"))[:2000]
                elif kind == "stopped" and current is not None:
                    current.status, current.stopped_at = "budget", len(current.cases)
                elif kind == "task_end" and current is not None and header.get("task") == current.task_id:
                    current.seconds = now - started
                    budget -= now - started
                    remaining.pop(0)
                    current, phase = None, "between"
                    deadline = now + max(budget, 0.0)
                elif kind == "done":
                    break
                else:
                    ended = "protocol"
                    break
        finally:
            how = child.stop()
        if ended is None and remaining:
            ended = "protocol"  # "done" before every task ended: never run the same tasks again
        if ended is None:
            break  # done, or an import error: nothing left to run
        tail = child.stderr_tail()
        if phase == "start" or ended.startswith("fatal"):
            # Python never got to the student's code: the grader's problem, not the student's
            why = ended if ended.startswith("fatal") else f"the child did not start ({how}): {tail[-300:]}"
            for t in remaining:
                outcomes[t.task_id].status, outcomes[t.task_id].error = "grader", why
            break
        what = {"timeout": "timeout", "eof": "crashed", "overflow": "protocol", "protocol": "protocol"}[ended]
        if phase == "import":
            for t in remaining:
                o = outcomes[t.task_id]
                o.status = what
                o.error = _describe(what, how, limits, "while importing your cnnlab package")
            break
        victim = current if current is not None else outcomes[remaining[0].task_id]
        victim.status = what
        victim.stopped_at = len(victim.cases)
        victim.error = _describe(what, how, limits, f"during case {len(victim.cases) + 1}")
        victim.seconds = time.monotonic() - started
        budget -= victim.seconds
        remaining = [t for t in remaining if t.task_id != victim.task_id]
    return [outcomes[t.task_id] for t in tasks], info


def _describe(what: str, how: str, limits: Limits, where: str) -> str:
    if what == "timeout":
        return f"the time limit ({limits.timeout:g} s for the submission) ran out {where} (an endless loop?)"
    if what == "crashed":
        return (
            f"your code ended the grading process {where} "
            f"({how}; os._exit, a crash, or the memory limit of {limits.memory_mb} MB?)"
        )
    return f"the grading process sent output the grader cannot read {where} ({how})"


def _case(header: dict[str, Any], blobs: list[bytes], limits: Limits) -> tuple[Any, Any]:
    """One case's (value, args_after), decoded; an undecodable value is :class:`Unreadable`."""
    cap = limits.output_mb * 2**20
    cache: dict[int, Any] = {}
    try:
        args_after = (
            None if header.get("args_after") is None else wire.decode(header["args_after"], blobs, cache, cap)
        )
    except (wire.ProtocolError, RecursionError) as exc:
        return Unreadable(f"arguments unreadable: {exc}"), None
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
    except (wire.ProtocolError, RecursionError) as exc:
        return Unreadable(str(exc)[:500]), args_after
