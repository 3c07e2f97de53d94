"""Visible checks: ``check_task("2.1")`` tells you whether Task 2.1 works and, if not, what is wrong.

Each check calls your function on a small input and compares what it returns with the right answer:

* fixed cases from ``check_cases.json`` (next to this file), computed by the course's reference
  solution, together with what several classic *mistakes* return on the same inputs. When your output
  equals one of those, the check names the mistake ("This looks like: ...") and says how to fix it;
* small hand-worked examples and properties (for instance ``conv1d`` against ``np.convolve``).

Floating-point results are compared with the relative error

    max |got - expected| / max(|got| + |expected|)      (over the whole array)

and must stay below ``RTOL = 1e-7``: different but correct orders of summation agree to ~1e-15, while a
real mistake gives errors of order 1. Shapes and dtypes must match exactly (float64 in, float64 out).

This module is provided: you do not need to read or change it. The course's grader shares its
comparison and diagnosis code (:func:`compare_arrays`, :func:`diagnose`, :func:`match_variants`).
"""

from __future__ import annotations

import contextlib
import io
import json
import linecache
import os
import re
import sys
import types
import warnings
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from . import conv, gradcheck, network, pool, residual, tasks

RTOL = 1e-7  # relative error allowed between a correct result and the expected one
MATCH_RTOL = 1e-5  # looser, for recognising a known mistake's output (float32 results included)
GRAD_RTOL = 1e-6  # analytic gradient against centred finite differences (h = 1e-5, float64)
CASES_FILE = Path(__file__).with_name("check_cases.json")

#: Argument names and result parts of each task, from the task table (``cnnlab/tasks.py``).
ARG_NAMES: dict[str, tuple[str, ...]] = {t.id: t.args for t in tasks.TASKS.values()}
#: What each task function returns, part by part; a forward's cache is not compared.
PARTS: dict[str, tuple[str, ...]] = {t.id: t.parts for t in tasks.TASKS.values()}

_MODULES: dict[str, ModuleType] = {"conv": conv, "pool": pool, "residual": residual, "network": network}


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


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (
            isinstance(a, np.ndarray)
            and isinstance(b, np.ndarray)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
        )
    if isinstance(a, tuple | list):
        return type(a) is type(b) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
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
    return None if _same(before, after) else path


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


_LOADED: dict[tuple[str, float], dict[str, Any]] = {}


def _cases_path() -> Path:
    """:data:`CASES_FILE`; for the instructor's reference in ``solutions/cnnlab``, which has no copy
    of its own (the build writes the file into the student release only), the release's copy."""
    path = Path(CASES_FILE)
    release_copy = path.parent.parent.parent / "cnnlab" / path.name
    if not path.exists() and path.parent.parent.name == "solutions" and release_copy.exists():
        return release_copy
    return path


def load_cases() -> dict[str, Any]:
    """The content of :data:`CASES_FILE` (cached): ``rtol``, ``mistakes`` and ``tasks``."""
    path = _cases_path()
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the visible checks need it. Restore it from the course release."
        )
    key = (str(path), path.stat().st_mtime)
    if key not in _LOADED:
        _LOADED[key] = json.loads(path.read_text())
    return _LOADED[key]


def fixed_cases(task_id: str) -> list[CheckCase]:
    """The fixed cases of one task from ``check_cases.json``."""
    return [
        CheckCase(
            label=c["label"],
            args=tuple(from_json(c["args"])),
            expected=from_json(c["expected"]),
            variants={k: from_json(v) for k, v in c["variants"].items()},
        )
        for c in load_cases()["tasks"][task_id]
    ]


# --------------------------------------------------------------------------- hand-worked checks


