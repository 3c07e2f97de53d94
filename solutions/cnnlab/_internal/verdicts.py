"""Verdicts on a task's result (provided): outcomes, comparison, diagnosis, the visible cases' JSON.

Both the visible checks (``cnnlab.checks``) and the course's two graders (nbgrader's hidden tests
and the batch grader) reach their verdicts with these functions, so all three say the same thing:

* :func:`call` / :func:`split_result`: what one call produced (its parts by name, :class:`Raised`, or
  :class:`Malformed`), as the task table (``cnnlab/_internal/tasks.py``) says the result is built;
* :func:`problems`: what differs from the expected outcome (relative error at most :data:`RTOL`);
* :func:`diagnose` / :func:`match_variants`: which known mistake an output matches;
* :func:`find_mutation`: whether a call wrote into its arguments;
* :func:`to_json` / :func:`from_json` / :func:`load_cases`: ``check_cases.json``.

This module is provided: you do not need to read or change it.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import tasks

RTOL = 1e-7  # relative error allowed between a correct result and the expected one
MATCH_RTOL = 1e-5  # looser, for recognising a known mistake's output (float32 results included)
GRAD_RTOL = 1e-6  # analytic gradient against centred finite differences (h = 1e-5, float64)

#: Argument names and result parts of each task, from the task table (``cnnlab/_internal/tasks.py``).
ARG_NAMES: dict[str, tuple[str, ...]] = {t.id: t.args for t in tasks.TASKS.values()}
#: What each task function returns, part by part; a forward's cache is not compared.
PARTS: dict[str, tuple[str, ...]] = {t.id: t.parts for t in tasks.TASKS.values()}


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No warnings, no numpy floating-point warnings and nothing on stderr while inside."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


# --------------------------------------------------------------------------- outcomes


@dataclass(frozen=True)
class Raised:
    """The function raised an exception: its type name and message."""

    type: str
    message: str

    def __str__(self) -> str:
        return f"{self.type}: {self.message}" if self.message else self.type


@dataclass(frozen=True)
class Malformed:
    """The function returned something of the wrong structure (None, a bare array, a short tuple)."""

    message: str


#: What one call produced: its parts by name (see :data:`PARTS`), an exception, or a malformed result.
Outcome = dict[str, Any] | Raised | Malformed


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of shape {value.shape}"
    if isinstance(value, tuple | list):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"{type(value).__name__} {value!r}"[:80]


def split_result(task_id: str, result: Any) -> dict[str, Any] | Malformed:
    """The parts of a task function's return value, by the names in :data:`PARTS`, as the task
    table's ``returns`` says the result is built."""
    task = tasks.TASKS[task_id]
    function, parts = task.function, PARTS[task_id]
    if result is None:
        return Malformed(f"{function} returned None: did you forget a `return` statement?")
    if task.returns == "value":
        return {parts[0]: result}
    if task.returns == "pair":  # (out, cache): the cache is the function's own business
        if not isinstance(result, tuple | list) or len(result) != 2:
            return Malformed(f"{function} returned {_describe(result)}; it must return the pair (out, cache)")
        return {parts[0]: result[0]}
    if task.returns == "tuple":
        if not isinstance(result, tuple | list) or len(result) != len(parts):
            want = "the pair" if len(parts) == 2 else "the tuple"
            return Malformed(
                f"{function} returned {_describe(result)}; it must return {want} ({', '.join(parts)})"
            )
        return dict(zip(parts, result, strict=True))
    return _SPLITTERS[task.returns](function, result)


