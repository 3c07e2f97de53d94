"""How a child is confined on this machine, and the command and process settings that do it.

Layers, each a well-known mechanism, all applied before any student code runs:

1. **bubblewrap** (``bwrap``, Debian package ``bubblewrap``): new user, PID, network, IPC, UTS and
   cgroup namespaces; an unprivileged uid/gid inside; every capability dropped; dies with its parent;
   a new session. The root file system is empty but for read-only binds of the system libraries, the
   Python installation and ``/grader`` (the runner and the released ``cnnlab``); the only writable
   place is ``/sandbox``, a fresh size-limited tmpfs per child. Nothing of the course root is mounted.
   Run by root where the Python installation is readable by other users, bubblewrap itself runs as
   the slot's unprivileged host uid (``UID_BASE + slot``), so uid 1000 inside is no host root.
   Where nested user namespaces work, a zygote per worker slot (:mod:`.zygotes`) lives in one such
   sandbox and forks every child into namespaces and a root of its own (:mod:`.zygote`).
2. **seccomp** (libseccomp through ``pyseccomp``): no sockets (but AF_UNIX socketpairs), no ptrace,
   ``process_vm_*``, ``prlimit`` of another process, mount, bpf, keyctl, namespaces, io_uring, module
   loading; no change of file modes, owners, times or extended attributes. Handed to bubblewrap
   (``--seccomp``), or installed by the runner itself where bubblewrap cannot run.
3. **Landlock** (the runner, Linux >= 5.13): reads only the Python installation, the system libraries
   and the release; writes only its sandbox folder; no TCP; no signals outside (ABI >= 6).
4. **Limits**: RLIMIT_AS, CPU, FSIZE, NOFILE, NPROC, CORE=0 on every child; the worker slot's
   ``pids``, ``cpu`` and ``memory`` cgroups where the grader may make them (:mod:`.cgroups`: a fork
   bomb stays inside, one core at most, shared memory counted); the tmpfs size bounds the disk;
   the wall-clock limit kills bubblewrap, and with it the child's whole PID namespace. In the
   fallback (no tmpfs) the parent watches the child's folder and stops it past ``disk_mb``.

Where bubblewrap cannot make namespaces (unprivileged containers, Ubuntu's
``apparmor_restrict_unprivileged_userns``), :func:`sandbox_mode` says so with the fix and falls back to
seccomp + Landlock + rlimits + a dedicated uid (as root, when the Python installation is readable by
other users). With none of these the batch grader refuses to run unless ``--allow-unconfined``.
"""

from __future__ import annotations

import ctypes
import functools
import os
import resource
import shutil
import signal
import stat
import subprocess
import sys
import sysconfig
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from autograder.sandbox import cgroups, child, syscalls
from autograder.sandbox.cgroups import ChildCgroup

UID_BASE = 64000  # dedicated user ids for fallback children, when running as root: UID_BASE + slot
INSIDE_UID = 1000  # the uid/gid a child has inside bubblewrap's user namespace
SANDBOX = "/sandbox"  # the writable tmpfs inside bubblewrap
GRADER = "/grader"  # read-only: the runner and the released package, inside bubblewrap
SYSTEM_DIRS = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")
SYSTEM_FILES = ("/etc/ld.so.cache", "/etc/localtime")
_PR_SET_PDEATHSIG = 1
_LIBC = ctypes.CDLL(None, use_errno=True)


@dataclass
class Limits:
    """Resource limits of one submission's child processes."""

    timeout: float = 60.0  # CPU seconds of the children for all of a submission's tasks (import included)
    memory_mb: int = 1024  # RLIMIT_AS
    fsize_mb: int = 64  # RLIMIT_FSIZE: largest file the child may write
    disk_mb: int = 64  # size of the writable tmpfs (bubblewrap)
    output_mb: int = 64  # bytes the child may send back, in all
    nofile: int = 256  # RLIMIT_NOFILE
    nproc: int = 64  # processes and threads of one child (pids cgroup; RLIMIT_NPROC with its own uid)
    task_budget: float = 20.0  # cases not started after this many CPU seconds of a task fail (as in nbgrader)


