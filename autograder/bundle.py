"""The student bundle: ``python -m autograder bundle --out DIR`` (``make student-bundle``).

A standalone course to hand out through an LMS: the student notebooks and the generated ``cnnlab/``
(stubs, provided code, the digits and the visible check cases), a student README, a Makefile with
``setup``, ``lab`` and ``submit``, ``environment.yml``, a ``pyproject.toml`` with the student's
dependencies only, the student's Lab settings (``jupyter-config/``) and ``tools/submit.py`` with the
manifest's notebooks and editable files per assignment (``tools/assignments.json``), so that
``make submit A=02_conv_layer`` zips exactly what the batch grader reads.

Nothing else is copied: the bundle is built from an allow-list, in a staging folder, and then
:func:`leak_check` refuses it (the command fails, nothing is written to ``DIR``) if any file holds

* a solution or hidden-test marker, or a non-trivial line of any solution or hidden-test region of
  ``solutions/`` (:func:`autograder.release.secret_lines`);
* a non-trivial line of the grader's own code (``autograder/**/*.py``) that the student release does
  not also have (:func:`grader_lines`): the hidden-case generators, the mistakes, the judge;
* the course secret (``$CNNLAB_COURSE_SECRET`` or ``<course root>/.cnnlab-secret``), if there is one;
* a ``solutions/`` or ``autograder/`` folder, a gradebook, or a secret file.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import tomllib
import zipfile
from collections import Counter
from pathlib import Path

from autograder.manifest import Assignment, load_manifest
from autograder.markers import LEAK_MARKERS
from autograder.nbgrader_run import REPO, CourseError
from autograder.release import _nontrivial, _norm, _released_lines, secret_lines
from autograder.secret import SECRET_ENV, SECRET_FILE

TEMPLATE = Path(__file__).resolve().parent / "bundle_template"
BUNDLE_MARKER = ".cnnlab-bundle"  # marks a folder this command wrote (and may replace)
STUDENT_EXTRA = "student"  # the pyproject extra that is the student's tools
#: files of the repository the bundle takes, relative to the repository
RELEASE_DIRS = ("cnnlab", "jupyter-config")
FORBIDDEN_PARTS = {"solutions", "autograder", "tests", "source", "release", "submitted", "autograded"}
FORBIDDEN_NAMES = {SECRET_FILE, "gradebook.db", "lms_ids.csv", ".cnnlab-course"}
_IMPORT = re.compile(r"^(from \S+ )?import ")


class BundleError(CourseError):
    """The bundle could not be built, or its leak check failed."""


def student_dependencies(pyproject: Path = REPO / "pyproject.toml") -> list[str]:
    """The runtime dependencies and the ``student`` extra of the repository's ``pyproject.toml``."""
    project = tomllib.loads(pyproject.read_text())["project"]
    extra = project.get("optional-dependencies", {}).get(STUDENT_EXTRA, [])
    return [*project.get("dependencies", []), *extra]


def _environment_yml(deps: list[str]) -> str:
    """conda-forge for everything but nbgrader (from pip, as in the repository's environment.yml)."""
    conda = [d for d in deps if not d.startswith("nbgrader")]
    pip = [d for d in deps if d.startswith("nbgrader")]
    lines = [
        "# The student's tools for conda or Binder, the same as `make setup` (pip install -e .):",
        "# conda env create -f environment.yml && conda activate cnnlab && jupyter lab",
        "name: cnnlab",
        "channels:",
        "  - conda-forge",
        "dependencies:",
        "  - python>=3.11",
        *(f"  - {d}" for d in conda),
        "  - pip",
        "  - pip:",
        *(f"      - {d}" for d in pip),
        "      - -e .",
    ]
    return "\n".join(lines) + "\n"


def _task_table(manifest: dict[str, Assignment], tasks: dict) -> str:
    lines = ["| task | function | file | notebook |", "|---|---|---|---|"]
    for a in manifest.values():
        for task_id in a.tasks:
            t = tasks[task_id]
            lines.append(f"| {t.id} | `{t.function}` | `{t.path}` | `{t.notebook}.ipynb` |")
    return "\n".join(lines)


