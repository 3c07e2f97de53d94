"""INSIDE the sandbox: the zygote of one worker slot, and the fresh sandbox it makes per submission.

Runs in a long-lived bubblewrap sandbox (:mod:`autograder.sandbox.zygotes` starts it, one per worker
slot) as ``python -I -S -B _zygote.py``, with only the standard library, numpy and the runner
(:mod:`autograder.sandbox.child`, loaded from beside this file). It holds no reference solution, no
hidden test, no request and no secret: it preloads numpy (``numpy.random``, ``linalg``, ``fft``) and
the runner, single-threaded, then waits on its control socket (descriptor 3). Each message there
is one submission's child: a small JSON header (the limits) and, as ``SCM_RIGHTS``, the child's
request (a file), its response pipe, its stderr, a status pipe and a kill pipe. The zygote forks:

* a **monitor**, which unshares user, PID, mount, network, IPC and UTS namespaces in one call, maps
  the one uid it has (the zygote's) into the new user namespace and forks
* the **child**, PID 1 of the new PID namespace (so the zygote and its siblings are not there),
  which, before it reads a byte of the request: makes a private root (a fresh tmpfs of a few
  mount points, read-only binds of the system libraries, the Python installation and ``/grader``,
  ``/dev/null``, ``/dev/zero`` and ``/dev/urandom``, a fresh size-limited tmpfs ``/sandbox``),
  pivots into it and detaches the old root (no ``/proc`` at all), sets its uid, drops every
  capability, sets its limits, applies Landlock and the strict seccomp allow list (no namespaces,
  no processes, no mounts), reseeds ``random`` and numpy's global generator from the kernel,
  closes every other descriptor, and only then runs the runner on its request.

The monitor is the kill handle: it kills the child (and so its whole PID namespace) when the grader
closes or writes to the kill pipe, and writes the child's wait status to the status pipe. The
zygote's own seccomp filter (bubblewrap's, :func:`autograder.sandbox.syscalls.program` with
``zygote=True``) allows what the monitor and the child's setup need (``unshare``, ``mount``,
``pivot_root``, ...); the child's own filter, stacked on it, allows none of it.
"""

from __future__ import annotations

import ctypes
import importlib
import importlib.util
import json
import os
import platform
import select
import signal
import socket
import sys

_LIBC = ctypes.CDLL(None, use_errno=True)
_LIBC.syscall.restype = ctypes.c_long
_LIBC.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong, ctypes.c_char_p]
_LIBC.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]
CLONE_NEWNS, CLONE_NEWUTS, CLONE_NEWIPC = 0x00020000, 0x04000000, 0x08000000
CLONE_NEWUSER, CLONE_NEWPID, CLONE_NEWNET = 0x10000000, 0x20000000, 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC = 1, 2, 4, 8
MS_REMOUNT, MS_BIND, MS_REC, MS_PRIVATE = 32, 4096, 16384, 1 << 18
MS_NOATIME, MS_NODIRATIME, MS_RELATIME = 1024, 2048, 1 << 21
MNT_DETACH = 2
_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}.get(platform.machine(), 155)
_PR_SET_PDEATHSIG, _PR_SET_NO_NEW_PRIVS, _PR_CAPBSET_DROP = 1, 38, 24
_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 47, 4
_ST_FLAGS = {1: MS_RDONLY, 2: MS_NOSUID, 4: MS_NODEV, 8: MS_NOEXEC, 1024: MS_NOATIME, 2048: MS_NODIRATIME}
_ST_FLAGS[4096] = MS_RELATIME
ROOT = "/zroot"  # the mount point (made by bubblewrap) where each child builds its root
SANDBOX, GRADER = "/sandbox", "/grader"
DEVICES = ("/dev/null", "/dev/zero", "/dev/urandom")
CONTROL_FD = 3


def _check(result: int, what: str) -> None:
    if result != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}")


def _mount(source: str | None, target: str, fstype: str | None, flags: int, data: str | None = None) -> None:
    enc = lambda s: None if s is None else s.encode()  # noqa: E731
    _check(_LIBC.mount(enc(source), enc(target), enc(fstype), flags, enc(data)), f"mount {target}")


def _load(name: str, path: str) -> object:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


# --------------------------------------------------------------------------- the child's sandbox