@dataclass
class SandboxMode:
    """How children are confined on this machine (see :func:`sandbox_mode`)."""

    bwrap: str | None  # path of a working bubblewrap, None for the fallback
    seccomp: bool  # a seccomp filter is installed
    landlock: int  # Landlock ABI, 0 if none
    uid: int | None  # fallback: dedicated user id base (root only), None to keep the grader's uid
    drop_caps: bool  # fallback as root without a dedicated uid: drop every capability
    cgroup: cgroups.Layout | None  # where each child gets its control groups, None if nowhere
    confined: bool  # whether student code is kept from the grader's files
    description: str
    advice: list[str] = field(default_factory=list)  # one line each: what is missing and the fix
    zygote: bool = False  # bubblewrap: a preloaded zygote per worker slot forks each child
    host_uid: int | None = None  # bubblewrap: run it as this dedicated host uid (+ slot), None: ours


# --------------------------------------------------------------------------- detection


def _prefixes() -> list[str]:
    """The Python installation: interpreter, standard library, site-packages (real paths)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}
    paths |= {sysconfig.get_path(k) for k in ("stdlib", "platstdlib", "purelib", "platlib")}
    return sorted({os.path.realpath(p) for p in paths if p})


def child_sys_path() -> list[str]:
    """The child's ``sys.path`` after its sandbox folder: the existing entries of ours that lie
    inside the Python installation (standard library and site-packages; never the repository)."""
    return list(_child_sys_path(tuple(sys.path)))


@functools.lru_cache(maxsize=4)
def _child_sys_path(our_path: tuple[str, ...]) -> tuple[str, ...]:
    """:func:`child_sys_path` for one value of ``sys.path`` (asked once per child: worked out once)."""
    prefixes = [p + os.sep for p in _prefixes()]
    out = []
    for p in our_path:
        real = os.path.realpath(p) if p else ""
        if real and os.path.exists(real) and any((real + os.sep).startswith(pre) for pre in prefixes):
            if real not in out:
                out.append(real)
    for key in ("purelib", "platlib"):
        site = os.path.realpath(sysconfig.get_path(key))
        if site not in out and os.path.isdir(site):
            out.append(site)
    return tuple(out)


def readable_by_others(path: str) -> bool:
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
    import grp
    import pwd

    taken = {u.pw_uid for u in pwd.getpwall()} | {g.gr_gid for g in grp.getgrall()}
    return not taken & set(range(base, base + count))


def _system_binds() -> list[str]:
    return [p for p in SYSTEM_DIRS if os.path.isdir(p) and not os.path.islink(p)]


def system_layout() -> tuple[list[str], list[tuple[str, str]]]:
    """What a child sees of the machine: the folders and files bound read-only (system libraries,
    the Python installation), and the merged-/usr links (``/lib -> usr/lib``)."""
    binds, links = [], []
    for path in SYSTEM_DIRS:
        if os.path.islink(path):  # merged /usr: /lib -> usr/lib
            links.append((path, os.readlink(path)))
        elif os.path.isdir(path):
            binds.append(path)
    binds += [p for p in SYSTEM_FILES if os.path.isfile(p)]
    bound = _system_binds()
    for path in sorted(set(_prefixes() + child_sys_path())):
        if os.path.isdir(path) and not any(path.startswith(b + "/") or path == b for b in bound):
            binds.append(path)
            bound.append(path)
    return binds, links


def bwrap_base(bwrap: str, disk_mb: int, zygote: bool = False) -> list[str]:
    """The namespaces, identity and file system every child gets (without the runner's binds).
    ``zygote``: a zygote's sandbox instead, which may make the nested namespaces of its children
    (no ``--disable-userns``) and has no writable folder (each child mounts its own)."""
    argv = [bwrap, "--unshare-all", "--unshare-user", *([] if zygote else ["--disable-userns"])]
    argv += ["--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    argv += ["--uid", str(INSIDE_UID), "--gid", str(INSIDE_UID), "--hostname", "sandbox", "--clearenv"]
    binds, links = system_layout()
    for path, target in links:
        argv += ["--symlink", target, path]
    for path in binds:
        argv += ["--ro-bind", path, path]
    argv += ["--proc", "/proc", "--dev", "/dev"]
    if zygote:
        return [*argv, "--dir", "/zroot", "--chdir", "/"]
    argv += ["--size", str(disk_mb * 2**20), "--tmpfs", SANDBOX, "--chdir", SANDBOX]
    return argv


@functools.lru_cache(maxsize=1)
def _probe_bwrap() -> tuple[str | None, str]:
    """A working ``bwrap`` and ``""``, or ``None`` and why not (with the fix)."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return None, "bubblewrap is not installed (Debian/Ubuntu: apt-get install bubblewrap)"
    argv = [*bwrap_base(bwrap, 1), "--", os.path.realpath(sys.executable), "-I", "-S", "-c", "print(1)"]
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return None, f"bubblewrap does not start ({exc})"
    if run.returncode == 0 and run.stdout.strip() == "1":
        return bwrap, ""
    why = (run.stderr.strip().splitlines() or ["no output"])[-1][:200]
    fix = "user namespaces are disabled"
    if Path("/proc/sys/kernel/apparmor_restrict_unprivileged_userns").exists():
        fix = "Ubuntu restricts user namespaces: sysctl kernel.apparmor_restrict_unprivileged_userns=0"
    elif Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        fix = "in a container: allow user namespaces (e.g. docker run --security-opt seccomp=unconfined)"
    return None, f"bubblewrap cannot make namespaces here ({why}); {fix}"


def seccomp_filter(startup: bool = False, zygote: bool = False) -> bytes | None:
    """The seccomp program of every child (the allow list of :mod:`.syscalls`); ``startup``: the
    one bubblewrap loads, which also lets it start Python; ``zygote``: a zygote's bubblewrap."""
    return syscalls.program(startup, zygote)


@functools.lru_cache(maxsize=1)
def _probe_zygote(bwrap: str) -> str:
    """``""`` where a process in bubblewrap may make the nested namespaces a zygote's child needs,
    else why not."""
    if cgroups.detect() is None:
        return "no cgroups to count a zygote child's CPU time in (not root)"
    code = (
        "import ctypes; l = ctypes.CDLL(None, use_errno=True); "
        "print(l.unshare(0x10000000 | 0x20000000 | 0x00020000 | 0x40000000 | 0x08000000), ctypes.get_errno())"
    )
    argv = [
        *bwrap_base(bwrap, 1, zygote=True),
        "--",
        os.path.realpath(sys.executable),
        "-I",
        "-S",
        "-c",
        code,
    ]
    try:
        run = subprocess.run(argv, capture_output=True, text=True, timeout=30, env={})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"bubblewrap does not start ({exc})"
    if run.returncode == 0 and run.stdout.split()[:1] == ["0"]:
        return ""
    return f"nested user namespaces are refused here ({(run.stdout + run.stderr).strip()[-200:]})"


@functools.lru_cache(maxsize=4)
def sandbox_mode(uid_base: int = UID_BASE, bubblewrap: bool | None = None) -> SandboxMode:
    """What confinement this machine allows (printed by the batch grader, one line of advice per
    missing layer). ``bubblewrap=False`` (or ``CNNLAB_SANDBOX=fallback``) asks for the fallback;
    ``CNNLAB_ZYGOTE=off`` (``--zygote off``) for a fresh bubblewrap per child instead of a zygote."""
    if bubblewrap is None:
        bubblewrap = os.environ.get("CNNLAB_SANDBOX", "") != "fallback"
    bwrap, why_not = _probe_bwrap() if bubblewrap else (None, "bubblewrap not asked for")
    bpf = seccomp_filter()
    abi = child.landlock_abi()
    is_root = os.geteuid() == 0
    cgroup = cgroups.detect()
    advice = []
    parts = []
    interpreter_public = all(
        readable_by_others(p) for p in [os.path.realpath(sys.executable), *child_sys_path()]
    )
    host_uid = uid_base if bwrap and is_root and interpreter_public and _free_uids(uid_base) else None
    why_fresh = _probe_zygote(bwrap) if bwrap else "no bubblewrap"
    if bwrap and os.environ.get("CNNLAB_ZYGOTE", "") == "off":
        why_fresh = "--zygote off"
    if bwrap:
        who = (
            f"host uid {host_uid}+ outside, unprivileged"
            if host_uid is not None
            else f"host uid {os.geteuid()} outside"
            + (
                " (the Python installation is not readable by other users: no unprivileged host uid)"
                if is_root and not interpreter_public
                else ""
            )
        )
        how = (
            "a preloaded zygote per worker slot forks each child into new namespaces and a fresh root"
            if not why_fresh
            else "a fresh bubblewrap per child"
        )
        parts.append(
            f"bubblewrap (user, PID, network, IPC, UTS namespaces; uid 1000 inside, {who}; no "
            f"capabilities; read-only Python and release, a fresh tmpfs per child; {how})"
        )
        if why_fresh:
            advice.append(f"note: no zygote ({why_fresh}): each child starts a fresh bubblewrap")
    else:
        advice.append(f"note: {why_not}: falling back to seccomp + Landlock + rlimits")
    uid = uid_base if not bwrap and is_root and interpreter_public and _free_uids(uid_base) else None
    if bpf:
        n = len(syscalls.ALLOWED)
        parts.append(f"seccomp (an allow list of {n} system calls: no processes, sockets, ...)")
    else:
        advice.append("note: no seccomp filter: pip install pyseccomp (and Debian's libseccomp2)")
    if abi:
        parts.append(f"Landlock ABI {abi}")
    if uid is not None:
        parts.append(f"dedicated user ids {uid}+")
    elif not bwrap and is_root:
        why = "the Python installation is not readable by other users" if not interpreter_public else "taken"
        parts.append(f"uid 0 with every capability dropped (no dedicated user id: {why})")
    parts.append("rlimits" + (f" + {cgroup.describe()}" if cgroup else ""))
    if cgroup is None:
        advice.append(
            "note: no cgroups (not root, or none writable): CPU time is counted per process, memory by "
            "the address-space limit, and shared memory (memfd_create) is refused"
        )
    confined = bool(bwrap) or (bool(abi) and bool(bpf)) or uid is not None
    if not confined:
        parts = ["NO SANDBOX: student code can read and write what the grader can"]
    return SandboxMode(
        bwrap, bpf is not None, abi, uid, not bwrap and is_root and uid is None, cgroup, confined,
        "; ".join(parts), advice, bool(bwrap) and not why_fresh, host_uid,
    )  # fmt: skip


# --------------------------------------------------------------------------- starting a child


def preexec(limits: Limits, uid: int | None, cgroup: ChildCgroup) -> Callable[[], None]:
    """What runs in the child between fork and exec: death with the parent, the rlimits, the
    cgroups, and (fallback) the dedicated user id."""
    memory = limits.memory_mb * 2**20
    fsize = limits.fsize_mb * 2**20
    cpu = int(limits.timeout) + 5  # the parent stops it at the budget; this is the backstop

    def run() -> None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        cgroup.enter()
        resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
        resource.setrlimit(resource.RLIMIT_FSIZE, (fsize, fsize))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits.nofile, limits.nofile))
        resource.setrlimit(resource.RLIMIT_NPROC, (limits.nproc, limits.nproc))
        if uid is not None:
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)

    return run


