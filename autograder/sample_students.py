"""The sample students of the demo (``autograder/samples/<student>.toml``) and reference variants:
the reference with some tasks left as stubs, or with named classic mistakes planted."""

from __future__ import annotations

import copy
import json
import shutil
import tomllib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autograder.manifest import Assignment, load_manifest
from autograder.markers import function_regions, grade_id
from autograder.nbgrader_run import AUTOGRADER_DIR, SOLUTIONS_PKG, CourseError, course_root

SAMPLES_DIR = AUTOGRADER_DIR / "samples"


STUDENTS = ("ada", "grace", "linus", "bobby")  # the bundled samples, in table order


TIMESTAMP = "2026-11-26 10:00:00.000000 UTC"


@dataclass
class Sample:
    """A sample student, read from ``autograder/samples/<name>.toml``."""

    name: str
    description: str
    default: str  # what a manifest file not listed gets: "stub" or "reference"
    assignments: dict[str, dict] = field(default_factory=dict)


def load_sample(name: str, samples_dir: Path = SAMPLES_DIR) -> Sample:
    path = Path(samples_dir) / f"{name}.toml"
    if not path.is_file():
        raise CourseError(f"no sample student {name!r} ({path})")
    data = tomllib.loads(path.read_text())
    unknown = set(data) - {"description", "default", "assignments"}
    if unknown:
        raise CourseError(f"{path.name}: unknown keys {sorted(unknown)}")
    return Sample(name, data.get("description", ""), data.get("default", "stub"), data.get("assignments", {}))


def reference_variant(module: str, done: Iterable[str] | None = None, mistakes: Sequence[str] = ()) -> str:
    """A student's version of ``cnnlab/<module>.py`` made from the reference.

    Args:
        module: module name, e.g. ``"conv"``.
        done: task IDs the student has done (default: all of the module); the others are stubbed
            exactly as in the release.
        mistakes: ids of :data:`autograder.mistakes.MISTAKES` to plant, applied in order.

    No solution markers remain: a marker is a comment and must not matter to the grader.
    """
    from autograder.build import strip_module
    from autograder.mistakes import BY_ID
    from autograder.reference import load_reference

    tasks = load_reference().tasks.TASKS
    text = (SOLUTIONS_PKG / f"{module}.py").read_text()
    for mid in mistakes:
        if mid not in BY_ID:
            raise CourseError(f"unknown mistake {mid!r} (see autograder/mistakes.py)")
        m = BY_ID[mid]
        if m.module != module:
            raise CourseError(f"mistake {mid!r} patches {m.module}.py, not {module}.py")
        if text.count(m.old) != 1:
            raise CourseError(f"mistake {mid!r} does not apply after {list(mistakes)}: `old` not found once")
        text = text.replace(m.old, m.new)
    by_function = {t.function: t.id for t in tasks.values() if t.module == module}
    done = set(by_function.values()) if done is None else set(done)
    lines = text.splitlines(keepends=True)
    drop = set()
    for begin, end, fname in function_regions(text, f"solutions/cnnlab/{module}.py"):
        if by_function.get(fname) in done:
            drop.update((begin, end))  # keep the body, lose the markers
    text = "".join(line for i, line in enumerate(lines) if i not in drop)
    stubbed, _ = strip_module(text, module, tasks)  # the remaining regions become release stubs
    return stubbed


def _student_file(spec: object, rel: str, released: Path, where: str, samples_dir: Path) -> str | None:
    """The text of one student file from its sample spec (None: not submitted)."""
    module = Path(rel).stem
    if spec == "stub":
        return (released / rel).read_text()
    if spec == "missing":
        return None
    if spec == "reference":
        return reference_variant(module)
    if isinstance(spec, dict):
        unknown = set(spec) - {"tasks", "mistakes", "file"}
        if unknown:
            raise CourseError(f"{where}: unknown keys {sorted(unknown)}")
        if "file" in spec:
            return (Path(samples_dir) / spec["file"]).read_text()
        return reference_variant(module, spec.get("tasks"), spec.get("mistakes", ()))
    raise CourseError(f"{where}: {spec!r} is not stub, missing, reference or a table")