def _assignment_table(manifest: dict[str, Assignment]) -> str:
    lines = ["| assignment | points | due | hands in |", "|---|---|---|---|"]
    for a in manifest.values():
        files = ", ".join(f"`{f}`" for f in [*a.notebooks, *a.files])
        lines.append(f"| `{a.name}` | {a.total:g} | {a.due or '-'} | {files} |")
    return "\n".join(lines)


def submit_spec(manifest: dict[str, Assignment], tasks: dict) -> dict:
    """``tools/assignments.json``: what ``make submit`` zips per assignment, from the manifest."""
    return {
        "course": "cnnlab",
        "assignments": {
            name: {
                "notebooks": list(a.notebooks),
                "files": list(a.files),
                "points": a.total,
                "due": a.due,
                "tasks": {t: {"function": tasks[t].function, "file": tasks[t].path} for t in a.tasks},
            }
            for name, a in manifest.items()
        },
    }


def _copy_tree(src: Path, dest: Path) -> None:
    shutil.copytree(
        src,
        dest,
        symlinks=False,
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc", ".ipynb_checkpoints", ".pytest_cache"),
    )


def write_bundle(dest: Path, manifest: dict[str, Assignment] | None = None) -> None:
    """Write the student course into the empty or new folder ``dest`` (no leak check: see :func:`bundle`)."""
    from autograder.reference import load_reference

    manifest = load_manifest() if manifest is None else manifest
    tasks = load_reference().tasks.TASKS
    dest.mkdir(parents=True, exist_ok=True)
    for name in RELEASE_DIRS:
        _copy_tree(REPO / name, dest / name)
    for a in manifest.values():
        for nb in a.notebooks:
            src = REPO / "notebooks" / nb
            if not src.is_file():
                raise BundleError(f"assignments.{a.name}.notebooks: notebooks/{nb} is missing (make release)")
            shutil.copyfile(src, dest / nb)
        for rel in a.files:
            if not (dest / rel).is_file():
                raise BundleError(f"assignments.{a.name}.files: {rel} is not in the student release")
    deps = student_dependencies()
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    readme = (TEMPLATE / "README.md").read_text()
    readme = readme.replace("{{TASK_TABLE}}", _task_table(manifest, tasks))
    readme = readme.replace("{{ASSIGNMENT_TABLE}}", _assignment_table(manifest))
    (dest / "README.md").write_text(readme)
    pyproject = (TEMPLATE / "pyproject.toml.in").read_text()
    pyproject = pyproject.replace("{{VERSION}}", version).replace("{{DEPENDENCIES}}", json.dumps(deps))
    (dest / "pyproject.toml").write_text(pyproject)
    (dest / "environment.yml").write_text(_environment_yml(deps))
    shutil.copyfile(TEMPLATE / "Makefile", dest / "Makefile")
    shutil.copyfile(TEMPLATE / "gitignore", dest / ".gitignore")
    (dest / "tools").mkdir()
    shutil.copyfile(TEMPLATE / "tools" / "submit.py", dest / "tools" / "submit.py")
    spec = json.dumps(submit_spec(manifest, tasks), indent=1)
    (dest / "tools" / "assignments.json").write_text(spec + "\n")
    (dest / BUNDLE_MARKER).write_text("the cnnlab student course, written by `python -m autograder bundle`\n")


def grader_lines() -> set[str]:
    """Normalised non-trivial lines of the grader's code (``autograder/**/*.py``, each line of one file
    only: the idioms several modules share are no evidence) that nothing handed out by design
    (``cnnlab/``, ``notebooks/``, ``jupyter-config/``, the bundle template) also contains, imports and
    comments aside: a bundle holding one carries grader code."""
    seen: Counter[str] = Counter()
    for path in sorted((REPO / "autograder").rglob("*.py")):
        if not path.is_relative_to(TEMPLATE):  # the template is the bundle's own code
            seen.update({_norm(line) for line in path.read_text().splitlines()})
    grader = {line for line, files in seen.items() if files == 1}  # idioms (`def main(...)`) aside
    public: set[str] = set()
    handed_out = [p for p in (REPO / "cnnlab").rglob("*") if "__pycache__" not in p.parts]
    handed_out += (REPO / "notebooks").glob("*.ipynb")
    handed_out += (REPO / "jupyter-config").rglob("*")  # the student's Lab settings, public by design
    for path in sorted(handed_out):
        if path.is_file():
            public.update(_norm(line) for line in _released_lines(path) or [])
    return {
        line
        for line in grader - public
        if _nontrivial(line) and len(line) >= 24 and not _IMPORT.match(line) and not line.startswith("#")
    }


