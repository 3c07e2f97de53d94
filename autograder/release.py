"""The release: ``source/`` assembled from ``solutions/`` and the generated package, ``nbgrader
generate_assignment``, the due dates, and the check that nothing of the solutions reached ``release/``."""

from __future__ import annotations

import json
import re
import shutil
import warnings
from pathlib import Path

from autograder.manifest import Assignment, exclude_overwriting, load_manifest
from autograder.markers import BEGIN, END, LEAK_MARKERS, cell_source, split_regions
from autograder.nbgrader_run import (
    REPO,
    SOLUTIONS_NB,
    SOLUTIONS_PKG,
    CourseError,
    _require,
    course_root,
    db_url,
    run_nbgrader,
)
from autograder.reference import SUBPACKAGE

COURSE_MARKER = ".cnnlab-course"  # marks a folder as a course root that may be wiped by `demo`


def prepare_root(root: Path, fresh: bool = False) -> Path:
    """Create the course root; with ``fresh``, wipe a previous one first.

    A root created here carries :data:`COURSE_MARKER`; only such a folder (or an empty one) is ever
    wiped, never a course root made by hand.
    """
    root = Path(root)
    if fresh and root.exists():
        if not (root / COURSE_MARKER).exists() and any(root.iterdir()):
            raise CourseError(f"{root} is not empty and has no {COURSE_MARKER}: not wiping it")
        shutil.rmtree(root)
    if not root.exists() or not any(root.iterdir()):
        root.mkdir(parents=True, exist_ok=True)
        (root / COURSE_MARKER).write_text("made by `python -m autograder`; `demo` may delete this folder\n")
    return root


def build_release() -> dict[Path, str]:
    """Every file of the student release, built in memory by ``tools.build`` (``make release``)."""
    from autograder import build

    return build.build()


def built_package(files: dict[Path, str] | None = None) -> dict[str, str]:
    """The generated student package ``cnnlab/``, ``{path in the package: text}`` (``conv.py``,
    ``_internal/tasks.py``, ...)."""
    from autograder import build

    files = build_release() if files is None else files
    return {
        path.relative_to(build.RELEASE_PKG).as_posix(): text
        for path, text in files.items()
        if path.is_relative_to(build.RELEASE_PKG)
    }


def committed_release_problems(files: dict[Path, str] | None = None) -> list[str]:
    """Differences between the committed ``cnnlab/``/``notebooks/`` and the build (``--check``)."""
    from autograder import build

    return build.check(build_release() if files is None else files)


def assemble_source(
    root: Path, manifest: dict[str, Assignment], files: dict[Path, str] | None = None
) -> None:
    """Write ``<root>/source/<assignment>/``: the manifest's notebooks and the whole ``cnnlab/``.

    ``source/`` is generated: it holds exactly the manifest's assignments afterwards.

    Raises :class:`CourseError` if a notebook is missing and :class:`ManifestError` if a ``files``
    entry is not an existing file of the assembled folder.
    """
    package = built_package(files)
    source = Path(root) / "source"
    if source.is_dir():  # source/ is generated: drop assignments no longer in the manifest
        for old in source.iterdir():
            if old.is_dir() and old.name not in manifest:
                shutil.rmtree(old)
    for name, assignment in manifest.items():
        folder = Path(root) / "source" / name
        if folder.exists():
            shutil.rmtree(folder)
        (folder / "cnnlab" / SUBPACKAGE).mkdir(parents=True)
        for nb in assignment.notebooks:
            src = SOLUTIONS_NB / nb
            if not src.is_file():
                raise CourseError(f"assignments.{name}.notebooks: {src.relative_to(REPO)} does not exist")
            shutil.copyfile(src, folder / nb)
        for fname, text in package.items():
            (folder / "cnnlab" / fname).write_text(text)
    exclude_overwriting(Path(root) / "source", manifest, require_source=True)


def release(
    root: Path | None = None,
    manifest: dict[str, Assignment] | None = None,
    verbose: bool = False,
    log=print,
) -> None:
    """Assemble the source, ``nbgrader generate_assignment`` every assignment, check the release."""
    root = Path(root or course_root())
    manifest = load_manifest() if manifest is None else manifest
    files = build_release()
    stale = committed_release_problems(files)
    if stale:
        log("warning: the committed student release is out of date (run `make release`):")
        for line in stale:
            log(f"  {line}")
    prepare_root(root)
    assemble_source(root, manifest, files)
    # one command for all assignments (nbgrader expands the glob): one start-up instead of four
    run = run_nbgrader(["generate_assignment", "*", "--force"], root, verbose)
    _require(run, "generate_assignment")
    for line in run.problems():
        log(line)
    missing = [a for a in manifest if not (root / "release" / a).is_dir()]
    if missing:
        raise CourseError(f"generate_assignment did not release {missing}:\n{run.output[-3000:]}")
    problems = check_release(root, manifest)
    if problems:
        raise CourseError("RELEASE CHECK FAILED: the release leaks solutions:\n  " + "\n  ".join(problems))
    set_due_dates(root, manifest)
    log(f"released {len(manifest)} assignments into {root / 'release'}; release check passed")


