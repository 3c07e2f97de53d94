"""The sandboxed child of the batch grader: runs a student's task functions on inputs it is sent.

:mod:`autograder.sandbox` runs this file, read-only and outside any folder the child can write, as
``python -I -S -B _runner.py`` (isolated mode: no environment variables, no current folder or script
folder on ``sys.path``, no ``site``: the paths it needs arrive in the request). Before any student
code runs it applies the confinement the request asks for (capabilities, Landlock, seccomp; under
bubblewrap most of it is already in place) and writes the released package and the student's files
into its own fresh writable folder. It imports only
the standard library and numpy, never ``autograder`` and never the reference. The parent imports it
as :mod:`autograder.child` for the wire format (:func:`pack`, :func:`unpack`, :func:`encode`,
:func:`decode`), so both sides share one implementation.

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

Wire format: a frame is an 8-byte big-endian length and a payload; a payload is a JSON header and
binary blobs, arrays being ``.npy`` bytes. The parent reads arrays with :func:`load_npy`, which
parses the header itself and never unpickles (``allow_pickle=False``), with size caps: data from
student code is never unpickled and can never make the parent allocate more than the caps.

Grading isolation (the same rule as ``autograder.cases.restored_functions``): while a task runs,
every function bound in the released copy of ``cnnlab.conv``/``pool``/``residual`` (loaded from the
read-only release the request names) except the task functions defined there is put into the student's
module of the same name, and taken out again afterwards.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import importlib.util
import inspect
import io
import json
import os
import struct
import sys
import time
import types
import warnings
from collections.abc import Mapping
from typing import Any

MAX_FRAME = 64 * 2**20  # bytes of one frame
MAX_BLOBS = 4096  # blobs in one frame
MAX_DEPTH = 24  # nesting of encoded values
MAX_ITEMS = 20000  # containers' items in one encoded value
MAX_TEXT = 4000  # characters of a string or an exception message
PACKAGE = "cnnlab"
RELEASE_PACKAGE = "_cnnlab_release"
SKIP_AT_IMPORT = ("plots",)  # imports matplotlib (1-2 s) and nothing of cnnlab: loaded on first use


class ProtocolError(Exception):
    """A frame or a value that breaks the wire format or its caps."""


# --------------------------------------------------------------------------- framing


def pack(header: dict[str, Any], blobs: list[bytes]) -> bytes:
    """One frame: length, then the JSON header and the blobs, each with its length."""
    head = json.dumps(header, separators=(",", ":"), allow_nan=True).encode()
    parts = [struct.pack(">II", len(head), len(blobs)), head]
    for blob in blobs:
        parts += [struct.pack(">Q", len(blob)), blob]
    payload = b"".join(parts)
    return struct.pack(">Q", len(payload)) + payload


def unpack(payload: bytes) -> tuple[dict[str, Any], list[bytes]]:
    """The header and blobs of one frame's payload; :class:`ProtocolError` if malformed."""
    try:
        n_head, n_blobs = struct.unpack_from(">II", payload, 0)
        if n_blobs > MAX_BLOBS:
            raise ProtocolError(f"{n_blobs} blobs in one frame (at most {MAX_BLOBS})")
        pos = 8
        header = json.loads(payload[pos : pos + n_head].decode())
        pos += n_head
        blobs = []
        for _ in range(n_blobs):
            (size,) = struct.unpack_from(">Q", payload, pos)
            pos += 8
            if pos + size > len(payload):
                raise ProtocolError("a blob runs past the end of its frame")
            blobs.append(payload[pos : pos + size])
            pos += size
    except (struct.error, UnicodeDecodeError, ValueError) as exc:
        raise ProtocolError(f"malformed frame ({type(exc).__name__}: {exc})") from None
    if not isinstance(header, dict) or pos != len(payload):
        raise ProtocolError("malformed frame")
    return header, blobs


class FrameReader:
    """Splits a byte stream into frame payloads, refusing frames over ``max_frame`` bytes."""

    def __init__(self, max_frame: int = MAX_FRAME) -> None:
        self.buffer = bytearray()
        self.max_frame = max_frame

    def feed(self, data: bytes) -> list[bytes]:
        self.buffer += data
        frames = []
        while len(self.buffer) >= 8:
            (size,) = struct.unpack_from(">Q", self.buffer, 0)
            if size > self.max_frame:
                raise ProtocolError(f"a frame of {size} bytes (at most {self.max_frame})")
            if len(self.buffer) < 8 + size:
                break
            frames.append(bytes(self.buffer[8 : 8 + size]))
            del self.buffer[: 8 + size]
        return frames


# --------------------------------------------------------------------------- values


