"""The course manifest, ``autograder/assignments.toml``, read in exactly one place.

Everything that needs to know the assignments (the nbgrader configuration, the hidden grader, the
course CLI and the tests) calls :func:`load_manifest`::

    >>> from autograder.manifest import load_manifest
    >>> m = load_manifest()
    >>> m["02_conv_layer"].files
    ('cnnlab/conv.py',)
    >>> sorted(m["02_conv_layer"].points) == m["02_conv_layer"].tasks
    True

:func:`exclude_overwriting` turns the manifest's ``files`` into nbgrader's
``Autograde.exclude_overwriting``, after checking every entry: nbgrader silently ignores a directory,
a glob or a ``./`` prefix and then grades the instructor's copy instead of the student's.
"""

from __future__ import annotations

import os
import posixpath
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

try:
    from autograder.errors import CnnlabError
except ImportError:  # loaded by path from nbgrader_config.py, where `autograder` is no package
    CnnlabError = Exception  # type: ignore[misc,assignment]

#: ``autograder/assignments.toml``, or ``$CNNLAB_MANIFEST`` (the tests use it to try a broken manifest).
DEFAULT_MANIFEST = Path(__file__).resolve().parent / "assignments.toml"
MANIFEST_PATH = Path(os.environ.get("CNNLAB_MANIFEST") or DEFAULT_MANIFEST)

_GLOB_CHARS = set("*?[]{}")


class ManifestError(CnnlabError):
    """The manifest is malformed, or names a file that is not where it says."""


@dataclass(frozen=True)
class Assignment:
    """One nbgrader assignment of the course."""

    name: str  # the nbgrader assignment id, e.g. "02_conv_layer"
    notebooks: tuple[str, ...]  # notebook file names, e.g. ("02_conv_layer.ipynb",)
    files: tuple[str, ...]  # student-editable files, relative to the assignment folder
    points: dict[str, int | float] = field(default_factory=dict)  # task ID -> points
    due: str | None = None  # the due date, ISO 8601 in UTC (autograder/deadlines.py)

    @property
    def tasks(self) -> list[str]:
        """The task IDs graded in this assignment, in manifest order."""
        return list(self.points)

    @property
    def total(self) -> int | float:
        """The assignment's maximum score."""
        return sum(self.points.values())

    @property
    def notebook_ids(self) -> list[str]:
        """nbgrader's notebook ids: the notebook names without ``.ipynb``."""
        return [posixpath.splitext(nb)[0] for nb in self.notebooks]


def _strings(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        raise ManifestError(f"{where} must be a list of non-empty strings, got {value!r}")
    return tuple(value)


def load_manifest(path: str | Path = MANIFEST_PATH) -> dict[str, Assignment]:
    """The assignments of ``path`` (default :data:`MANIFEST_PATH`), in file order.

    Raises :class:`ManifestError` on a malformed entry or a task graded in two assignments.
    The ``files`` entries are checked with :func:`check_file_entry` (shape only; existence is
    checked against an assembled source folder by :func:`exclude_overwriting`).
    """
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as err:
        raise ManifestError(f"{path}: {err}") from err
    table = data.get("assignments")
    if not isinstance(table, dict) or not table:
        raise ManifestError(f"{path}: no [assignments.<name>] tables")
    manifest: dict[str, Assignment] = {}
    seen_tasks: dict[str, str] = {}
    for name, entry in table.items():
        where = f"{path.name}: assignments.{name}"
        if not isinstance(entry, dict):
            raise ManifestError(f"{where} must be a table")
        unknown = set(entry) - {"notebooks", "files", "points", "due"}
        if unknown:
            raise ManifestError(f"{where}: unknown keys {sorted(unknown)}")
        notebooks = _strings(entry.get("notebooks"), f"{where}.notebooks")
        for nb in notebooks:
            if "/" in nb or not nb.endswith(".ipynb"):
                raise ManifestError(
                    f"{where}.notebooks: {nb!r} must be a notebook file name ending in .ipynb"
                )
        files = _strings(entry.get("files", []), f"{where}.files")
        for rel in files:
            check_file_entry(rel, f"{where}.files")
        points = entry.get("points")
        if not isinstance(points, dict) or not points:
            raise ManifestError(f"{where}.points must be a table of task ID = points")
        for task, value in points.items():
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ManifestError(f"{where}.points: {task} = {value!r} must be a positive number")
            if task in seen_tasks:
                raise ManifestError(f"{where}.points: task {task} is already graded in {seen_tasks[task]}")
            seen_tasks[task] = name
        due = entry.get("due")
        if due is not None:
            if not hasattr(due, "isoformat"):
                raise ManifestError(f"{where}.due must be a TOML date-time such as 2026-12-10T23:59:00Z")
            if getattr(due, "tzinfo", None) is None:
                raise ManifestError(f"{where}.due must name its time zone (e.g. end with Z for UTC)")
            due = due.isoformat()
        manifest[name] = Assignment(name, notebooks, files, dict(points), due)
    return manifest


def task_points(manifest: dict[str, Assignment] | None = None) -> dict[str, int | float]:
    """Points per task ID over all assignments, e.g. ``{"X.Y": 2, ...}``."""
    manifest = load_manifest() if manifest is None else manifest
    return {task: pts for a in manifest.values() for task, pts in a.points.items()}


def check_file_entry(rel: str, where: str = "files") -> None:
    """Raise :class:`ManifestError` unless ``rel`` is a plain relative POSIX file path.

    nbgrader compares ``os.path.join(source, entry)`` with the files it finds, so only an exact,
    normalised relative path of a file ever matches; anything else is ignored without a word.
    """
    problems = []
    if rel != rel.strip():
        problems.append("has leading/trailing spaces")
    if "\\" in rel:
        problems.append("uses a backslash (use /)")
    if rel.startswith("/"):
        problems.append("is absolute")
    if _GLOB_CHARS & set(rel):
        problems.append("is a glob pattern (nbgrader does not expand globs)")
    if rel.endswith("/"):
        problems.append("names a directory (list each file)")
    parts = rel.split("/")
    if "." in parts or ".." in parts or "" in parts[:-1]:
        problems.append("is not normalised (no ./, ../ or //)")
    if not problems and posixpath.normpath(rel) != rel:
        problems.append(f"is not normalised (would be {posixpath.normpath(rel)!r})")
    if problems:
        raise ManifestError(f"{where}: {rel!r} {'; '.join(problems)}: nbgrader would silently ignore it")


def exclude_overwriting(
    source_root: str | Path | None = None,
    manifest: dict[str, Assignment] | None = None,
    require_source: bool = False,
) -> dict[str, list[str]]:
    """nbgrader's ``Autograde.exclude_overwriting``: per assignment, the student files to keep.

    Every entry is checked with :func:`check_file_entry`, and must be an existing regular file in
    ``source_root/<assignment>/`` (the assembled nbgrader source). An assignment whose source folder
    does not exist yet is checked for shape only, unless ``require_source`` is true.
    """
    manifest = load_manifest() if manifest is None else manifest
    result: dict[str, list[str]] = {}
    for name, assignment in manifest.items():
        for rel in assignment.files:
            check_file_entry(rel, f"assignments.{name}.files")
        if source_root is not None:
            folder = Path(source_root) / name
            if folder.is_dir() or require_source:
                for rel in assignment.files:
                    path = folder / rel
                    if path.is_symlink() or not path.is_file():
                        what = "a directory" if path.is_dir() else "no regular file"
                        raise ManifestError(
                            f"assignments.{name}.files: {rel!r} is {what} in the assembled source {folder}"
                        )
        result[name] = list(assignment.files)
    return result