def damaged_notebook(text: str, spec: object, where: str = "notebook") -> str | None:
    """A submitted notebook from the released ``text`` (None: not submitted). ``spec``, the one
    vocabulary of the samples, the tests and the benchmark: ``"release"``, ``"missing"``,
    ``"invalid_json"`` (cut in half, as by a crashed save), or a table of check cells by grade id:
    ``delete_cells`` (removed), ``duplicate_cells`` (twice), ``markdown_cells`` (made markdown) and
    ``replace_cells`` (grade id -> new source)."""
    if spec == "release":
        return text
    if spec == "missing":
        return None
    if spec == "invalid_json":
        return text[: len(text) // 2]
    if not isinstance(spec, dict):
        raise CourseError(f"{where}: notebook = {spec!r} is not release, missing, invalid_json or a table")
    unknown = set(spec) - {"delete_cells", "duplicate_cells", "markdown_cells", "replace_cells"}
    if unknown:
        raise CourseError(f"{where}: unknown keys {sorted(unknown)}")
    nb = json.loads(text)
    replace = dict(spec.get("replace_cells", {}))
    cells = []
    for cell in nb["cells"]:
        gid = grade_id(cell)
        if gid in spec.get("delete_cells", ()):
            continue
        if gid in spec.get("markdown_cells", ()):
            cell = {"cell_type": "markdown", "metadata": cell["metadata"], "source": cell["source"]}
        if gid in replace:
            cell = {**cell, "source": replace[gid]}
        cells.append(cell)
        if gid in spec.get("duplicate_cells", ()):
            cells.append(copy.deepcopy(cell))
    nb["cells"] = cells
    return json.dumps(nb, indent=1) + "\n"


def fabricate_submission(
    root: Path,
    student: str,
    assignment: Assignment,
    files: dict[str, str | None],
    notebook: object = "release",
) -> Path:
    """Write ``<root>/submitted/<student>/<assignment>/``: the released folder, with ``files``
    (editable files such as ``cnnlab/conv.py`` -> their text, or None to leave them out; files not
    listed stay as released), every notebook as :func:`damaged_notebook` makes it from ``notebook``,
    and nbgrader's ``timestamp.txt``. The one writer of fabricated submissions (demo, tests, bench)."""
    released = Path(root) / "release" / assignment.name
    if not released.is_dir():
        raise CourseError(f"{released} does not exist: run `python -m autograder release` first")
    dest = Path(root) / "submitted" / student / assignment.name
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(released, dest)
    for rel, text in files.items():
        (dest / rel).unlink(missing_ok=True)
        if text is not None:
            (dest / rel).write_text(text)
    for nb_name in assignment.notebooks:
        text = damaged_notebook((released / nb_name).read_text(), notebook, f"{student}: {nb_name}")
        (dest / nb_name).unlink()
        if text is not None:
            (dest / nb_name).write_text(text)
    (dest / "timestamp.txt").write_text(TIMESTAMP + "\n")
    return dest


def fabricate(
    root: Path | None = None,
    students: Sequence[str] = STUDENTS,
    manifest: dict[str, Assignment] | None = None,
    samples_dir: Path = SAMPLES_DIR,
) -> dict[str, list[str]]:
    """Write ``<root>/submitted/<student>/<assignment>/`` for each sample student.

    Each submission is the released folder (notebooks as released, unexecuted: autograde executes
    them) with the student's versions of the manifest's ``files`` and a ``timestamp.txt``.
    Returns the assignments submitted, per student.
    """
    root = Path(root or course_root())
    manifest = load_manifest() if manifest is None else manifest
    submitted: dict[str, list[str]] = {}
    for student in students:
        sample = load_sample(student, samples_dir)
        unknown = set(sample.assignments) - set(manifest)
        if unknown:
            raise CourseError(f"samples/{student}.toml: unknown assignments {sorted(unknown)}")
        submitted[student] = []
        for name, assignment in manifest.items():
            spec = sample.assignments.get(name, {})
            dest = root / "submitted" / student / name
            if dest.exists():
                shutil.rmtree(dest)
            if spec.get("skip"):
                continue
            released = root / "release" / name
            files = spec.get("files", {})
            extra = set(files) - set(assignment.files)
            if extra:
                raise CourseError(f"samples/{student}.toml: {name}: {sorted(extra)} are not student files")
            texts = {
                rel: _student_file(
                    files.get(rel, sample.default),
                    rel,
                    released,
                    f"samples/{student}.toml: {name}: {rel}",
                    samples_dir,
                )
                for rel in assignment.files
            }
            notebooks = spec.get("notebooks", {})
            if len({str(v) for v in notebooks.values()}) > 1:
                raise CourseError(f"samples/{student}.toml: {name}: one notebook spec per assignment")
            fabricate_submission(root, student, assignment, texts, next(iter(notebooks.values()), "release"))
            submitted[student].append(name)
    return submitted