class Opaque:
    """Stands, in the parent, for a value the child could not or would not send (its type name)."""

    def __init__(self, type_name: str) -> None:
        self.type_name = str(type_name)[:100]

    def __repr__(self) -> str:
        return f"<{self.type_name} object>"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Opaque) and other.type_name == self.type_name

    __hash__ = None  # type: ignore[assignment]


def _np() -> Any:
    import numpy

    return numpy


def npy_bytes(array: Any) -> bytes:
    """``array`` as the bytes of a ``.npy`` file (no pickles: object arrays are refused)."""
    np = _np()
    buf = io.BytesIO()
    np.lib.format.write_array(buf, np.asarray(array), allow_pickle=False)
    return buf.getvalue()


def load_npy(data: bytes, max_bytes: int = MAX_FRAME) -> Any:
    """The array in ``.npy`` bytes, checked before anything is allocated: a plain dtype (no
    objects), and exactly as many data bytes as the shape says, at most ``max_bytes``."""
    np = _np()
    fmt = np.lib.format
    buf = io.BytesIO(data)
    try:
        version = fmt.read_magic(buf)
        if version == (1, 0):
            shape, fortran, dtype = fmt.read_array_header_1_0(buf)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = fmt.read_array_header_2_0(buf)
        else:
            raise ProtocolError(f"unknown .npy version {version}")
    except ProtocolError:
        raise
    except Exception as exc:
        raise ProtocolError(f"malformed .npy data ({type(exc).__name__}: {exc})") from None
    if dtype.hasobject:
        raise ProtocolError("an array of Python objects")
    if not isinstance(shape, tuple) or any(type(n) is not int or n < 0 for n in shape):
        raise ProtocolError(f"an array with an impossible shape {shape!r}")
    count = 1
    for n in shape:
        count *= n
    nbytes = count * dtype.itemsize
    rest = data[buf.tell() :]
    if nbytes > max_bytes or len(rest) != nbytes:
        raise ProtocolError(f"an array whose data ({len(rest)} bytes) does not match its shape {shape}")
    flat = np.frombuffer(rest, dtype=dtype, count=count) if count else np.empty(0, dtype=dtype)
    return flat.reshape(shape, order="F" if fortran else "C").copy()


def encode(obj: Any, blobs: list[bytes], memo: dict[int, int] | None = None) -> Any:
    """A JSON-able tree for ``obj``: arrays become blob references (``{"$nd": i}``; the same array
    object twice is one blob, as ``copy.deepcopy`` keeps aliases), tuples ``{"$t": [...]}``, dicts
    ``{"$d": [[k, v], ...]}``, numpy scalars 0-d blobs (``{"$sc": i}``), non-finite floats
    ``{"$f": "nan"}``, anything else ``{"$o": type name}``."""
    memo = {} if memo is None else memo
    counter = [0]
    return _encode(obj, blobs, memo, 0, counter)


def _encode(obj: Any, blobs: list[bytes], memo: dict[int, int], depth: int, counter: list[int]) -> Any:
    np = _np()
    counter[0] += 1
    if depth > MAX_DEPTH or counter[0] > MAX_ITEMS:
        return {"$o": "too deeply nested or too large"}
    if obj is None or type(obj) is bool or type(obj) is str:
        return obj[:MAX_TEXT] if type(obj) is str else obj
    if type(obj) is int:
        return obj if -(2**62) < obj < 2**62 else {"$big": str(obj)[:MAX_TEXT]}
    if type(obj) is float:
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else {"$f": repr(obj)}
    if type(obj) is complex:
        return {
            "$c": [
                _encode(obj.real, blobs, memo, depth + 1, counter),
                _encode(obj.imag, blobs, memo, depth + 1, counter),
            ]
        }
    if isinstance(obj, np.ndarray):
        key = id(obj)
        if key not in memo:
            if obj.dtype.hasobject:
                return {"$o": "ndarray of Python objects"}
            memo[key] = len(blobs)
            blobs.append(npy_bytes(obj))
        return {"$nd": memo[key]}
    if isinstance(obj, np.generic):
        if isinstance(obj, np.object_) or obj.dtype.hasobject:
            return {"$o": type(obj).__name__}
        blobs.append(npy_bytes(np.asarray(obj)))
        return {"$sc": len(blobs) - 1}
    if isinstance(obj, tuple):
        return {"$t": [_encode(x, blobs, memo, depth + 1, counter) for x in obj]}
    if isinstance(obj, list):
        return [_encode(x, blobs, memo, depth + 1, counter) for x in obj]
    if isinstance(obj, Mapping):
        items = []
        for k, v in obj.items():
            if not (k is None or type(k) in (str, int, float, bool)):
                k = {"$o": type(k).__name__}
            items.append(
                [_encode(k, blobs, memo, depth + 1, counter), _encode(v, blobs, memo, depth + 1, counter)]
            )
        return {"$d": items}
    return {"$o": type(obj).__name__}


