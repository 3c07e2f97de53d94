"""The nbgrader course: release, sample submissions, autograding and the grade table.

``python -m autograder <command>`` (see :mod:`autograder.__main__`) drives these steps through the
real ``nbgrader`` commands, run in ``autograder/`` so that ``autograder/nbgrader_config.py`` applies:

1. :func:`release`: assemble ``<root>/source/<assignment>/`` from ``solutions/notebooks`` and the
   generated ``cnnlab/`` package (built in memory by :mod:`tools.build`), ``nbgrader
   generate_assignment``, then :func:`check_release` proves that nothing of the solutions reached
   ``<root>/release/``.
2. :func:`fabricate`: write ``<root>/submitted/<student>/<assignment>/`` for the sample students
   described in ``autograder/samples/<student>.toml``.
3. :func:`autograde`, :func:`generate_feedback`, :func:`export_csv`, :func:`grade_table`.

``<root>`` is :func:`course_root`: ``autograder/course`` (gitignored), or ``$CNNLAB_COURSE_ROOT``.
"""

from __future__ import annotations

import ast
import csv
import json
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from autograder import database
from autograder.manifest import Assignment, ManifestError, exclude_overwriting, load_manifest

REPO = Path(__file__).resolve().parent.parent
AUTOGRADER_DIR = REPO / "autograder"
SOLUTIONS_PKG = REPO / "solutions" / "cnnlab"
SOLUTIONS_NB = REPO / "solutions" / "notebooks"
SAMPLES_DIR = AUTOGRADER_DIR / "samples"
STUDENTS = ("ada", "grace", "linus", "bobby")  # the bundled samples, in table order
COURSE_MARKER = ".cnnlab-course"  # marks a folder as a course root that may be wiped by `demo`
TIMESTAMP = "2026-11-26 10:00:00.000000 UTC"

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
LEAK_MARKERS = (
    "BEGIN SOLUTION",
    "END SOLUTION",
    "BEGIN HIDDEN TESTS",
    "END HIDDEN TESTS",
    "cnnlab_reference",
)


class CourseError(Exception):
    """A step of the course pipeline failed; the message says what and where."""


def course_root() -> Path:
    """The nbgrader course root: ``$CNNLAB_COURSE_ROOT`` or ``autograder/course``."""
    return Path(os.environ.get("CNNLAB_COURSE_ROOT") or AUTOGRADER_DIR / "course").resolve()


def db_url(root: Path) -> str:
    """The gradebook URL, as ``nbgrader_config.py`` sets it (:mod:`autograder.database`)."""
    return database.db_url(root)


# ---------------------------------------------------------------------------------------------------
# Running nbgrader
# ---------------------------------------------------------------------------------------------------

# Harmless output of every nbgrader run (see the team's nbgrader notes).
_NOISE = (
    re.compile(r"SAWarning: Object of type <\w+> not in session"),
    re.compile(r"Kernel is running over TCP without encryption"),
    # released check cells lack the hidden tests, so their checksum always differs from the source's
    re.compile(r"Attribute 'checksum' for cell \w+ has changed"),
    re.compile(r"Removing existing assignment"),
)
_RECORD = re.compile(r"^\[(?P<app>\w+)(?: \| (?P<level>[A-Z]+))?\](?: (?P<level2>[A-Z]+) \|)?")
_PY_WARNING = re.compile(r"^\S+\.py:\d+: \w*Warning: ")


@dataclass
class NbgraderRun:
    """The result of one nbgrader command."""

    args: list[str]
    returncode: int
    output: str  # stdout and stderr, interleaved
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def problems(self) -> list[str]:
        """The output without nbgrader's harmless noise: errors and unexpected warnings only."""
        return filter_output(self.output)


def filter_output(output: str) -> list[str]:
    """Log records of ``output`` at WARNING or above, minus known noise, with their continuation lines."""
    kept: list[str] = []
    keep = True  # output before the first log record (a crash, say) is shown
    for line in output.splitlines():
        record = _RECORD.match(line)
        if line.startswith(("cnnlab:", "[cnnlab]")):  # this course's own messages (nbgrader_config.py)
            keep = True
        elif record or _PY_WARNING.match(line):
            level = (record.group("level") or record.group("level2") or "") if record else "WARNING"
            keep = level in ("WARNING", "ERROR", "CRITICAL") and not any(p.search(line) for p in _NOISE)
        if keep and line.strip():
            kept.append(line)
    return kept


