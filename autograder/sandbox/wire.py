"""The wire format between the batch grader and its sandboxed children (both sides import it).

A frame is an 8-byte big-endian length and a payload; a payload is a JSON header and binary blobs,
arrays being ``.npy`` bytes. The parent reads arrays with :func:`load_npy`, which parses the header
itself and never unpickles (``allow_pickle=False``), with size caps: data from student code is never
unpickled and can never make the parent allocate more than the caps. It imports only the standard
library and numpy: the runner (:mod:`autograder.sandbox.child`) loads it from beside itself in the sandbox.
"""

from __future__ import annotations

import io
import json
import re
import struct
from collections.abc import Mapping
from typing import Any

MAX_FRAME = 64 * 2**20  # bytes of one frame
MAX_BLOBS = 4096  # blobs in one frame
MAX_DEPTH = 24  # nesting of encoded values
MAX_ITEMS = 20000  # containers' items in one encoded value
MAX_TEXT = 4000  # characters of a string or an exception message


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


_NPY_MAGIC = b"\x93NUMPY\x01\x00"
# the one header :func:`npy_bytes` writes for plain arrays, and the only one read without numpy's
# parser (anything else falls back to it): a little-endian or byte-order-free bool, integer, float
# or complex dtype, C order, a shape of whole numbers
_PLAIN_HEADER = re.compile(
    r"\{'descr': '([<|][biufc](?:1|2|4|8|16))', 'fortran_order': False, "
    r"'shape': \(((?:\d{1,12}, ?)*\d{0,12})\), \} *\n"
)


def npy_bytes(array: Any) -> bytes:
    """``array`` as the bytes of a ``.npy`` file (no pickles: object arrays are refused).

    A plain array (bool, integer, float or complex, native little-endian) gets its version 1.0
    header written here, the same bytes numpy writes (``np.load`` reads them), in a fraction of the
    time; anything else is written by numpy."""
    np = _np()
    array = np.asarray(array)
    descr = array.dtype.str
    if array.dtype.fields is None and descr[0] in "<|" and descr[1] in "biufc":
        shape = repr(tuple(int(n) for n in array.shape))
        header = f"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}"
        pad = 64 - (len(_NPY_MAGIC) + 2 + len(header) + 1) % 64
        header_bytes = (header + " " * (pad % 64) + "\n").encode("latin1")
        data = np.ascontiguousarray(array).tobytes()
        return _NPY_MAGIC + struct.pack("<H", len(header_bytes)) + header_bytes + data
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, allow_pickle=False)
    return buf.getvalue()


def _plain_header(data: bytes) -> tuple[tuple[int, ...], bool, Any, int] | None:
    """Shape, order, dtype and data offset of a header :func:`npy_bytes` wrote, or None (another
    header: numpy's own parser reads it)."""
    if not data.startswith(_NPY_MAGIC) or len(data) < 10:
        return None
    (length,) = struct.unpack("<H", data[8:10])
    match = _PLAIN_HEADER.fullmatch(data[10 : 10 + length].decode("latin1"))
    if match is None:
        return None
    shape = tuple(int(n) for n in match.group(2).replace(" ", "").split(",") if n)
    return shape, False, _np().dtype(match.group(1)), 10 + length


def load_npy(data: bytes, max_bytes: int = MAX_FRAME) -> Any:
    """The array in ``.npy`` bytes, checked before anything is allocated: a plain dtype (no
    objects), and exactly as many data bytes as the shape says, at most ``max_bytes``."""
    np = _np()
    plain = _plain_header(data)
    if plain is not None:
        shape, fortran, dtype, offset = plain
    else:
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
        offset = buf.tell()
    if dtype.hasobject:
        raise ProtocolError("an array of Python objects")
    if not isinstance(shape, tuple) or any(type(n) is not int or n < 0 for n in shape):
        raise ProtocolError(f"an array with an impossible shape {shape!r}")
    count = 1
    for n in shape:
        count *= n
    nbytes = count * dtype.itemsize
    rest = data[offset:]
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