def decode(
    tree: Any, blobs: list[bytes], cache: dict[int, Any] | None = None, max_bytes: int = MAX_FRAME
) -> Any:
    """The value of an :func:`encode` tree. Unknown objects become :class:`Opaque`."""
    cache = {} if cache is None else cache
    return _decode(tree, blobs, cache, max_bytes, 0)


def _blob(blobs: list[bytes], i: Any) -> bytes:
    if type(i) is not int or not 0 <= i < len(blobs):
        raise ProtocolError(f"a reference to blob {i!r} of {len(blobs)}")
    return blobs[i]


def _decode(tree: Any, blobs: list[bytes], cache: dict[int, Any], max_bytes: int, depth: int) -> Any:
    if depth > MAX_DEPTH + 2:
        raise ProtocolError("a value nested too deeply")
    if tree is None or isinstance(tree, bool | int | float | str):
        return tree
    if isinstance(tree, list):
        return [_decode(x, blobs, cache, max_bytes, depth + 1) for x in tree]
    if not isinstance(tree, dict) or len(tree) != 1:
        raise ProtocolError("a malformed value")
    ((tag, value),) = tree.items()
    if tag == "$nd":
        if value not in cache:
            cache[value] = load_npy(_blob(blobs, value), max_bytes)
        return cache[value]
    if tag == "$sc":
        return load_npy(_blob(blobs, value), max_bytes)[()]
    if tag == "$t" and isinstance(value, list):
        return tuple(_decode(x, blobs, cache, max_bytes, depth + 1) for x in value)
    if tag == "$d" and isinstance(value, list):
        out = {}
        for pair in value:
            if not isinstance(pair, list) or len(pair) != 2:
                raise ProtocolError("a malformed dict entry")
            k = _decode(pair[0], blobs, cache, max_bytes, depth + 1)
            out[k if not isinstance(k, Opaque) else repr(k)] = _decode(
                pair[1], blobs, cache, max_bytes, depth + 1
            )
        return out
    if tag == "$f" and value in ("nan", "inf", "-inf"):
        return float(value)
    if tag == "$big" and isinstance(value, str):
        return int(value) if len(value) < 5000 else Opaque("int")
    if tag == "$c" and isinstance(value, list) and len(value) == 2:
        return complex(*(float(_decode(v, blobs, cache, max_bytes, depth + 1)) for v in value))
    if tag == "$o":
        return Opaque(str(value))
    raise ProtocolError(f"an unknown tag {tag!r}")


def _text(exc: BaseException) -> str:
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 (a student exception whose __str__ fails)
        text = "<unprintable>"
    return text if type(text) is str and len(text) <= MAX_TEXT else str(text)[:MAX_TEXT] + "..."


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


def _load_package(name: str, folder: str, skip: tuple[str, ...] = ()) -> types.ModuleType:
    """Import the package in ``folder`` as ``name``, running its ``__init__.py`` without the
    submodules in ``skip`` (they load on first use, through the module's ``__getattr__``)."""
    init = os.path.join(folder, "__init__.py")
    spec = importlib.util.spec_from_file_location(name, init, submodule_search_locations=[folder])
    if spec is None:
        raise ImportError(f"no package at {folder}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        with open(init, "rb") as fh:
            tree = ast.parse(fh.read(), init)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module is None:
                node.names = [a for a in node.names if a.name not in skip]
        tree.body = [n for n in tree.body if not (isinstance(n, ast.ImportFrom) and not n.names)]

        def __getattr__(attr: str) -> Any:
            if attr in skip:
                return importlib.import_module(f"{name}.{attr}")
            raise AttributeError(f"module {name!r} has no attribute {attr!r}")

        module.__getattr__ = __getattr__  # type: ignore[attr-defined]
        exec(compile(tree, init, "exec"), vars(module))
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
    os.makedirs(target, exist_ok=True)
    for name in sorted(os.listdir(release)):
        if name.endswith((".py", ".json")):
            with (
                open(os.path.join(release, name), "rb") as src,
                open(os.path.join(target, name), "wb") as dst,
            ):
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
            _load_package(PACKAGE, os.path.join(sandbox, PACKAGE), SKIP_AT_IMPORT)
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
        start = time.monotonic()
        for index, tree in enumerate(task["cases"]):
            if time.monotonic() - start > task["budget"]:
                channel.send({"kind": "stopped", "task": task_id, "done": index})
                break
            args = decode(tree, blobs)
            record: dict[str, Any] = {"kind": "case", "task": task_id, "index": index}
            out: list[bytes] = []
            with _quiet(), isolation.applied():
                try:
                    result = fn(*args)
                except BaseException as exc:  # noqa: BLE001 (SystemExit included, as checks.call)
                    record["raised"] = [type(exc).__name__, _text(exc)]
                    record["memory"] = isinstance(exc, MemoryError)
                    result = None
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
