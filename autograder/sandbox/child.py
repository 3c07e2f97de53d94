"""The sandboxed child of the batch grader: runs a student's task functions on inputs it is sent.

:mod:`autograder.sandbox` runs this file, read-only and outside any folder the child can write, as
``python -I -S -B _runner.py`` (isolated mode: no environment variables, no current folder or script
folder on ``sys.path``, no ``site``: the paths it needs arrive in the request). Before any student
code runs it applies the confinement the request asks for (capabilities, Landlock, seccomp; under
bubblewrap most of it is already in place) and writes the released package and the student's files
into its own fresh writable folder. It imports only the standard library, numpy and
:mod:`autograder.sandbox.wire` (the frames both sides speak, loaded from beside this file), never the rest
of ``autograder`` and never the reference.

Protocol. stdin holds one request frame; the child answers with a stream of frames on its original
stdout (fd 1 is re-pointed to ``/dev/null`` before any student code runs, and so is fd 2)::

    hello        the sandbox is in place (Landlock ABI, capabilities dropped)
    importing    the student's package is being imported (the parent's clock starts)
    import_error the package does not import: "<Type>: <message>"
    task_start   {"task"}
    task_missing {"task", "error"}: the task's function is not there
    case         {"task", "index", "result" | "raised" | "unencodable", "args_after"}
    stopped      {"task", "done"}: the per-task time budget ran out before case ``done``
    task_end     {"task"}
    done
    fatal        {"error"}: the sandbox could not be set up; no student code ran

Grading isolation (the same rule as ``autograder.cases.restored_functions``): while a task runs,
every function bound in the released copy of ``cnnlab.conv``/``pool``/``residual`` (loaded from the
read-only release the request names) except the task functions defined there is put into the student's
module of the same name, and taken out again afterwards.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import inspect
import os
import sys
import time
import types
import warnings
from typing import Any

if __package__:  # imported by the grader as autograder.sandbox.child
    from autograder.sandbox import wire
else:  # run as a script (the runner in a sandbox): the wire module lies beside this file
    _spec = importlib.util.spec_from_file_location(
        "_cnnlab_wire", os.path.join(os.path.dirname(os.path.abspath(__file__)), "wire.py")
    )
    wire = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
    sys.modules["_cnnlab_wire"] = wire
    _spec.loader.exec_module(wire)  # type: ignore[union-attr]

ProtocolError, FrameReader, MAX_FRAME, MAX_TEXT = (
    wire.ProtocolError,
    wire.FrameReader,
    wire.MAX_FRAME,
    wire.MAX_TEXT,
)
pack, unpack, encode, decode, _text, _np = (
    wire.pack,
    wire.unpack,
    wire.encode,
    wire.decode,
    wire._text,
    wire._np,
)
PACKAGE = "cnnlab"

RELEASE_PACKAGE = "_cnnlab_release"
PRECONFINED: dict[str, Any] | None = None  # set by the zygote's child: what it applied, for hello


# --------------------------------------------------------------------------- the sandbox

# Landlock (Linux >= 5.13): https://docs.kernel.org/userspace-api/landlock.html
_FS_EXECUTE, _FS_WRITE_FILE, _FS_READ_FILE, _FS_READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
_FS_REMOVE_DIR, _FS_REMOVE_FILE, _FS_MAKE_CHAR, _FS_MAKE_DIR = 1 << 4, 1 << 5, 1 << 6, 1 << 7
_FS_MAKE_REG, _FS_MAKE_SOCK, _FS_MAKE_FIFO, _FS_MAKE_BLOCK = 1 << 8, 1 << 9, 1 << 10, 1 << 11
_FS_MAKE_SYM, _FS_REFER, _FS_TRUNCATE, _FS_IOCTL_DEV = 1 << 12, 1 << 13, 1 << 14, 1 << 15
_SYS_CREATE_RULESET, _SYS_ADD_RULE, _SYS_RESTRICT_SELF = 444, 445, 446
_PR_SET_NO_NEW_PRIVS, _PR_CAPBSET_DROP, _PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL = 38, 24, 47, 4
_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER = 22, 2


def _libc() -> Any:
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    return libc


def landlock_abi() -> int:
    """The Landlock ABI version of the running kernel; 0 when Landlock is not available."""
    import ctypes

    try:
        libc = _libc()
        abi = libc.syscall(_SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(1))
    except Exception:
        return 0
    return max(int(abi), 0)


def apply_landlock(read: list[str], write: list[str], devices: list[str]) -> int:
    """Restrict this process (and its children, for good) to reading ``read``, reading and writing
    ``write`` and ``devices``; no TCP (ABI >= 4), no signals or abstract sockets outside (ABI >= 6).
    Returns the ABI used; raises OSError if Landlock is unavailable."""
    import ctypes

    libc = _libc()
    abi = landlock_abi()
    if abi < 1:
        raise OSError("Landlock is not available in this kernel")
    handled = (1 << 13) - 1
    handled |= _FS_REFER if abi >= 2 else 0
    handled |= _FS_TRUNCATE if abi >= 3 else 0
    handled |= _FS_IOCTL_DEV if abi >= 5 else 0

    class RulesetAttr(ctypes.Structure):
        _fields_ = [("fs", ctypes.c_uint64), ("net", ctypes.c_uint64), ("scoped", ctypes.c_uint64)]

    class PathBeneath(ctypes.Structure):
        _pack_ = 1
        _fields_ = [("allowed", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]

    attr = RulesetAttr(handled, 0b11 if abi >= 4 else 0, 0b11 if abi >= 6 else 0)
    size = 8 if abi < 4 else 16 if abi < 6 else 24
    ruleset = libc.syscall(_SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
    if ruleset < 0:
        raise OSError(ctypes.get_errno(), "landlock_create_ruleset failed")
    read_dir = _FS_EXECUTE | _FS_READ_FILE | _FS_READ_DIR
    file_only = _FS_EXECUTE | _FS_READ_FILE | _FS_WRITE_FILE | _FS_TRUNCATE | _FS_IOCTL_DEV
    writable = (
        _FS_READ_FILE
        | _FS_READ_DIR
        | _FS_WRITE_FILE
        | _FS_REMOVE_DIR
        | _FS_REMOVE_FILE
        | _FS_MAKE_DIR
        | _FS_MAKE_REG
        | _FS_TRUNCATE
    )  # no executing, no links, devices, sockets or FIFOs in the sandbox
    rules = [(p, read_dir) for p in read] + [(p, writable) for p in write]
    rules += [(p, _FS_READ_FILE | _FS_WRITE_FILE | _FS_TRUNCATE) for p in devices]
    try:
        for path, access in rules:
            try:
                fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
            except OSError:
                continue  # a path that does not exist here
            try:
                if not os.path.isdir(path):
                    access &= file_only
                rule = PathBeneath(access & handled, fd)
                if libc.syscall(_SYS_ADD_RULE, ruleset, 1, ctypes.byref(rule), 0) != 0:
                    raise OSError(ctypes.get_errno(), f"landlock_add_rule failed for {path}")
            finally:
                os.close(fd)
        if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
        if libc.syscall(_SYS_RESTRICT_SELF, ruleset, 0) != 0:
            raise OSError(ctypes.get_errno(), "landlock_restrict_self failed")
    finally:
        os.close(ruleset)
    return abi


def drop_capabilities() -> None:
    """Give up every capability for good (for a child that stays uid 0: it keeps the owner's file
    rights, which Landlock confines, but cannot kill, reboot, mount, chown, trace, ...)."""
    import ctypes

    libc = _libc()
    for cap in range(64):
        libc.prctl(_PR_CAPBSET_DROP, cap, 0, 0, 0)  # EINVAL past the last capability: ignored
    libc.prctl(_PR_CAP_AMBIENT, _PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0)

    class Header(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class Data(ctypes.Structure):
        _fields_ = [
            ("effective", ctypes.c_uint32),
            ("permitted", ctypes.c_uint32),
            ("inheritable", ctypes.c_uint32),
        ]

    data = (Data * 2)()
    if libc.capset(ctypes.byref(Header(0x20080522, 0)), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")
    with open("/proc/self/status") as fh:
        status = fh.read()
    for field in ("CapEff", "CapPrm", "CapBnd"):
        value = status.split(f"{field}:")[1].split()[0]
        if int(value, 16) != 0:
            raise OSError(f"{field} is still {value} after dropping the capabilities")


# --------------------------------------------------------------------------- the runner


class _Channel:
    """The response stream: the original stdout, kept on a private descriptor."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.write = os.write  # kept: student code may replace os.write
        self.pack = pack

    def send(self, header: dict[str, Any], blobs: list[bytes] | None = None) -> None:
        data = self.pack(header, blobs or [])
        view = memoryview(data)
        while view:
            n = self.write(self.fd, view)
            view = view[n:]