def child_env(home: str) -> dict[str, str]:
    """The child's whole environment (plus the grader's ``LD_LIBRARY_PATH``, for a Python installed
    where the loader needs it)."""
    extra = {"LD_LIBRARY_PATH": os.environ["LD_LIBRARY_PATH"]} if os.environ.get("LD_LIBRARY_PATH") else {}
    return extra | {
        "PATH": "/usr/bin:/bin",
        "HOME": home,
        "TMPDIR": home,
        "MPLCONFIGDIR": home,
        "MPLBACKEND": "Agg",
        "OPENBLAS_NUM_THREADS": "1",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "LANG": "C.UTF-8",
    }


def bwrap_argv(
    mode: SandboxMode, limits: Limits, runner: Path, wire: Path, release: Path, seccomp_fd: int | None
) -> list[str]:
    """The bubblewrap command that runs the runner on the released package."""
    assert mode.bwrap is not None
    argv = bwrap_base(mode.bwrap, limits.disk_mb)
    argv += ["--ro-bind", str(runner), f"{GRADER}/_runner.py", "--ro-bind", str(wire), f"{GRADER}/wire.py"]
    argv += ["--ro-bind", str(release), f"{GRADER}/cnnlab"]
    for key, value in child_env(SANDBOX).items():
        argv += ["--setenv", key, value]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    return [*argv, "--", os.path.realpath(sys.executable), "-I", "-S", "-B", f"{GRADER}/_runner.py"]