def _bind_readonly(path: str) -> None:
    """Bind ``path`` into the new root, read-only, keeping the flags the outer mount locks."""
    target = ROOT + path
    if os.path.isdir(path):
        os.makedirs(target, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(target), exist_ok=True)
        with open(target, "a"):
            pass
    _mount(path, target, None, MS_BIND | MS_REC)
    locked = 0
    st = os.statvfs(path)
    for bit, flag in _ST_FLAGS.items():
        if st.f_flag & bit:
            locked |= flag
    _mount(None, target, None, MS_REMOUNT | MS_BIND | MS_RDONLY | locked)


def _build_root(setup: dict, disk_bytes: int) -> None:
    """The child's whole file system (see the module docstring), then pivot into it."""
    _mount(None, "/", None, MS_REC | MS_PRIVATE)
    _mount("tmpfs", ROOT, "tmpfs", MS_NOSUID | MS_NODEV, "size=1m,mode=0755")
    for link, target in setup["symlinks"]:
        os.symlink(target, ROOT + link)
    for path in setup["binds"]:
        _bind_readonly(path)
    os.makedirs(ROOT + "/dev", exist_ok=True)
    for dev in DEVICES:
        with open(ROOT + dev, "a"):
            pass
        _mount(dev, ROOT + dev, None, MS_BIND)  # no MS_NODEV: these are devices
    os.makedirs(ROOT + SANDBOX)
    _mount("tmpfs", ROOT + SANDBOX, "tmpfs", MS_NOSUID | MS_NODEV, f"size={disk_bytes},mode=0755")
    os.chdir(ROOT)
    _check(_LIBC.syscall(_PIVOT_ROOT, b".", b"."), "pivot_root")
    _check(_LIBC.umount2(b".", MNT_DETACH), "detach the old root")  # the zygote's /proc goes with it
    os.chdir("/")
    _mount(None, "/", None, MS_REMOUNT | MS_BIND | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _drop_capabilities() -> str:
    """Give up every capability (effective, permitted, inheritable, bounding, ambient) and return
    the effective set read back from the kernel (``capget``), as ``/proc``'s ``CapEff`` shows it."""
    for cap in range(64):
        _LIBC.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)
    _LIBC.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)
    _check(_LIBC.capset(header, (ctypes.c_uint32 * 6)()), "capset")
    data = (ctypes.c_uint32 * 6)()  # (effective, permitted, inheritable) x 2 words
    _check(_LIBC.capget(header, data), "capget")
    if any(data):
        raise OSError(f"capabilities left after dropping them: {list(data)}")
    return f"{(data[3] << 32) | data[0]:016x}"


def _child(setup: dict, job: dict, runner: object, fds: dict[str, int], alive_r: int, info: dict) -> None:
    """PID 1 of the job's namespaces: confine (module docstring), then grade."""
    import random
    import time

    import numpy

    started = time.monotonic()

    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    os.setsid()  # a process group of its own: kill(0, ...) reaches no zygote
    _build_root(setup, job["disk_bytes"])
    uid, gid = setup["inside_uid"], setup["inside_uid"]
    _check(_LIBC.setresgid(gid, gid, gid), "setresgid")
    _check(_LIBC.setresuid(uid, uid, uid), "setresuid")
    _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)  # cleared by the uid change: again
    if select.select([alive_r], [], [], 0)[0]:  # the monitor died before that: so do we
        os._exit(9)
    info["caps"] = _drop_capabilities()
    import resource

    for name, value in job["rlimits"].items():
        resource.setrlimit(getattr(resource, name), (value, value))
    rules = setup["landlock"]
    info["landlock"] = runner.apply_landlock(rules["read"], [SANDBOX], list(DEVICES))  # type: ignore[attr-defined]
    if setup["seccomp"]:  # (none only where libseccomp is missing, or tools/measure_syscalls.py)
        runner.install_seccomp(setup["seccomp"])  # type: ignore[attr-defined]
    info["seccomp"] = "2" if setup["seccomp"] else "0"
    seed = int.from_bytes(os.urandom(16), "little")
    random.seed(seed)
    numpy.random.seed(seed % 2**32)  # noqa: NPY002 (the legacy global generator a student may use)
    for fd, target in ((fds["request"], 0), (fds["response"], 1), (fds["stderr"], 2)):
        os.dup2(fd, target, inheritable=True)
    os.closerange(3, 1 << 16)  # the control socket, the job's pipes, the rest
    os.chdir(SANDBOX)
    info["setup_ms"] = round(1000 * (time.monotonic() - started), 1)  # namespaces, root, layers
    runner.PRECONFINED = info  # type: ignore[attr-defined]
    runner.main()  # type: ignore[attr-defined]
    os._exit(0)