def _hand_cases(task_id: str) -> list[CheckCase]:
    """Small examples worked out by hand, with what some known mistakes give on them."""
    a = np.array
    if task_id == "1.1":
        return [
            CheckCase("conv_output_size(5, 3)", (5, 3, 1, 0), {"M": 3}, {"size_no_plus_one": {"M": 2}}),
            CheckCase(
                "conv_output_size(32, 5, stride=1, pad=2)",
                (32, 5, 1, 2),
                {"M": 32},
                {"size_no_plus_one": {"M": 31}, "size_pad_once": {"M": 30}},
            ),
            CheckCase(
                "conv_output_size(6, 3, stride=2, pad=0): the last partial window is dropped",
                (6, 3, 2, 0),
                {"M": 2},
                {"size_ceil": {"M": 3}, "size_no_plus_one": {"M": 1}},
            ),
            CheckCase(
                "conv_output_size(7, 3, stride=2, pad=1)",
                (7, 3, 2, 1),
                {"M": 4},
                {"size_pad_once": {"M": 3}, "size_no_plus_one": {"M": 3}},
            ),
            CheckCase(
                "conv_output_size(3, 5, stride=1, pad=1): f just fits",
                (3, 5, 1, 1),
                {"M": 1},
                {"size_no_plus_one": {"M": 0}},
            ),
            *[
                CheckCase(
                    f"conv_output_size{rule.args}: {rule.rule}",
                    rule.args,
                    Raised("ValueError", rule.words),
                    words=rule.words,
                )
                for rule in tasks.ERROR_RULES["1.1"]
            ],
        ]
    if task_id == "1.2":
        x, w = a([1.0, 2.0, 3.0]), a([0.0, 1.0, 0.5])
        cases = [
            CheckCase(
                "conv1d([1, 2, 3], [0, 1, 0.5]) = [0, 1, 2.5, 4, 1.5]",
                (x, w, "full"),
                {"h": a([0.0, 1.0, 2.5, 4.0, 1.5])},
                {"conv1d_correlation": {"h": a([0.5, 2.0, 3.5, 3.0, 0.0])}},
            )
        ]
        rng = np.random.default_rng(2024)
        for L, F in [(7, 4), (3, 6), (6, 6)]:
            x, w = rng.normal(size=L), rng.normal(size=F)
            for mode in ("full", "same", "valid"):
                cases.append(
                    CheckCase(
                        f"conv1d vs np.convolve: x {x.shape}, w {w.shape}, mode {mode!r}",
                        (x, w, mode),
                        {"h": np.convolve(x, w, mode)},
                        {"conv1d_correlation": {"h": np.convolve(x, w[::-1], mode)}},
                    )
                )
        return cases
    if task_id == "2.1":
        # out[i, j] = x[i, j] - x[i+1, j+1] + 0.5 = -3.5 everywhere; the flipped kernel gives +4.5.
        x = np.arange(9.0).reshape(1, 1, 3, 3)
        w = a([[[[1.0, 0.0], [0.0, -1.0]]]])
        return [
            CheckCase(
                "hand-worked: x = arange(9).reshape(1, 1, 3, 3), w = [[1, 0], [0, -1]], b = [0.5]",
                (x, w, a([0.5]), 1, 0),
                {"out": np.full((1, 1, 2, 2), -3.5)},
                {
                    "conv2d_flipped_kernel": {"out": np.full((1, 1, 2, 2), 4.5)},
                    "conv2d_no_bias": {"out": np.full((1, 1, 2, 2), -4.0)},
                },
            )
        ]
    if task_id == "3.1":
        x = a([[[[1.0, 3.0, 0.0], [2.0, 0.0, 5.0], [4.0, 1.0, 1.0]]]])
        return [
            CheckCase(
                "hand-worked: 3x3 input, size 2, stride 1 (overlapping windows)",
                (x, 2, 1),
                {"out": a([[[[3.0, 5.0], [4.0, 5.0]]]])},
            )
        ]
    if task_id == "3.2":
        ties = a([[[[1.0, 3.0], [3.0, 2.0]]]])
        overlap = a([[[[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]]])
        return [
            CheckCase(
                "tie rule: window [[1, 3], [3, 2]], dout = 1: the FIRST maximum (row-major) gets it",
                (a([[[[1.0]]]]), (ties, 2, 2)),
                {"dx": a([[[[0.0, 1.0], [0.0, 0.0]]]])},
                {
                    "maxpool_backward_split_ties": {"dx": a([[[[0.0, 0.5], [0.5, 0.0]]]])},
                    "maxpool_backward_all_ties": {"dx": a([[[[0.0, 1.0], [1.0, 0.0]]]])},
                    "maxpool_backward_last_tie": {"dx": a([[[[0.0, 0.0], [1.0, 0.0]]]])},
                },
            ),
            CheckCase(
                "overlap: x = [[0, 5, 0], [0, 0, 0]], size 2, stride 1, dout = [1, 2]: the 5 gets 1 + 2",
                (a([[[[1.0, 2.0]]]]), (overlap, 2, 1)),
                {"dx": a([[[[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]]])},
                {"maxpool_backward_assign_overlap": {"dx": a([[[[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]]])}},
            ),
        ]
    if task_id == "4.1":
        x = a([[[[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]]])
        zeros = {
            "w1": np.zeros((2, 1, 3, 3)),
            "b1": np.zeros(2),
            "w2": np.zeros((1, 2, 1, 3)),
            "b2": np.zeros(1),
        }
        return [
            CheckCase(
                "all weights and biases zero, lam = 0.5: F(x) = 0 so H(x) = 0.5 * x",
                (x, zeros, 0.5),
                {"out": 0.5 * x},
                {"residual_no_lam": {"out": x}, "residual_relu_after_sum": {"out": np.maximum(0.5 * x, 0)}},
            )
        ]
    if task_id == "5.1":
        lenet = [
            ("conv", 6, 5, 1, 0),
            ("relu",),
            ("pool", 2, 2),
            ("conv", 16, 5, 1, 0),
            ("relu",),
            ("pool", 2, 2),
            ("fc", 120),
            ("relu",),
            ("fc", 84),
            ("relu",),
            ("fc", 10),
        ]
        shapes = [(6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5)]
        shapes += [(120,), (120,), (84,), (84,), (10,)]
        # conv 5*5*1*6 + 6 and 5*5*6*16 + 16; fc 400*120 + 120, 120*84 + 84, 84*10 + 10
        params = [156, 0, 0, 2416, 0, 0, 48120, 0, 10164, 0, 850]

        def with_params(**changed: int) -> dict[str, Any]:
            return {"shapes": shapes, "params": [changed.get(f"l{i}", p) for i, p in enumerate(params)]}

        return [
            CheckCase(
                "hand-worked: LeNet-5 on (1, 32, 32): [conv 5x5 -> relu -> pool 2x2] x 2 -> fc 120, 84, 10",
                ((1, 32, 32), lenet),
                {"shapes": shapes, "params": params},
                {
                    "shapes_conv_no_bias": with_params(l0=150, l3=2400),
                    "shapes_conv_no_depth": with_params(l3=416),
                    "shapes_fc_no_bias": with_params(l6=48000, l8=10080, l10=840),
                },
            ),
            CheckCase(
                "hand-worked (CS231n): 10 filters 5x5, stride 1, pad 2 on (3, 32, 32): 5*5*3 + 1 = 76 each",
                ((3, 32, 32), [("conv", 10, 5, 1, 2)]),
                {"shapes": [(10, 32, 32)], "params": [760]},
                {"shapes_conv_no_bias": {"shapes": [(10, 32, 32)], "params": [750]}},
            ),
            CheckCase(
                "a 7x7 filter on a (1, 4, 4) input padded by 1 does not fit",
                ((1, 4, 4), [("conv", 2, 7, 1, 1)]),
                Raised("ValueError", "filter size F=7 is larger than the padded input"),
            ),
        ]
    if task_id == "5.2":
        lenet = [("conv", 6, 5, 1, 0), ("relu",), ("pool", 2, 2), ("conv", 16, 5, 1, 0), ("pool", 2, 2)]
        return [
            CheckCase(
                "three 3x3 convolutions, stride 1, see as far as one 7x7: (7, 1)",
                ([("conv", 8, 3, 1, 1)] * 3,),
                {"size": 7, "jump": 1},
                {"rf_add_f": {"size": 10, "jump": 1}},
            ),
            CheckCase(
                "hand-worked: LeNet's features, r = 1 + 4 + 1 + 4*2 + 1*2 = 16, jump 1*1*2*1*2 = 4",
                (lenet,),
                {"size": 16, "jump": 4},
                {
                    "rf_no_jump": {"size": 11, "jump": 4},
                    "rf_pool_ignored": {"size": 9, "jump": 1},
                    "rf_size_times_stride": {"size": 28, "jump": 4},
                },
            ),
            CheckCase("no layers: one unit is one pixel: (1, 1)", ([],), {"size": 1, "jump": 1}),
            CheckCase(
                "a stack ending in fc has no receptive field",
                ([("conv", 4, 3, 1, 1), ("fc", 10)],),
                Raised("ValueError", "layers[1] is fc: each of its units sees the whole input"),
            ),
        ]
    return []


def _gradcheck_conv2d() -> str | None:
    """conv2d_backward against finite differences of your conv2d_forward (run once 2.1 passes)."""
    rng = np.random.default_rng(7)
    x, w, b = rng.normal(size=(1, 2, 4, 3)), rng.normal(size=(2, 2, 2, 2)), rng.normal(size=2)
    stride, pad = 2, 1
    out, cache = conv.conv2d_forward(x, w, b, stride, pad)
    dout = rng.normal(size=out.shape)
    got, _ = call("2.2", conv.conv2d_backward, (dout, cache))
    if not isinstance(got, dict):
        return "; ".join(problems("2.2", got, {"dx": x}))
    numeric = {
        "dx": gradcheck.numerical_gradient(lambda v: conv.conv2d_forward(v, w, b, stride, pad)[0], x, dout),
        "dw": gradcheck.numerical_gradient(lambda v: conv.conv2d_forward(x, v, b, stride, pad)[0], w, dout),
        "db": gradcheck.numerical_gradient(lambda v: conv.conv2d_forward(x, w, v, stride, pad)[0], b, dout),
    }
    found = problems("2.2", got, numeric, GRAD_RTOL)
    return "; ".join(found) if found else None


def _derived_cases(task_id: str, fixed: Sequence[CheckCase]) -> list[CheckCase]:
    """Cases derived from the fixed ones: residual_block_backward with lam changed to 3.

    dx = dx_F + lam * dout, and dx_F does not depend on lam, so the expected dx for lam = 3 follows
    from the stored one; the gradients of the weights do not change.
    """
    if task_id != "4.2":
        return []
    derived, new_lam = [], 3.0
    for case in fixed:
        dout, cache = case.args
        lam, expected = cache[0], case.expected
        if not isinstance(expected, dict):
            continue
        dx_f = expected["dx"] - lam * dout
        label = case.label.replace(f"lam {lam}", f"lam {new_lam}")
        derived.append(
            CheckCase(
                f"skip path, {label}",
                (dout, (new_lam, *cache[1:])),
                {**expected, "dx": dx_f + new_lam * dout},
                {
                    "residual_backward_skip_no_lam": {**expected, "dx": dx_f + dout},
                    "residual_backward_no_skip": {**expected, "dx": dx_f},
                },
            )
        )
    return derived


# --------------------------------------------------------------------------- running the checks


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No warnings, no numpy floating-point warnings and nothing on stderr while inside."""
    with warnings.catch_warnings(), np.errstate(all="ignore"), contextlib.redirect_stderr(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


@dataclass
class Report:
    """The outcome of one task's visible checks.

    ``failures`` holds one entry per distinct diagnosis: the first case that showed it, then how
    many more cases fail the same way. ``n_failed`` counts every failed case.
    """

    task: tasks.Task
    n_checks: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_exception: BaseException | None = None
    n_failed: int = 0

    def message(self) -> str:
        task = self.task
        failed = max(self.n_failed, len(self.failures))
        head = f"Task {task.id} {task.function}: {failed} of {self.n_checks} checks failed."
        body = [f"- {f}".replace("\n", "\n  ") for f in self.failures]
        return "\n".join([head, *body, *self.notes])


def _student_function(task: tasks.Task) -> Callable[..., Any]:
    # looked up at every call, so that a re-imported or edited module is what gets checked
    return getattr(_MODULES[task.module], task.function)


def _passes_fixed_cases(task_id: str) -> bool:
    """Whether another task (a dependency) passes its own fixed cases; quietly, never raising."""
    fn = _student_function(tasks.TASKS[task_id])
    with quiet():
        for case in fixed_cases(task_id):
            got, _ = call(task_id, fn, _copy(case.args))
            if problems(task_id, got, case.expected):
                return False
    return True


def _copy(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, tuple | list):
        return type(obj)(_copy(x) for x in obj)
    if isinstance(obj, dict):
        return {k: _copy(v) for k, v in obj.items()}
    return obj


_DEPENDS = {"2.2": ("2.1",), "4.1": ("2.1",), "4.2": ("2.1", "2.2")}

_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _kind(got: Outcome, found: Diagnosis | None, mutated: str | None) -> tuple[Any, ...]:
    """What makes two failed cases "the same way": the known mistakes they look like, else the kind of
    problem (the exception's type, or the problem's sentence with its numbers left out)."""
    if found is None:
        shape: tuple[Any, ...] = ()
    elif found.hints:
        shape = ("looks like", *found.hints)
    elif isinstance(got, Raised):
        shape = ("raised", got.type)
    else:
        shape = ("problem", *(_NUMBER.sub("#", p) for p in found.problems))
    return (*shape, "mutated" if mutated else "")


def _words_problem(case: CheckCase, got: Outcome) -> str | None:
    """The right exception type whose message lacks the words the task's rules ask for."""
    if case.words is None or not isinstance(got, Raised) or not isinstance(case.expected, Raised):
        return None
    if got.type != case.expected.type or case.words in got.message:
        return None
    return (
        f"raised {got.type}({got.message!r}); its message must contain {case.words!r} "
        "(the docstring lists the words of each rule)"
    )


def _checks_of_the_same_way(numbers: list[int]) -> str:
    return ", ".join(str(i) for i in numbers[:8]) + (", ..." if len(numbers) > 8 else "")


def run_checks(task_id: str) -> Report:
    """Run every visible check of one task. A ``NotImplementedError`` propagates unchanged.

    The hand-worked examples come first (the simplest first), then the fixed cases from
    ``check_cases.json``, then cases derived from them. Failed cases that fail the same way (the same
    known mistake, or the same kind of problem) make one entry: the first of them, and a count.
    """
    task = tasks.TASKS[task_id]
    report = Report(task)
    messages = {k: v["message"] for k, v in load_cases()["mistakes"].items()}
    fixed = fixed_cases(task_id)
    hand = _hand_cases(task_id)
    all_cases = [*hand, *fixed, *_derived_cases(task_id, fixed)]
    runs = []
    for case in all_cases:
        args = _copy(case.args)
        got, exc = call(task_id, _student_function(task), args)
        if isinstance(exc, NotImplementedError):
            raise exc
        runs.append((got, exc, find_mutation(task_id, case.args, args)))
    # an exception names a mistake only if that mistake explains every fixed case
    fixed_runs = zip(fixed, runs[len(hand) : len(hand) + len(fixed)], strict=True)
    consistent = consistent_mistakes([(got, c.expected, c.variants) for c, (got, _, _) in fixed_runs])
    groups: dict[tuple[Any, ...], list[int]] = {}  # kind of failure -> the checks that failed so
    texts: dict[tuple[Any, ...], str] = {}
    missing_words: list[str] = []  # the words of the failing argument rules after the first
    for i, (case, (got, exc, mutated)) in enumerate(zip(all_cases, runs, strict=True), start=1):
        report.n_checks += 1
        found = diagnose(task_id, got, case.expected, case.variants, messages, consistent=consistent)
        words = _words_problem(case, got)
        if words and found is None:
            found = Diagnosis([words])
        if not (found or mutated):
            continue
        report.n_failed += 1
        if exc is not None and report.first_exception is None:
            report.first_exception = exc
        # the argument rules (Task 1.1) make one entry, which lists the words every failing rule needs
        key = ("rules",) if case.words else _kind(got, found, mutated)
        if key in groups:
            groups[key].append(i)
            if case.words:
                missing_words.append(repr(case.words))
            continue
        groups[key] = [i]
        text = found.text() if found else str(mutated)
        if found and mutated:
            text += f"\nAlso: {mutated}"
        texts[key] = f"check {i} ({case.label}): {text}"
    for key, numbers in groups.items():
        entry = texts[key]
        more = len(numbers) - 1
        which = _checks_of_the_same_way(numbers[1:])
        if more and key == ("rules",):
            rules = "rule fails" if more == 1 else "rules fail"
            entry += (
                f"\n... and {more} more argument {rules} (check {which}): each must raise ValueError with a "
                f"message containing, in turn, {', '.join(missing_words)}."
            )
        elif more:
            cases = "case fails" if more == 1 else "cases fail"
            entry += f"\n... and {more} more {cases} the same way (check {which})."
        report.failures.append(entry)
    if task_id == "2.2":
        if _passes_fixed_cases("2.1"):
            report.n_checks += 1
            try:
                problem = _gradcheck_conv2d()
            except Exception as exc:  # e.g. a forward pass that fails on float64 perturbations
                problem = f"raised {type(exc).__name__}: {exc}"
            if problem:
                report.n_failed += 1
                report.failures.append(
                    f"check {report.n_checks} (numerical gradient of conv2d_forward): {problem}"
                )
        else:
            report.notes.append("(The numerical-gradient check runs once conv2d_forward, Task 2.1, passes.)")
    if report.failures:
        for dep in _DEPENDS.get(task_id, ()):
            try:
                ok = _passes_fixed_cases(dep)
            except NotImplementedError:
                ok = False
            if not ok:
                t = tasks.TASKS[dep]
                report.notes.append(
                    f"Note: {task.function} calls {t.function} (Task {t.id}), which does not pass its own "
                    f"checks yet: fix Task {t.id} first (check_task({t.id!r}))."
                )
    return report


# --------------------------------------------------------------------------- fresh code, short tracebacks


def _package_name() -> str:
    return __name__.rpartition(".")[0]


def student_modules() -> list[ModuleType]:
    """The modules the students write (``conv``, ``pool``, ``residual``), in the order of the tasks."""
    package = _package_name()
    names = dict.fromkeys(t.module for t in tasks.TASKS.values())
    return [sys.modules.get(f"{package}.{name}") or _MODULES[name] for name in names]


def reload_student_modules() -> None:
    """Run the student's files again, as they are on disk now, so that a check never sees old code.

    Each student module is re-executed in its own namespace from its source (not from a cached
    ``.pyc``, which can be stale when a file changes twice within a second), in the order of the
    tasks, so that ``from .conv import ...`` in a later one picks up the new functions. Other modules
    of the package that imported a student function by name are pointed at the new one. Errors in the
    file (a ``SyntaxError``, a ``NameError`` at module level) propagate.
    """
    package = _package_name()
    reloaded = student_modules()
    old: dict[int, tuple[Any, ModuleType, str]] = {}
    for module in reloaded:
        for name, value in vars(module).items():
            if getattr(value, "__module__", None) == module.__name__:
                old[id(value)] = (value, module, name)
    for module in reloaded:
        path = module.__file__
        if path is None:
            continue
        code = compile(Path(path).read_bytes(), path, "exec", dont_inherit=True)
        exec(code, module.__dict__)  # what importlib.reload does, minus the bytecode cache
        linecache.checkcache(path)  # tracebacks show the lines that ran
        _MODULES[module.__name__.rpartition(".")[2]] = module
    for name, module in list(sys.modules.items()):
        if not name.startswith(package + ".") or module in reloaded or module is None:
            continue
        for attr, value in list(vars(module).items()):
            hit = old.get(id(value))
            if hit is not None and hit[0] is value and hasattr(hit[1], hit[2]):
                setattr(module, attr, getattr(hit[1], hit[2]))


def _student_files() -> set[str]:
    return {os.path.realpath(m.__file__) for m in student_modules() if m.__file__}


def student_traceback(exc: BaseException) -> BaseException:
    """``exc`` with its traceback cut to the frames in the student's files (the checks' own frames,
    above them, and numpy's, below them, left out). Unchanged if none of its frames is the student's."""
    files = _student_files()
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    mine = [i for i, t in enumerate(frames) if os.path.realpath(t.tb_frame.f_code.co_filename) in files]
    if not mine:
        return exc
    new = None
    for t in reversed(frames[mine[0] : mine[-1] + 1]):
        new = types.TracebackType(new, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return exc.with_traceback(new)


def check_task(task_id: str) -> None:
    """Run the visible checks of one task (e.g. ``"2.1"``).

    First runs your files again as they are now (:func:`reload_student_modules`): the check always sees
    the code you last saved, with or without ``%autoreload``, after a kernel restart or not.

    Prints one line when everything passes. Otherwise raises ``AssertionError`` saying which check
    failed, what differs, and which known mistake it looks like; cases that fail the same way are
    counted, not repeated. A function that is still a stub raises its ``NotImplementedError`` ("Task
    2.1: implement conv2d_forward in cnnlab/conv.py"). Tracebacks show only the lines of your files.

    While nbgrader autogrades (``NBGRADER_EXECUTION=autograde``) nothing is raised: the diagnosis is
    printed, so that the hidden grading in the same cell still runs.
    """
    __tracebackhide__ = True  # IPython and pytest leave this frame out of tracebacks
    if task_id not in tasks.TASKS:
        raise ValueError(f"unknown task {task_id!r}; tasks are {', '.join(tasks.TASKS)}")
    task = tasks.TASKS[task_id]
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        try:
            reload_student_modules()
            with quiet():
                report = run_checks(task_id)
        except NotImplementedError as exc:
            print(f"Task {task_id} is not implemented yet: {exc}")
            return
        except Exception as exc:  # the checks themselves failed: report, never raise while grading
            error = f"{type(exc).__name__}: {exc}"
            print(f"Task {task_id} {task.function}: the visible checks could not run ({error})")
            return
        if report.failures:
            print(report.message())
            return
    else:
        try:
            reload_student_modules()
            report = run_checks(task_id)
        except Exception as exc:  # a syntax error in the file, a stub's NotImplementedError, ...
            raise student_traceback(exc) from None
        if report.failures:
            cause = report.first_exception
            raise AssertionError(report.message()) from (cause and student_traceback(cause))
    print(f"Task {task_id} {task.function}: all {report.n_checks} checks passed.")


__all__ = [
    "RTOL",
    "CheckCase",
    "Diagnosis",
    "Malformed",
    "Raised",
    "call",
    "check_task",
    "compare_arrays",
    "close_enough",
    "compare_values",
    "consistent_mistakes",
    "describe_args",
    "diagnose",
    "find_mutation",
    "match_variants",
    "problems",
    "relative_error",
    "reload_student_modules",
    "split_result",
    "student_modules",
    "student_traceback",
]