def course_secrets(root: Path | None) -> list[str]:
    """The course secret(s) that must never be handed out: the environment's and the course root's."""
    found = []
    if os.environ.get(SECRET_ENV):
        found.append(os.environ[SECRET_ENV])
    if root is not None:
        path = Path(root) / SECRET_FILE
        if path.is_file():
            found.append(path.read_text().strip())
    return [s for s in found if len(s) >= 8]


def leak_check(folder: Path, root: Path | None = None) -> list[str]:
    """Everything in ``folder`` that must not reach students, one problem per line (none: ok)."""
    folder = Path(folder)
    solution, grader, secrets = secret_lines(), grader_lines(), course_secrets(root)
    problems = []
    for path in sorted(folder.rglob("*")):
        rel = path.relative_to(folder)
        if FORBIDDEN_PARTS & set(rel.parts):
            problems.append(f"{rel}: a grader or solutions folder in the bundle")
        if path.name in FORBIDDEN_NAMES:
            problems.append(f"{rel}: a course file (secret, gradebook or course root) in the bundle")
        if path.is_symlink():
            problems.append(f"{rel}: a symbolic link (the bundle must be plain files)")
            continue
        if not path.is_file():
            continue
        data = path.read_bytes()
        for value in secrets:
            if value.encode() in data:
                problems.append(f"{rel}: contains the course secret")
        for i, line in enumerate(_released_lines(path) or [], 1):
            for marker in LEAK_MARKERS:
                if marker in line:
                    problems.append(f"{rel}:{i}: contains {marker!r}")
            norm = _norm(line)
            if norm in solution:
                problems.append(f"{rel}:{i}: a line of a solution: {norm[:80]!r}")
            elif norm in grader:
                problems.append(f"{rel}:{i}: a line of the grader's code: {norm[:80]!r}")
    return problems


def _replaceable(out: Path) -> bool:
    return not out.exists() or (out.is_dir() and (not any(out.iterdir()) or (out / BUNDLE_MARKER).is_file()))


def bundle(out: Path, root: Path | None = None, make_zip: bool = False, log=print) -> Path:
    """Build the bundle in a staging folder next to ``out``, leak-check it, then move it to ``out``.

    ``out`` must not exist, be empty, or be a previous bundle (replaced). With ``make_zip`` also
    ``<out>.zip`` (one top folder, named as ``out``), to upload to the LMS. Raises
    :class:`BundleError` when the leak check finds anything: then nothing is written."""
    out = Path(out).resolve()
    if not _replaceable(out):
        raise BundleError(f"{out} exists and is not a cnnlab bundle (no {BUNDLE_MARKER}): not replacing it")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}-", dir=out.parent))
    try:
        write_bundle(staging / "course")
        problems = leak_check(staging / "course", root)
        if problems:
            shown = "\n  ".join(problems[:40])
            more = f"\n  ... and {len(problems) - 40} more" if len(problems) > 40 else ""
            raise BundleError(f"LEAK CHECK FAILED: the bundle would hand out:\n  {shown}{more}")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staging / "course", out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    files = [p for p in out.rglob("*") if p.is_file()]
    log(f"student bundle: {out} ({len(files)} files); leak check passed")
    if make_zip:
        archive = out.with_name(out.name + ".zip")
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
            for path in sorted(files):
                zf.write(path, f"{out.name}/{path.relative_to(out)}")
        log(f"to hand out: {archive}")
    return out