def _split_dx_grads(function: str, result: Any) -> dict[str, Any] | Malformed:
    """The parts of a residual block's backward pass: ``(dx, grads)`` with the four gradients."""
    if not isinstance(result, tuple | list) or len(result) != 2:
        return Malformed(f"{function} returned {_describe(result)}; it must return the pair (dx, grads)")
    dx, grads = result
    if not isinstance(grads, Mapping) or not {"w1", "b1", "w2", "b2"} <= set(grads):
        keys = "'w1', 'b1', 'w2', 'b2'"
        return Malformed(
            f"{function} returned grads = {_describe(grads)}; it must be a dict with keys {keys}"
        )
    return {"dx": dx, **{f"grads['{k}']": grads[k] for k in ("w1", "b1", "w2", "b2")}}


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _split_layer_shapes(function: str, result: Any) -> dict[str, Any] | Malformed:
    """The parts of ``layer_shapes``'s result: the list of output shapes and the list of counts."""
    if not isinstance(result, list | tuple):
        return Malformed(
            f"{function} returned {_describe(result)}; it must return a list of (output_shape, num_params) "
            "pairs, one per layer"
        )
    shapes, params = [], []
    for i, item in enumerate(result):
        if not isinstance(item, tuple | list) or len(item) != 2:
            return Malformed(
                f"{function} returned {_describe(item)} for layer {i}; each entry must be the pair "
                "(output_shape, num_params)"
            )
        shape, count = item
        if not isinstance(shape, tuple) or not all(_is_int(v) for v in shape):
            why = " (use integer division //)" if isinstance(shape, tuple | list) else ""
            return Malformed(
                f"{function}: the output shape of layer {i} is {shape!r}; it must be a tuple of ints, "
                f"e.g. (6, 28, 28){why}"
            )
        if not _is_int(count):
            why = " (use integer arithmetic)" if isinstance(count, float | np.floating) else ""
            return Malformed(
                f"{function}: the number of parameters of layer {i} is {count!r}; it must be an int{why}"
            )
        shapes.append(tuple(int(v) for v in shape))
        params.append(int(count))
    return {"shapes": shapes, "params": params}


#: The task table's own result shapes (``returns``) and how to split them.
_SPLITTERS: dict[str, Callable[[str, Any], dict[str, Any] | Malformed]] = {
    "dx_grads": _split_dx_grads,
    "layer_table": _split_layer_shapes,
}


def call(task_id: str, fn: Callable[..., Any], args: Sequence[Any]) -> tuple[Outcome, BaseException | None]:
    """Call ``fn(*args)`` and return its :data:`Outcome`, and the exception if it raised one."""
    try:
        result = fn(*args)
    except (Exception, SystemExit) as exc:  # SystemExit: a stray exit() must not end the checks
        return Raised(type(exc).__name__, str(exc)), exc
    return split_result(task_id, result), None


# --------------------------------------------------------------------------- comparing


def relative_error(got: np.ndarray, expected: np.ndarray) -> float:
    """``max |got - expected| / max(|got| + |expected|)``; 0 when both are zero (same shapes)."""
    a, b = np.asarray(got, dtype=float), np.asarray(expected, dtype=float)
    if a.size == 0:
        return 0.0
    scale = float(np.max(np.abs(a) + np.abs(b)))
    return 0.0 if scale == 0 else float(np.max(np.abs(a - b)) / scale)


