"""The course's markers, parsed in one place, and the notebook-cell helpers.

``### BEGIN SOLUTION`` / ``### END SOLUTION`` enclose the reference bodies (``solutions/cnnlab``) and
the solution code in source notebooks; ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` the hidden
tests of check cells. The release build (:mod:`autograder.build`) replaces the first and removes the
second, the book (``tools/book.py``) shows solutions without their marker lines, the sample students
(:mod:`autograder.sample_students`) keep or stub single regions, the batch grader's store tells
reference modules from provided ones, and the release check (:mod:`autograder.release`) proves that
neither kind of region reached the student release: all of them with the functions below.
"""

from __future__ import annotations

import ast
from typing import Any

from autograder.errors import CnnlabError

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
#: text that must never appear in the student release
LEAK_MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
    "cnnlab_reference",
)


def split_regions(lines: list[str], begin: str = BEGIN, end: str = END) -> tuple[list[str], list[str]]:
    """(lines inside ``begin``/``end`` regions, lines outside), the marker lines themselves excluded."""
    inside, outside, within = [], [], False
    for line in lines:
        if begin in line:
            within = True
        elif end in line:
            within = False
        else:
            (inside if within else outside).append(line)
    return inside, outside


def cell_source(cell: dict[str, Any]) -> str:
    """A notebook cell's source as one string (nbformat stores a string or a list of lines)."""
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else str(src)


def grade_id(cell: Any) -> str | None:
    """The nbgrader ``grade_id`` of a cell (``taskX_Y`` for Task X.Y's check cell), else None."""
    if not isinstance(cell, dict):
        return None
    meta = cell.get("metadata")
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    gid = nbg.get("grade_id") if isinstance(nbg, dict) else None
    return gid if isinstance(gid, str) else None


class MarkerError(CnnlabError):
    """Markers that do not pair up (a region never closed, an end without a begin, a nested begin)."""


def has_solution(text: str) -> bool:
    """Whether a module's or cell's text holds a solution region."""
    return any(line.strip().startswith(BEGIN) for line in text.splitlines())


def region_spans(lines: list[str], where: str, begin: str = BEGIN, end: str = END) -> list[tuple[int, int]]:
    """Pairs (begin, end) of 0-based indices of the marker lines; :class:`MarkerError` on bad pairing."""
    spans, start = [], None
    for i, line in enumerate(lines):
        text = line.strip()
        if text.startswith(begin):
            if start is not None:
                raise MarkerError(f"{where}:{i + 1}: nested {begin}")
            start = i
        elif text.startswith(end):
            if start is None:
                raise MarkerError(f"{where}:{i + 1}: {end} without {begin}")
            spans.append((start, i))
            start = None
    if start is not None:
        raise MarkerError(f"{where}:{start + 1}: {begin} is never closed")
    return spans


def enclosing_function(tree: ast.Module, lineno: int) -> str | None:
    """The name of the innermost function holding 1-based line ``lineno``, else None."""
    best = None
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            if node.lineno <= lineno <= (node.end_lineno or node.lineno):
                if best is None or node.lineno > best.lineno:
                    best = node
    return best.name if best else None


def function_regions(text: str, where: str) -> list[tuple[int, int, str | None]]:
    """(begin, end, function) of each solution region of a module: 0-based marker lines and the
    function the region is in (None at module level)."""
    tree = ast.parse(text)
    return [(b, e, enclosing_function(tree, b + 1)) for b, e in region_spans(text.splitlines(), where)]


def strip_between(source: str, begin: str, end: str, stub: str | None, where: str = "a cell") -> str:
    """``source`` with each ``begin``/``end`` region replaced by ``stub`` (indented like the begin
    marker), or dropped when ``stub`` is None; :class:`MarkerError` on bad pairing."""
    lines = source.splitlines(keepends=True)
    spans = region_spans(lines, where, begin, end)
    out, pos = [], 0
    for b, e in spans:
        out.extend(lines[pos:b])
        if stub is not None:
            indent = lines[b][: len(lines[b]) - len(lines[b].lstrip())]
            out.extend(indent + s + "\n" for s in stub.splitlines())
        pos = e + 1
    out.extend(lines[pos:])
    return "".join(out).rstrip("\n")


def drop_marker_lines(text: str, begin: str = BEGIN, end: str = END) -> str:
    """``text`` without its marker lines (the code between them stays)."""
    return "\n".join(ln for ln in text.splitlines() if not ln.strip().startswith((begin, end)))