def _load_package(name: str, folder: str) -> types.ModuleType:
    """Import the package in ``folder`` as ``name`` (its ``__init__`` loads ``plots`` lazily)."""
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"no package at {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _bare_package(name: str, folder: str) -> types.ModuleType:
    """A package module for ``folder`` whose ``__init__.py`` is not run (submodules import)."""
    spec = importlib.util.spec_from_file_location(
        name, os.path.join(folder, "__init__.py"), submodule_search_locations=[folder]
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules[name] = module
    return module


@contextlib.contextmanager
def _quiet() -> Any:
    np = _np()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


class _Isolation:
    """Puts the released provided functions into the student's modules for the length of a call."""

    def __init__(self, modules: list[str], own: dict[str, list[str]]) -> None:
        self.pairs = []
        for name in modules:
            try:
                released = importlib.import_module(f"{RELEASE_PACKAGE}.{name}")
            except Exception:
                continue
            restore = {
                attr: value
                for attr, value in vars(released).items()
                if inspect.isfunction(value) and attr not in set(own.get(name, ()))
            }
            self.pairs.append((name, restore))

    @contextlib.contextmanager
    def applied(self) -> Any:
        saved = []
        try:
            for name, restore in self.pairs:
                module = sys.modules.get(f"{PACKAGE}.{name}")
                if module is None:
                    try:
                        module = importlib.import_module(f"{PACKAGE}.{name}")
                    except BaseException:
                        continue
                namespace = vars(module)
                for attr, value in restore.items():
                    saved.append((module, attr, attr in namespace, namespace.get(attr)))
                    setattr(module, attr, value)
            yield
        finally:
            for module, attr, existed, old in reversed(saved):
                if existed:
                    setattr(module, attr, old)
                else:
                    with contextlib.suppress(AttributeError):
                        delattr(module, attr)


def _confine(request: dict[str, Any], blobs: list[bytes]) -> dict[str, Any]:
    """The layers the runner applies itself (where bubblewrap already did the rest): capabilities,
    Landlock, the seccomp filter. Returns what is in force, for the hello frame."""
    if PRECONFINED is not None:  # a zygote's child: confined before it read the request
        return dict(PRECONFINED, pid=os.getpid(), uid=os.getuid())
    info: dict[str, Any] = {"kind": "hello", "pid": os.getpid(), "uid": os.getuid()}
    if request.get("drop_caps"):
        drop_capabilities()
        info["caps_dropped"] = True
    if request.get("seccomp") is not None:
        install_seccomp(blobs[request["seccomp"]])
    with open("/proc/self/status") as fh:  # before Landlock, which hides /proc
        status = fh.read()
    info["caps"] = status.split("CapEff:")[1].split()[0]
    info["seccomp"] = status.split("Seccomp:")[1].split()[0] if "Seccomp:" in status else "?"
    info["namespaced"] = os.path.exists("/grader/_runner.py")
    rules = request.get("landlock")
    if rules:
        info["landlock"] = apply_landlock(rules["read"], rules["write"], rules["devices"])
    return info


def _write_package(request: dict[str, Any], blobs: list[bytes]) -> None:
    """The student's package in the sandbox folder: the released files, then the student's own
    (a file given as None is absent, as in nbgrader). Only the runner writes here before the
    student's code runs, so nothing an earlier child left can be there."""
    target = os.path.join(request["sandbox"], PACKAGE)
    release = request["release"]
    tag = f".{sys.implementation.cache_tag}.pyc"
    copies = []
    inner = [n for n in os.listdir(release) if n != "__pycache__" and os.path.isdir(os.path.join(release, n))]
    for sub in ["", *sorted(inner)]:  # the package, then its subpackage (_internal/)
        sources = [n for n in sorted(os.listdir(os.path.join(release, sub))) if n.endswith((".py", ".json"))]
        copies += [os.path.join(sub, name) for name in sources]
        cache = os.path.join(
            release, sub, "__pycache__"
        )  # checked-hash .pyc: valid while the source's hash is
        if os.path.isdir(cache):
            for name in sorted(os.listdir(cache)):
                if name.endswith(tag) and name.removesuffix(tag) + ".py" in sources:
                    copies.append(os.path.join(sub, "__pycache__", name))
    for rel in copies:
        os.makedirs(os.path.dirname(os.path.join(target, rel)), exist_ok=True)
        with open(os.path.join(release, rel), "rb") as src, open(os.path.join(target, rel), "wb") as dst:
            dst.write(src.read())
    for rel, index in request["files"].items():
        path = os.path.join(request["sandbox"], *rel.split("/"))
        if not os.path.realpath(path).startswith(os.path.realpath(request["sandbox"]) + os.sep):
            raise ProtocolError(f"a student file outside the sandbox: {rel!r}")
        if index is None:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as fh:
            fh.write(blobs[index])


def install_seccomp(program: bytes) -> None:
    """Install a seccomp BPF program (as libseccomp exports it) on this process, for good."""
    import ctypes

    libc = _libc()
    if len(program) % 8 or not program:
        raise OSError("a malformed seccomp program")

    class Fprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(program, len(program))
    prog = Fprog(len(program) // 8, ctypes.cast(buf, ctypes.c_void_p))
    if libc.prctl(_PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(_PR_SET_SECCOMP, _SECCOMP_MODE_FILTER, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")


def _run(request: dict[str, Any], blobs: list[bytes], channel: _Channel) -> None:
    sandbox = request["sandbox"]
    # 1. the sandbox: the layers the runner applies, then the files; no student code has run yet
    try:
        info = _confine(request, blobs)
        _write_package(request, blobs)
    except Exception as exc:
        channel.send({"kind": "fatal", "error": f"sandbox setup failed: {type(exc).__name__}: {exc}"})
        return
    channel.send(info)
    # 2. the released copy (provided functions for grading isolation), then the student's package
    release = _bare_package(RELEASE_PACKAGE, request["release"])
    isolation = _Isolation(request["isolated_modules"], request["task_functions"])
    del release
    channel.send({"kind": "importing"})
    try:
        with _quiet():
            _load_package(PACKAGE, os.path.join(sandbox, PACKAGE))
            for name in request["import_modules"]:
                importlib.import_module(f"{PACKAGE}.{name}")
    except BaseException as exc:  # noqa: BLE001 (SyntaxError, exit(), MemoryError, ...)
        channel.send(
            {
                "kind": "import_error",
                "memory": isinstance(exc, MemoryError),
                "error": f"{type(exc).__name__}: {_text(exc)}",
            }
        )
        return
    # 3. the tasks
    for task in request["tasks"]:
        task_id = task["id"]
        channel.send({"kind": "task_start", "task": task_id})
        try:
            module = importlib.import_module(f"{PACKAGE}.{task['module']}")
            fn = getattr(module, task["function"])
        except BaseException as exc:  # noqa: BLE001
            channel.send(
                {"kind": "task_missing", "task": task_id, "error": f"{type(exc).__name__}: {_text(exc)}"}
            )
            channel.send({"kind": "task_end", "task": task_id})
            continue
        start = time.process_time()  # its own CPU time: what runs beside it does not count
        for index, tree in enumerate(task["cases"]):
            if time.process_time() - start > task["budget"]:
                channel.send({"kind": "stopped", "task": task_id, "done": index})
                break
            args = decode(tree, blobs)
            record: dict[str, Any] = {"kind": "case", "task": task_id, "index": index}
            out: list[bytes] = []
            with _quiet(), isolation.applied():
                try:
                    if task.get("own_cache"):  # the backward on the cache of the student's own forward
                        result, args = _own_cache_run(task, index, module, fn, tree, blobs)
                        if args is None:
                            record["no_forward"] = True
                    else:
                        result = fn(*args)
                except BaseException as exc:  # noqa: BLE001 (SystemExit included, as checks.call)
                    record["raised"] = [type(exc).__name__, _text(exc)]
                    record["memory"] = isinstance(exc, MemoryError)
                    result = None
                    if task.get("own_cache"):
                        args = getattr(exc, "args_after", None)
            try:
                memo: dict[int, int] = {}
                if "raised" not in record:
                    record["result"] = encode(result, out, memo)
                record["args_after"] = encode(args, out, memo)
            except BaseException as exc:  # noqa: BLE001 (a value that breaks the encoder)
                out = []
                record.pop("result", None)
                record["args_after"] = None
                record["unencodable"] = f"{type(exc).__name__}: {_text(exc)}"
            channel.send(record, out)
            del result
        channel.send({"kind": "task_end", "task": task_id})
    channel.send({"kind": "done"})


def _own_cache_run(
    task: dict[str, Any], index: int, module: types.ModuleType, fn: Any, tree: Any, blobs: list[bytes]
) -> tuple[Any, Any]:
    """A backward case on the cache of the student's own forward pass (same module): the backward's
    result (or its exception, raised) and ``[dout, forward arguments]`` as they are after the call,
    which the parent compares with what it sent (a backward that writes into them does not count);
    ``(None, None)`` when there is no forward or the forward fails."""
    forward, fargs = task.get("forward"), task.get("forward_args") or []
    if not forward or index >= len(fargs) or fargs[index] is None:
        return None, None
    given, dout = decode(fargs[index], blobs), decode(tree, blobs)[0]
    try:
        _, cache = getattr(module, forward)(*given)
    except BaseException:  # noqa: BLE001
        return None, None
    after = [dout, given]
    try:
        return fn(dout, cache), after
    except BaseException as exc:  # noqa: BLE001
        with contextlib.suppress(Exception):  # the parent judges what it can read
            exc.args_after = after  # type: ignore[attr-defined]
        raise


def main() -> None:
    """Entry point of ``python -I -S -B _runner.py`` in the sandbox (see the module docstring)."""
    out_fd = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    channel = _Channel(out_fd)
    code = 0
    try:
        data = sys.stdin.buffer.read(MAX_FRAME * 4 + 16)
        os.dup2(devnull, 0)
        frames = FrameReader(MAX_FRAME * 4).feed(data)
        if len(frames) != 1:
            raise ProtocolError("no request")
        request, blobs = unpack(frames[0])
        sys.path[:] = [p for p in request["path"]]  # the Python installation only, read-only
        os.chdir(request["sandbox"])
        _np()  # numpy is imported before the sandbox folder is on sys.path
        sys.path.insert(0, request["sandbox"])
        _run(request, blobs, channel)
    except BaseException as exc:  # noqa: BLE001
        code = 3
        with contextlib.suppress(BaseException):
            channel.send({"kind": "fatal", "error": f"runner: {type(exc).__name__}: {_text(exc)}"})
    os._exit(code)  # no atexit handlers, no threads left behind by student code


if __name__ == "__main__":
    main()