def _index(flat: int, shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(int(i) for i in np.unravel_index(flat, shape))


def compare_arrays(got: Any, expected: np.ndarray, rtol: float = RTOL, name: str = "output") -> str | None:
    """None if ``got`` equals ``expected`` up to ``rtol``; otherwise what differs, for a student.

    Checked in order: a numpy array at all, the shape, the dtype, NaN/inf, then the values (the
    largest error, where it is, the values there, the relative error and the tolerance).
    """
    if got is None:
        return f"{name} is None: did you forget to return it?"
    if not isinstance(got, np.ndarray):
        return f"{name} is {_describe(got)}; expected a numpy array of shape {expected.shape}"
    if got.shape != expected.shape:
        return f"{name} has shape {got.shape}, expected {expected.shape}"
    if got.dtype != expected.dtype:
        why = ""
        if got.dtype.kind == "f" and expected.dtype.kind == "f":
            why = f": the inputs are {expected.dtype}, keep that precision (do not convert to {got.dtype})"
        elif got.dtype.kind in "iub":
            why = ": an integer array cuts off the fractions; create it as floats, e.g. np.zeros(shape)"
        return f"{name} has dtype {got.dtype}, expected {expected.dtype}{why}"
    if got.dtype.kind not in "fc":
        if np.array_equal(got, expected):
            return None
        flat = int(np.argmax(got.ravel() != expected.ravel()))
        idx = _index(flat, got.shape)
        return f"{name} differs at index {idx}: got {got[idx]!r}, expected {expected[idx]!r}"
    bad = ~np.isfinite(got) & np.isfinite(expected)
    if bad.any():
        idx = _index(int(np.argmax(bad.ravel())), got.shape)
        return f"{name} contains {got[idx]} at index {idx} (expected {expected[idx]:.6g})"
    if got.size == 0:
        return None
    with np.errstate(all="ignore"):
        diff = np.abs(got.astype(float) - expected.astype(float))
        diff = np.where(np.isnan(diff), 0.0, diff)  # equal non-finite values
        err = relative_error(np.where(np.isfinite(got), got, 0), np.where(np.isfinite(expected), expected, 0))
    if err <= rtol:
        return None
    idx = _index(int(np.argmax(diff.ravel())), got.shape)
    return (
        f"{name}: largest error {diff[idx]:.3g} at index {idx} (got {got[idx]:.6g}, expected "
        f"{expected[idx]:.6g}); relative error max|got - expected| / max(|got| + |expected|) = "
        f"{err:.2g} > tolerance {rtol:g}"
    )


def compare_values(got: Any, expected: Any, rtol: float = RTOL, name: str = "output") -> str | None:
    """:func:`compare_arrays` for arrays; exact comparison for ints and other values."""
    if isinstance(expected, np.ndarray):
        return compare_arrays(got, expected, rtol, name)
    if isinstance(expected, int | np.integer) and not isinstance(expected, bool):
        if isinstance(got, bool) or not isinstance(got, int | np.integer):
            if isinstance(got, float | np.floating) and float(got) == int(expected):
                return f"{name} = {got!r} is a float; return an int (use integer division //)"
            return f"{name} = {got!r}, expected the int {expected}"
        return None if int(got) == int(expected) else f"{name} = {got}, expected {expected}"
    if isinstance(expected, list) and isinstance(got, list):
        if len(got) != len(expected):
            return f"{name} has {len(got)} entries, expected {len(expected)} (one per layer): {got!r}"
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            if g != e:
                return f"{name}[{i}] (layer {i}) = {g!r}, expected {e!r}; all of {name}: {got!r}"
        return None
    return None if got == expected else f"{name} = {got!r}, expected {expected!r}"


def problems(task_id: str, got: Outcome, expected: Outcome, rtol: float = RTOL) -> list[str]:
    """What is wrong with ``got``, one sentence per part; empty when it is right."""
    if isinstance(expected, Raised):
        if isinstance(got, Raised):
            return [] if got.type == expected.type else [f"raised {got}; expected a {expected.type}"]
        if isinstance(got, Malformed):
            return [f"{got.message}; for these arguments it must raise {expected}"]
        shown = ", ".join(f"{k} = {_describe(v)}" for k, v in got.items())
        return [f"returned {shown}, but these arguments must raise {expected}"]
    if isinstance(got, Raised):
        if got.type == "NotImplementedError":
            return [f"Task {task_id} is not implemented yet ({got})"]
        return [f"raised {got}"]
    if isinstance(got, Malformed):
        return [got.message]
    found = []
    for part, value in expected.items():
        problem = compare_values(got.get(part), value, rtol, part)
        if problem:
            found.append(problem)
    return found


def close_enough(a: Any, b: Any, tol: float = MATCH_RTOL) -> bool:
    """Loose equality of two outcomes or parts, for recognising a known mistake."""
    if isinstance(a, Raised | Malformed) or isinstance(b, Raised | Malformed):
        return a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(close_enough(a[k], b[k], tol) for k in a)
    if isinstance(b, np.ndarray):
        if not isinstance(a, np.ndarray) or a.shape != b.shape:
            return False
        try:
            with np.errstate(all="ignore"):
                if not (np.isfinite(a).all() and np.isfinite(b).all()):
                    return bool(np.array_equal(a, b, equal_nan=True))
                return relative_error(a, b) <= tol
        except (TypeError, ValueError):
            return False
    try:
        return bool(a == b)
    except Exception:
        return False


def match_variants(
    got: Outcome,
    expected: Outcome,
    variants: Mapping[str, Outcome],
    tol: float = MATCH_RTOL,
    consistent: Collection[str] | None = None,
) -> list[tuple[str, str | None]]:
    """Known mistakes whose output on this case equals ``got`` (and differs from ``expected``).

    Returns ``(mistake_id, part)`` pairs: ``part`` is None when the whole output matches, else the
    one part (e.g. ``"db"``) that matches while the others may be wrong for other reasons.

    ``consistent``, if given, holds the mistakes that explain every case of the task (see
    :func:`consistent_mistakes`). One case alone can be ambiguous: different mistakes raise the same
    error, or give the same int. So an exception names only consistent mistakes, and when several
    mistakes match, the consistent ones are preferred.
    """
    informative = {k: v for k, v in variants.items() if not close_enough(v, expected, tol)}
    if isinstance(got, Raised) and consistent is not None:
        informative = {k: v for k, v in informative.items() if k in consistent}
    full = [(k, None) for k, v in informative.items() if close_enough(got, v, tol)]
    if len(full) > 1 and consistent is not None and any(k in consistent for k, _ in full):
        full = [(k, part) for k, part in full if k in consistent]
    if full or not isinstance(got, dict) or not isinstance(expected, dict):
        return full
    partial = []
    for part in expected:
        if close_enough(got.get(part), expected[part], tol):
            continue
        for k, v in informative.items():
            if isinstance(v, dict) and part in v and not close_enough(v[part], expected[part], tol):
                if close_enough(got.get(part), v[part], tol):
                    partial.append((k, part))
    return partial


def consistent_mistakes(
    results: Sequence[tuple[Outcome, Outcome, Mapping[str, Outcome]]], tol: float = MATCH_RTOL
) -> set[str]:
    """The known mistakes whose outcome equals the student's on EVERY case.

    ``results`` holds ``(got, expected, variants)`` per case; a mistake missing from a case's
    ``variants`` is taken to give the expected outcome there (``check_cases.json`` stores only the
    variants that differ).
    """
    ids: set[str] = set()
    for _, _, variants in results:
        ids |= set(variants)
    return {m for m in ids if all(close_enough(got, v.get(m, exp), tol) for got, exp, v in results)}


@dataclass
class Diagnosis:
    """What is wrong with one case (``problems``) and the known mistakes it looks like (``hints``)."""

    problems: list[str]
    hints: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = ["; ".join(self.problems)]
        lines += [f"This looks like: {h}" for h in self.hints]
        return "\n".join(lines)


def diagnose(
    task_id: str,
    got: Outcome,
    expected: Outcome,
    variants: Mapping[str, Outcome],
    messages: Mapping[str, str],
    rtol: float = RTOL,
    consistent: Collection[str] | None = None,
) -> Diagnosis | None:
    """None if ``got`` is right; else its problems and the messages of the known mistakes it matches
    (see :func:`match_variants` for ``consistent``)."""
    found = problems(task_id, got, expected, rtol)
    if not found:
        return None
    hints: list[str] = []
    for mistake, part in match_variants(got, expected, variants, consistent=consistent):
        message = messages.get(mistake)
        if message and message not in hints:
            hints.append(message if part is None or len(PARTS[task_id]) == 1 else f"({part}) {message}")
    return Diagnosis(found, hints)


def same_values(a: Any, b: Any) -> bool:
    """Whether two values are the same: arrays element by element (NaN equal to NaN), containers
    item by item, of the same types (a call that leaves its inputs alone leaves them the same)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, tuple | list):
        return (
            type(a) is type(b)
            and len(a) == len(b)
            and all(same_values(x, y) for x, y in zip(a, b, strict=True))
        )
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same_values(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a == b or (a != a and b != b))


def _changed(before: Any, after: Any, path: str) -> str | None:
    if isinstance(before, tuple | list) and isinstance(after, tuple | list) and len(before) == len(after):
        for i, (x, y) in enumerate(zip(before, after, strict=True)):
            found = _changed(x, y, f"{path}[{i}]")
            if found:
                return found
        return None
    if isinstance(before, dict) and isinstance(after, dict) and before.keys() == after.keys():
        for k in before:
            found = _changed(before[k], after[k], f"{path}[{k!r}]")
            if found:
                return found
        return None
    return None if same_values(before, after) else path


def find_mutation(task_id: str, before: Sequence[Any], after: Sequence[Any]) -> str | None:
    """A message if the call changed its arguments (``after``, a copy of ``before`` it was given)."""
    for name, x, y in zip(ARG_NAMES[task_id], before, after, strict=False):
        path = _changed(x, y, name)
        if path:
            function = tasks.TASKS[task_id].function
            return (
                f"{function} modified its input {path}: never write into the arrays you are given "
                "(the caller still needs them); work on a copy (x.copy(), np.pad, ...) or on new arrays"
            )
    return None


def describe_args(task_id: str, args: Sequence[Any]) -> str:
    """A one-line description of a call's arguments: arrays by shape, the rest by value."""

    def show(v: Any) -> str:
        if isinstance(v, np.ndarray):
            return str(v.shape)
        if isinstance(v, dict):
            return "{" + ", ".join(f"{k}: {show(x)}" for k, x in v.items()) + "}"
        if isinstance(v, tuple):
            return "(" + ", ".join(show(x) for x in v) + ")"
        return repr(v)

    return ", ".join(f"{n} {show(v)}" for n, v in zip(ARG_NAMES[task_id], args, strict=False))


# --------------------------------------------------------------------------- check_cases.json


def to_json(obj: Any) -> Any:
    """A JSON-serialisable form of arguments and outcomes: arrays, tuples, dicts, exceptions, scalars."""
    if isinstance(obj, np.ndarray):
        return {"array": obj.ravel().tolist(), "shape": list(obj.shape), "dtype": str(obj.dtype)}
    if isinstance(obj, Raised):
        return {"raised": obj.type, "message": obj.message}
    if isinstance(obj, Malformed):
        return {"malformed": obj.message}
    if isinstance(obj, tuple):
        return {"tuple": [to_json(x) for x in obj]}
    if isinstance(obj, list):
        return [to_json(x) for x in obj]
    if isinstance(obj, dict):
        return {"dict": {str(k): to_json(v) for k, v in obj.items()}}
    if isinstance(obj, np.bool_ | bool):
        return bool(obj)
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.floating):
        return float(obj)
    if obj is None or isinstance(obj, int | float | str):
        return obj
    raise TypeError(f"cannot store {type(obj).__name__} in check_cases.json")


def from_json(obj: Any) -> Any:
    """The inverse of :func:`to_json`."""
    if isinstance(obj, list):
        return [from_json(x) for x in obj]
    if not isinstance(obj, dict):
        return obj
    if "array" in obj:
        return np.array(obj["array"], dtype=obj["dtype"]).reshape(obj["shape"])
    if "raised" in obj:
        return Raised(obj["raised"], obj["message"])
    if "malformed" in obj:
        return Malformed(obj["malformed"])
    if "tuple" in obj:
        return tuple(from_json(x) for x in obj["tuple"])
    if "dict" in obj:
        return {k: from_json(v) for k, v in obj["dict"].items()}
    raise ValueError(f"unknown entry in check_cases.json: {sorted(obj)}")


@dataclass
class CheckCase:
    """One visible check: call the task function on ``args`` and compare with ``expected``."""

    label: str
    args: tuple[Any, ...]
    expected: Outcome
    variants: dict[str, Outcome] = field(default_factory=dict)
    #: for an expected exception: words its message must contain (see ``tasks.ERROR_RULES``)
    words: str | None = None
