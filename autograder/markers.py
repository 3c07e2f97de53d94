"""The course's markers and the notebook-cell helpers, in one place.

``### BEGIN SOLUTION`` / ``### END SOLUTION`` enclose the reference bodies (``solutions/cnnlab``) and
the solution code in source notebooks; ``### BEGIN HIDDEN TESTS`` / ``### END HIDDEN TESTS`` the hidden
tests of check cells. The release build replaces the first and removes the second; the release check
(:mod:`autograder.release`) proves that neither reached the student release.
"""

from __future__ import annotations

from typing import Any

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