def set_due_dates(root: Path, manifest: dict[str, Assignment]) -> None:
    """Each assignment's ``due`` of the manifest as its ``duedate`` in nbgrader's gradebook (where
    nbgrader's late-penalty plugin reads it)."""
    from nbgrader.api import Gradebook

    dated = {name: a.due for name, a in manifest.items() if a.due}
    if not dated:
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with Gradebook(db_url(root), "cnnlab") as gb:
            for name, due in dated.items():
                gb.update_or_create_assignment(name, duedate=due)


def _norm(line: str) -> str:
    return " ".join(line.split())


def _nontrivial(line: str) -> bool:
    """A line worth looking for: at least 8 characters other than spaces and brackets."""
    return len(re.sub(r"[\s()\[\]{},:]", "", line)) >= 8


def secret_lines() -> set[str]:
    """Normalised non-trivial lines of the solutions that never appear outside a solution/hidden region.

    From ``solutions/cnnlab/*.py`` (``### BEGIN/END SOLUTION`` regions) and from the source notebooks
    (solution regions, whole solution cells without markers, hidden-test regions). Lines that also
    occur in released text (outside every region) are public and not counted.
    """
    secret, public = set(), set()
    for path in sorted(SOLUTIONS_PKG.rglob("*.py")):
        inside, outside = split_regions(path.read_text().splitlines(), BEGIN, END)
        secret.update(inside)
        public.update(outside)
    for path in sorted(SOLUTIONS_NB.glob("*.ipynb")):
        for cell in json.loads(path.read_text()).get("cells", []):
            lines = cell_source(cell).splitlines()
            meta = cell.get("metadata", {}).get("nbgrader", {})
            inside, outside = split_regions(lines, "BEGIN SOLUTION", "END SOLUTION")
            if meta.get("solution") and not any("BEGIN SOLUTION" in ln for ln in lines):
                inside, outside = lines, []
            hidden, outside = split_regions(outside, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
            secret.update(inside + hidden)
            public.update(outside)
    public_norm = {_norm(line) for line in public}
    return {n for n in map(_norm, secret) if _nontrivial(n) and n not in public_norm}


def _released_lines(path: Path) -> list[str] | None:
    """The text lines of a released file (cell sources and outputs for a notebook); None if binary."""
    try:
        text = path.read_text()
    except (UnicodeDecodeError, OSError):
        return None
    if path.suffix != ".ipynb":
        return text.splitlines()
    try:
        nb = json.loads(text)
    except json.JSONDecodeError:
        return text.splitlines()
    lines = []
    for cell in nb.get("cells", []):
        lines += cell_source(cell).splitlines()
        for out in cell.get("outputs", []):
            values = [out.get("text", ""), *out.get("data", {}).values(), *out.get("traceback", [])]
            for value in values:
                lines += ("".join(value) if isinstance(value, list) else str(value)).splitlines()
    return lines


def check_release(root: Path, manifest: dict[str, Assignment] | None = None) -> list[str]:
    """Everything in ``<root>/release/`` that gives a solution away, one problem per line (none: ok).

    * a solution or hidden-test marker, or the reference's module name ``cnnlab_reference``;
    * any non-trivial line of a solution region (:func:`secret_lines`);
    * a ``solutions/`` or ``autograder/`` folder;
    * and, so that students can work: every manifest notebook and student file is released.
    """
    manifest = load_manifest() if manifest is None else manifest
    release_dir = Path(root) / "release"
    secrets = secret_lines()
    problems = []
    for name, assignment in manifest.items():
        folder = release_dir / name
        for rel in [*assignment.notebooks, *assignment.files]:
            if not (folder / rel).is_file():
                problems.append(f"{name}/{rel}: not released")
    for path in sorted(p for p in release_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(release_dir)
        if {"solutions", "autograder"} & set(rel.parts[:-1]):
            problems.append(f"{rel}: a solutions/ or autograder/ file in the release")
        lines = _released_lines(path)
        if lines is None:
            continue
        for i, line in enumerate(lines, 1):
            for marker in LEAK_MARKERS:
                if marker in line:
                    problems.append(f"{rel}:{i}: contains {marker!r}")
            if _norm(line) in secrets:
                problems.append(f"{rel}:{i}: a line of a solution: {_norm(line)[:80]!r}")
    return problems