def _monitor(setup: dict, job: dict, runner: object, fds: dict[str, int], control: int) -> None:
    """The job's kill handle (module docstring); never returns."""
    code = 1
    try:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        _LIBC.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        os.close(control)
        uid, gid = os.getuid(), os.getgid()  # read before: afterwards 65534 until mapped
        flags = CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWUTS
        _check(_LIBC.unshare(flags), "unshare")
        inside = setup["inside_uid"]
        with open("/proc/self/uid_map", "w") as fh:
            fh.write(f"{inside} {uid} 1\n")
        with open("/proc/self/setgroups", "w") as fh:
            fh.write("deny")
        with open("/proc/self/gid_map", "w") as fh:
            fh.write(f"{inside} {gid} 1\n")
        info = {"kind": "hello", "uid": inside, "namespaced": True, "zygote": True}
        alive_r, alive_w = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(alive_w)
            os.close(fds["kill"])
            os.close(fds["status"])
            try:
                _child(setup, job, runner, fds, alive_r, info)
            except BaseException as exc:  # noqa: BLE001 (no student code has run: the grader's failure)
                message = {
                    "kind": "fatal",
                    "error": f"zygote child setup failed: {type(exc).__name__}: {exc}",
                }
                try:
                    runner._Channel(fds["response"]).send(message)  # type: ignore[attr-defined]
                except BaseException:  # noqa: BLE001
                    pass
            os._exit(3)
        os.close(alive_r)
        for name in ("request", "response", "stderr"):
            os.close(fds[name])
        pidfd = os.pidfd_open(pid)
        while True:
            ready, _, _ = select.select([pidfd, fds["kill"]], [], [])
            if pidfd in ready:
                break
            signal.pidfd_send_signal(pidfd, signal.SIGKILL)  # the grader asked: the namespace dies
        _, status = os.waitpid(pid, 0)
        os.write(fds["status"], str(status).encode())
        code = 0
    finally:
        os._exit(code)


# --------------------------------------------------------------------------- the zygote


def _receive(sock: socket.socket) -> tuple[dict, list[int]] | None:
    msg, fds, _flags, _addr = socket.recv_fds(sock, 1 << 16, 8)
    if not msg:
        return None
    return json.loads(msg.decode()), fds


def main() -> None:
    """Entry point of ``python -I -S -B _zygote.py FD`` inside the slot's sandbox (FD: the control
    socket)."""
    control = int(sys.argv[1]) if len(sys.argv) > 1 else CONTROL_FD
    sock = socket.socket(fileno=control)
    got = _receive(sock)
    if got is None:
        return
    setup, _ = got
    setup["seccomp"] = bytes.fromhex(setup["seccomp"])
    sys.path[:] = setup["path"]
    here = os.path.dirname(os.path.abspath(__file__))
    runner = _load("_runner", os.path.join(here, "_runner.py"))
    import numpy  # the point of it all: loaded once, shared by every child (copy on write)
    import numpy.fft
    import numpy.linalg
    import numpy.random

    numpy.random.default_rng()  # numpy 2 loads its bit generators lazily: now
    del numpy
    import random  # noqa: F401

    for name in setup.get("preload", []):  # the standard-library modules the release imports
        if name.split(".")[0] in sys.stdlib_module_names and name not in ("threading", "multiprocessing"):
            try:
                importlib.import_module(name)
            except Exception:  # noqa: BLE001 (one that does not import here is imported by the child)
                pass
    import threading

    if threading.active_count() != 1:
        raise RuntimeError("the zygote must stay single-threaded (unshare needs it)")
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    sock.sendall(b'{"kind": "ready"}')
    while True:
        got = _receive(sock)
        if got is None:
            os._exit(0)  # the grader closed the socket: the slot is done
        job, received = got
        names = ("request", "response", "stderr", "status", "kill")
        if len(received) != len(names):
            for fd in received:
                os.close(fd)
            continue
        fds = dict(zip(names, received, strict=True))
        if os.fork() == 0:
            _monitor(setup, job, runner, fds, control)
        for fd in received:
            os.close(fd)


if __name__ == "__main__":
    main()