def summarize(lines: list[str]) -> list[str]:
    """Each log record's first line and, for a traceback, its last line (the exception)."""
    out: list[str] = []
    tail: str | None = None
    for line in lines:
        if _RECORD.match(line) or line.startswith(("cnnlab:", "[cnnlab]")):
            if tail:
                out.append(f"    {tail.strip()}")
            out.append(line)
            tail = None
        else:
            tail = line
    if tail:
        out.append(f"    {tail.strip()}")
    return out


def nbgrader_env(root: Path) -> dict[str, str]:
    """The environment nbgrader runs in: this venv first on PATH, the course root, config errors fatal."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    # nbgrader runs `alembic` (gradebook migrations) by name: it must be on PATH
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    env["CNNLAB_COURSE_ROOT"] = str(root)
    # traitlets only logs an exception in nbgrader_config.py and goes on without the file
    env["TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR"] = "1"
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's frozen-modules notice in kernels
    return env


def run_nbgrader(args: Sequence[str], root: Path, verbose: bool = False) -> NbgraderRun:
    """Run ``nbgrader <args>`` in ``autograder/`` (so its config applies) for course ``root``."""
    exe = Path(sys.executable).parent / "nbgrader"
    cmd = [str(exe) if exe.exists() else "nbgrader", *args]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=AUTOGRADER_DIR,
        env=nbgrader_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = NbgraderRun(list(args), proc.returncode, proc.stdout, time.perf_counter() - start)
    if verbose:
        print(run.output, end="")
    return run


def _require(run: NbgraderRun, what: str) -> NbgraderRun:
    if not run.ok:
        details = "\n".join(run.problems()[-40:]) or run.output[-4000:]
        raise CourseError(f"{what} failed (nbgrader {' '.join(run.args)}, exit {run.returncode}):\n{details}")
    return run


# ---------------------------------------------------------------------------------------------------
# Release
# ---------------------------------------------------------------------------------------------------


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
    from tools import build

    return build.build()


def built_package(files: dict[Path, str] | None = None) -> dict[str, str]:
    """The generated student package ``cnnlab/``, ``{file name: text}``."""
    from tools import build

    files = build_release() if files is None else files
    return {path.name: text for path, text in files.items() if path.parent == build.RELEASE_PKG}


def committed_release_problems(files: dict[Path, str] | None = None) -> list[str]:
    """Differences between the committed ``cnnlab/``/``notebooks/`` and the build (``--check``)."""
    from tools import build

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
        (folder / "cnnlab").mkdir(parents=True)
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


# --- the release check ------------------------------------------------------------------------------


def _norm(line: str) -> str:
    return " ".join(line.split())


def _nontrivial(line: str) -> bool:
    """A line worth looking for: at least 8 characters other than spaces and brackets."""
    return len(re.sub(r"[\s()\[\]{},:]", "", line)) >= 8


def _regions(lines: list[str], begin: str, end: str) -> tuple[list[str], list[str]]:
    """(lines inside begin/end regions, lines outside), markers excluded."""
    inside, outside, within = [], [], False
    for line in lines:
        if begin in line:
            within = True
        elif end in line:
            within = False
        else:
            (inside if within else outside).append(line)
    return inside, outside


def _cell_source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def secret_lines() -> set[str]:
    """Normalised non-trivial lines of the solutions that never appear outside a solution/hidden region.

    From ``solutions/cnnlab/*.py`` (``### BEGIN/END SOLUTION`` regions) and from the source notebooks
    (solution regions, whole solution cells without markers, hidden-test regions). Lines that also
    occur in released text (outside every region) are public and not counted.
    """
    secret, public = set(), set()
    for path in sorted(SOLUTIONS_PKG.glob("*.py")):
        inside, outside = _regions(path.read_text().splitlines(), BEGIN, END)
        secret.update(inside)
        public.update(outside)
    for path in sorted(SOLUTIONS_NB.glob("*.ipynb")):
        for cell in json.loads(path.read_text()).get("cells", []):
            lines = _cell_source(cell).splitlines()
            meta = cell.get("metadata", {}).get("nbgrader", {})
            inside, outside = _regions(lines, "BEGIN SOLUTION", "END SOLUTION")
            if meta.get("solution") and not any("BEGIN SOLUTION" in ln for ln in lines):
                inside, outside = lines, []
            hidden, outside = _regions(outside, "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
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
        lines += _cell_source(cell).splitlines()
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


# ---------------------------------------------------------------------------------------------------
# Sample submissions
# ---------------------------------------------------------------------------------------------------


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


def _task_regions(text: str) -> list[tuple[int, int, str | None]]:
    """(begin, end, function name) of each solution region of a reference module, 0-based lines."""
    lines = text.splitlines()
    tree = ast.parse(text)
    functions = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]
    regions, start = [], None
    for i, line in enumerate(lines):
        if line.strip().startswith(BEGIN):
            start = i
        elif line.strip().startswith(END) and start is not None:
            around = [f for f in functions if f.lineno <= start + 1 <= (f.end_lineno or f.lineno)]
            name = max(around, key=lambda f: f.lineno).name if around else None
            regions.append((start, i, name))
            start = None
    return regions


def reference_variant(module: str, done: Iterable[str] | None = None, mistakes: Sequence[str] = ()) -> str:
    """A student's version of ``cnnlab/<module>.py`` made from the reference.

    Args:
        module: module name, e.g. ``"conv"``.
        done: task IDs the student has done (default: all of the module); the others are stubbed
            exactly as in the release.
        mistakes: ids of :data:`autograder.mistakes.MISTAKES` to plant, applied in order.

    No solution markers remain: a marker is a comment and must not matter to the grader.
    """
    from autograder.mistakes import BY_ID
    from autograder.reference import load_reference
    from tools.build import strip_module

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
    for begin, end, fname in _task_regions(text):
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


def _student_notebook(spec: object, released: Path, where: str) -> str | None:
    """The text of a submitted notebook: the release copy, or a damaged one (None: not submitted)."""
    text = released.read_text()
    if spec == "release":
        return text
    if spec == "missing":
        return None
    if spec == "invalid_json":
        return text[: len(text) // 2]  # a truncated file, as from a crashed save
    if isinstance(spec, dict):
        nb = json.loads(text)
        delete = set(spec.get("delete_cells", []))
        replace = dict(spec.get("replace_cells", {}))
        kept = []
        for cell in nb["cells"]:
            gid = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
            if gid in delete:
                continue
            if gid in replace:
                cell["source"] = replace[gid]
            kept.append(cell)
        nb["cells"] = kept
        return json.dumps(nb, indent=1) + "\n"
    raise CourseError(f"{where}: notebook = {spec!r} is not release, missing, invalid_json or a table")


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
            if not released.is_dir():
                raise CourseError(f"{released} does not exist: run `python -m autograder release` first")
            shutil.copytree(released, dest)
            files = spec.get("files", {})
            extra = set(files) - set(assignment.files)
            if extra:
                raise CourseError(f"samples/{student}.toml: {name}: {sorted(extra)} are not student files")
            for rel in assignment.files:
                where = f"samples/{student}.toml: {name}: {rel}"
                text = _student_file(files.get(rel, sample.default), rel, released, where, samples_dir)
                target = dest / rel
                target.unlink(missing_ok=True)
                if text is not None:
                    target.write_text(text)
            notebooks = spec.get("notebooks", {})
            for nb in assignment.notebooks:
                where = f"samples/{student}.toml: {name}: {nb}"
                text = _student_notebook(notebooks.get(nb, "release"), released / nb, where)
                (dest / nb).unlink()
                if text is not None:
                    (dest / nb).write_text(text)
            (dest / "timestamp.txt").write_text(TIMESTAMP + "\n")
            submitted[student].append(name)
    return submitted


# ---------------------------------------------------------------------------------------------------
# Grading
# ---------------------------------------------------------------------------------------------------


@dataclass
class GradeRun:
    student: str
    assignments: list[str]
    seconds: float
    ok: bool
    problems: list[str]


def submitted_students(root: Path) -> list[str]:
    folder = Path(root) / "submitted"
    return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []


def autograde(
    root: Path | None = None, students: Sequence[str] | None = None, verbose: bool = False, log=print
) -> list[GradeRun]:
    """``nbgrader autograde`` every submission, one command per student (all assignments at once).

    A failing submission (a notebook that is not JSON, say) is reported and does not stop the others.
    """
    root = Path(root or course_root())
    students = submitted_students(root) if students is None else list(students)
    runs = []
    for student in students:
        assignments = sorted(p.name for p in (root / "submitted" / student).iterdir() if p.is_dir())
        if not assignments:
            continue
        run = run_nbgrader(["autograde", "*", "--student", student, "--force"], root, verbose)
        runs.append(GradeRun(student, assignments, run.seconds, run.ok, run.problems()))
        per = run.seconds / len(assignments)
        status = "ok" if run.ok else f"nbgrader exit {run.returncode}"
        log(
            f"  autograded {student:<8} {len(assignments)} submissions in {run.seconds:5.1f} s "
            f"({per:.1f} s per submission) [{status}]"
        )
        if not run.ok:
            for line in summarize(run.problems())[:20]:
                log(f"      {line}")
    return runs


def autograde_all(root: Path | None = None, verbose: bool = False) -> NbgraderRun:
    """``nbgrader autograde`` every submission of every student in ONE command (one start-up).

    Faster than :func:`autograde` (the tests use it); :func:`failed_submissions` says what failed.
    """
    root = Path(root or course_root())
    return run_nbgrader(["autograde", "*", "--force"], root, verbose)


_FAILED = re.compile(r"There was an error processing assignment '([^']+)' for student '([^']+)'")


def failed_submissions(run: NbgraderRun) -> set[tuple[str, str]]:
    """``{(student, assignment)}`` that nbgrader reported it could not autograde in ``run``."""
    return {(m.group(2), m.group(1)) for m in _FAILED.finditer(run.output)}


def generate_feedback(root: Path | None = None, verbose: bool = False) -> NbgraderRun:
    """``nbgrader generate_feedback`` for every autograded submission."""
    root = Path(root or course_root())
    return run_nbgrader(["generate_feedback", "*", "--force"], root, verbose)


def export_csv(root: Path | None = None, verbose: bool = False) -> Path:
    """``nbgrader export`` to ``<root>/grades.csv``; returns that path."""
    root = Path(root or course_root())
    path = root / "grades.csv"
    _require(run_nbgrader(["export", "--to", str(path)], root, verbose), "export")
    return path


def read_csv_totals(path: Path) -> dict[tuple[str, str], float]:
    """``{(student, assignment): score}`` from an ``nbgrader export`` CSV."""
    with open(path, newline="") as fh:
        return {(row["student_id"], row["assignment"]): float(row["score"]) for row in csv.DictReader(fh)}


NOT_SUBMITTED = "-"  # table mark: the assignment was not submitted
NOT_GRADED = "?"  # table mark: nbgrader recorded no score (cell deleted, notebook unreadable): counts 0


@dataclass
class Table:
    """Points per task per student, from the gradebook.

    ``rows[student][task]`` is the task's points, or :data:`NOT_SUBMITTED` / :data:`NOT_GRADED`.
    """

    tasks: list[str]  # task IDs, in manifest order
    max_points: dict[str, float]
    rows: dict[str, dict[str, float | str]]

    def points(self, student: str, task: str) -> float:
        """The task's points, 0 when it was not submitted or not graded."""
        value = self.rows[student][task]
        return value if isinstance(value, float) else 0.0

    def total(self, student: str) -> float:
        return round(sum(self.points(student, t) for t in self.tasks), 6)

    def format(self) -> str:
        """A text table: one row per student, one column per task, and the total."""
        head = ["student", *self.tasks, "total"]
        top = _fmt(sum(self.max_points.values()))
        maxrow = ["(max)", *(_fmt(self.max_points[t]) for t in self.tasks), top]
        body = [[s, *(_fmt(r[t]) for t in self.tasks), _fmt(self.total(s))] for s, r in self.rows.items()]
        widths = [max(len(row[i]) for row in [head, maxrow, *body]) for i in range(len(head))]

        def line(row: list[str]) -> str:
            cells = zip(row, widths, strict=True)
            return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(cells))

        rule = "  ".join("-" * w for w in widths)
        text = [line(head), rule, *map(line, body), rule, line(maxrow)]
        marks = {v for r in self.rows.values() for v in r.values() if isinstance(v, str)}
        if NOT_SUBMITTED in marks:
            text.append(f"{NOT_SUBMITTED} not submitted")
        if NOT_GRADED in marks:
            text.append(
                f"{NOT_GRADED} no score: nbgrader could not grade this cell (check cell deleted, notebook "
                "not readable) and flagged it for manual grading; counted as 0"
            )
        return "\n".join(text)


def _fmt(value: float | str) -> str:
    if isinstance(value, str):
        return value
    return f"{round(value, 2):g}"


def grade_table(
    root: Path | None = None,
    students: Sequence[str] | None = None,
    manifest: dict[str, Assignment] | None = None,
) -> Table:
    """Points per task (the score of check cell ``task<X>_<Y>``) per student, from nbgrader's gradebook."""
    from nbgrader.api import Gradebook, MissingEntry

    root = Path(root or course_root())
    manifest = load_manifest() if manifest is None else manifest
    tasks = [t for a in manifest.values() for t in a.tasks]
    max_points = {t: float(p) for a in manifest.values() for t, p in a.points.items()}
    rows: dict[str, dict[str, float | str]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SQLAlchemy's SAWarning noise
        with Gradebook(db_url(root), "cnnlab") as gb:
            for student in [s.id for s in gb.students] if students is None else students:
                row: dict[str, float | str] = {}
                for name, assignment in manifest.items():
                    try:
                        gb.find_submission(name, student)
                    except MissingEntry:
                        row.update(dict.fromkeys(assignment.tasks, NOT_SUBMITTED))
                        continue
                    for task in assignment.tasks:
                        grade_id = "task" + task.replace(".", "_")
                        row[task] = NOT_GRADED
                        for nb in assignment.notebook_ids:
                            try:
                                grade = gb.find_grade(grade_id, nb, name, student)
                            except MissingEntry:
                                continue
                            if grade.auto_score is not None or grade.manual_score is not None:
                                row[task] = float(grade.score)
                rows[student] = row
    return Table(tasks, max_points, rows)


def feedback_files(root: Path) -> list[Path]:
    return sorted((Path(root) / "feedback").rglob("*.html"))


# ---------------------------------------------------------------------------------------------------
# The demo
# ---------------------------------------------------------------------------------------------------


DEMO_SECRET = "cnnlab-demo-secret: sample students only, never for a real course"


def use_fixed_secret(root: Path) -> None:
    """Give the course root a fixed course secret (:mod:`autograder.secret`), so that the sample
    students' hidden cases, and so the demo's table, are the same on every run. A real course root
    gets a random secret on first use instead."""
    from autograder.secret import secret_path

    path = secret_path(root)
    path.write_text(DEMO_SECRET + "\n")
    path.chmod(0o600)


def demo(root: Path | None = None, verbose: bool = False, log=print) -> Table:
    """Release, fabricate the sample students, autograde, feedback, export, and print the table."""
    root = Path(root or course_root())
    t0 = time.perf_counter()
    manifest = load_manifest()
    log(f"course root: {root}")
    url = db_url(root)
    try:
        database.check(url)
    except database.DatabaseError as err:
        raise CourseError(str(err)) from None
    log(f"gradebook: {database.describe(url)}")
    others = sorted(set(submitted_students(root)) - set(STUDENTS))
    if others:
        raise CourseError(
            f"{root} holds submissions of {others}: the demo starts from an empty course root and would "
            "delete them (and the course secret). Run it elsewhere: "
            "CNNLAB_COURSE_ROOT=/tmp/cnnlab-demo python -m autograder demo"
        )
    prepare_root(root, fresh=True)
    use_fixed_secret(root)
    log("[1/5] release: assemble source/, nbgrader generate_assignment, release check")
    release(root, manifest, verbose, log=lambda s: log(f"  {s}"))
    log(f"[2/5] fabricate sample submissions: {', '.join(STUDENTS)}")
    for student in fabricate(root, STUDENTS, manifest):
        log(f"  {student:<8} {load_sample(student).description}")
    log("[3/5] nbgrader autograde (one command per student, all assignments)")
    runs = autograde(root, STUDENTS, verbose, log)
    log("[4/5] nbgrader generate_feedback")
    fb = generate_feedback(root, verbose)
    if not fb.ok:
        log(f"  generate_feedback reported errors (exit {fb.returncode}):")
        for line in summarize(fb.problems())[:20]:
            log(f"      {line}")
    log("[5/5] nbgrader export")
    csv_path = export_csv(root, verbose)
    table = grade_table(root, STUDENTS, manifest)
    log("")
    log("Points per task (rows: students; columns: task IDs), from the nbgrader gradebook:")
    log("")
    log(table.format())
    log("")
    totals = read_csv_totals(csv_path)
    for student in STUDENTS:
        csv_total = sum(v for (s, _), v in totals.items() if s == student)
        if abs(csv_total - table.total(student)) > 1e-9:
            log(f"warning: {student}: the exported CSV total {csv_total:g} differs from the table")
    graded = [r for r in runs if r.assignments]
    n_sub = sum(len(r.assignments) for r in graded)
    secs = sum(r.seconds for r in graded)
    log(
        f"autograde: {n_sub} submissions in {secs:.0f} s, {secs / max(n_sub, 1):.1f} s per submission "
        "(one nbgrader start-up per student included)"
    )
    log(f"grades CSV (nbgrader export): {csv_path}")
    log(
        f"feedback HTML: {root / 'feedback'}/<student>/<assignment>/<notebook>.html "
        f"({len(feedback_files(root))} files)"
    )
    log(f"demo finished in {time.perf_counter() - t0:.0f} s")
    return table


__all__ = [
    "CourseError",
    "ManifestError",
    "autograde",
    "check_release",
    "course_root",
    "demo",
    "export_csv",
    "fabricate",
    "generate_feedback",
    "grade_table",
    "release",
]
