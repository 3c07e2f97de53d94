"""The student bundle and the LMS round trip (issue 22a).

``python -m autograder bundle`` writes a standalone student course; these tests look into it with
their own eyes (not with the command's leak check): no solution region's text, no grader code, no
course secret. Then a class hands in through it: ``make submit`` with a bare ``python3`` (no venv),
the zips renamed as Canvas names a download, ``python -m autograder grade --zips`` and ``export``:
the reference earns full points, the untouched stubs nothing, and every student gets a feedback folder.

The student venv's size (``make setup`` in the bundle, at most 600 MB) is measured by
``test_student_venv_fits`` only when ``CNNLAB_TEST_STUDENT_VENV=1`` (it installs JupyterLab and
nbgrader into a new venv: 3 minutes on 2 busy cores with a warm pip cache, 1 minute of CPU;
measured 459 MB).
"""

from __future__ import annotations

import ast
import csv
import json
import os
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest

from autograder import bundle
from autograder.__main__ import main as autograder_main
from autograder.markers import split_regions

REPO = Path(__file__).resolve().parent.parent
MANIFEST = tomllib.loads((REPO / "autograder" / "assignments.toml").read_text())["assignments"]
SECRET = "bundle-test-secret-5f1c0e9a7d"
BARE_ENV = {"PATH": "/usr/bin:/bin", "LC_ALL": "C.UTF-8", "HOME": "/tmp"}  # no venv on PATH


def _run(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)


@pytest.fixture(scope="module")
def course_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("course-root")
    (root / ".cnnlab-secret").write_text(SECRET + "\n")
    return root


@pytest.fixture(scope="module")
def student_course(tmp_path_factory: pytest.TempPathFactory, course_root: Path) -> Path:
    """The bundle, written by the command a user runs."""
    out = tmp_path_factory.mktemp("bundle") / "cnnlab-course"
    env = {**os.environ, "CNNLAB_COURSE_ROOT": str(course_root), "CNNLAB_COURSE_SECRET": SECRET + "-env"}
    run = _run([sys.executable, "-m", "autograder", "bundle", "--out", str(out), "--zip"], REPO, env)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "leak check passed" in run.stdout
    return out


def _texts(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): p.read_text(errors="replace") for p in folder.rglob("*") if p.is_file()
    }


def _solution_regions() -> list[str]:
    """The text of every solution region of solutions/cnnlab and of every solution / hidden-test
    region (or whole solution cell) of the source notebooks, as lines of at least 20 characters."""
    lines = []
    for path in sorted((REPO / "solutions" / "cnnlab").glob("*.py")):
        inside, _ = split_regions(path.read_text().splitlines())
        lines += inside
    for path in sorted((REPO / "solutions" / "notebooks").glob("*.ipynb")):
        for cell in json.loads(path.read_text())["cells"]:
            src = "".join(cell["source"]).splitlines()
            sol, rest = split_regions(src, "### BEGIN SOLUTION", "### END SOLUTION")
            hidden, _ = split_regions(rest, "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
            if cell.get("metadata", {}).get("nbgrader", {}).get("solution") and not sol:
                sol = src
            lines += sol + hidden
    return [" ".join(line.split()) for line in lines if len(line.strip()) >= 20]


def test_the_bundle_holds_the_student_course(student_course: Path) -> None:
    names = {str(p.relative_to(student_course)) for p in student_course.rglob("*") if p.is_file()}
    for a in MANIFEST.values():
        assert set(a["notebooks"]) <= names
        assert set(a["files"]) <= names
    for path in (REPO / "cnnlab").rglob("*"):  # the generated package, its _internal/ too, byte for byte
        rel = path.relative_to(REPO / "cnnlab")
        if path.is_file() and path.suffix in (".py", ".json", ".txt") and "__pycache__" not in rel.parts:
            assert (student_course / "cnnlab" / rel).read_bytes() == path.read_bytes(), rel
    for nb in (REPO / "notebooks").glob("*.ipynb"):
        assert (student_course / nb.name).read_bytes() == nb.read_bytes()
    for name in ["README.md", "Makefile", "environment.yml", "pyproject.toml", "tools/submit.py"]:
        assert name in names
    assert (student_course.parent / "cnnlab-course.zip").is_file()
    make = (student_course / "Makefile").read_text()
    for target in ("setup:", "lab:", "submit:"):
        assert target in make
    # the student's dependencies only: the repository's runtime dependencies and its student extra
    repo = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    wanted = repo["dependencies"] + repo["optional-dependencies"]["student"]
    deps = tomllib.loads((student_course / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(deps) == sorted(wanted)
    env_yml = (student_course / "environment.yml").read_text()
    for dep in wanted:
        assert dep in env_yml
    for dev_only in ("pytest", "torch", "scipy", "jupyter-book", "playwright", "ruff", "pyseccomp"):
        assert dev_only not in (student_course / "pyproject.toml").read_text() + env_yml


def test_no_solution_grader_or_secret_in_the_bundle(student_course: Path, course_root: Path) -> None:
    files = _texts(student_course)
    dirs = {part for p in student_course.rglob("*") for part in p.relative_to(student_course).parts[:-1]}
    assert not dirs & {"solutions", "autograder", "tests", "source", "release"}
    assert not any(name.endswith((".db", ".cnnlab-secret")) for name in files)
    everything = "\n".join(files.values())
    everything_norm = " ".join(everything.split())
    regions = _solution_regions()
    assert len(regions) > 30  # the course has solutions to hide
    leaked = [line for line in regions if line in everything_norm and line not in _public_text()]
    assert leaked == []
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "cnnlab_reference"):
        assert marker not in everything
    assert SECRET not in everything and SECRET + "-env" not in everything
    # the grader's code: no module of autograder/, no function of the hidden cases, the seeding,
    # the hidden grader or the named mistakes
    demo_course = REPO / "autograder" / "course"  # `make demo`'s course root: its release, not grader code
    for path in (REPO / "autograder").rglob("*.py"):
        if "bundle_template" not in path.parts and demo_course not in path.parents:  # (and submit.py)
            assert path.read_text() not in files.values()
    grader_functions = set()
    for stem in ("cases", "inputs", "hidden", "secret", "mistakes", "reference"):
        tree = ast.parse((REPO / "autograder" / f"{stem}.py").read_text())
        grader_functions |= {f"def {n.name}(" for n in tree.body if isinstance(n, ast.FunctionDef)}
    public = _public_text()
    own = {name for name in grader_functions if name not in public}
    assert {"def task_inputs(", "def student_seed("} <= own  # the generators and the seeding exist
    assert [name for name in own if name in everything] == []


def _public_text() -> str:
    """Everything of the committed student release (cnnlab/, notebooks/), normalised."""
    texts = [p.read_text() for p in (REPO / "cnnlab").rglob("*.py")]
    texts += [p.read_text() for p in (REPO / "notebooks").glob("*.ipynb")]
    return " ".join("\n".join(texts).split())


def test_a_leak_fails_the_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, course_root: Path) -> None:
    """The leak check finds a solution line, a grader line and the secret, and the command fails
    without writing the bundle."""
    sol_line = next(
        line
        for line in split_regions((REPO / "solutions" / "cnnlab" / "conv.py").read_text().splitlines())[0]
        if len(line.strip()) > 30
    )
    grader_line = next(
        line
        for line in (REPO / "autograder" / "inputs.py").read_text().splitlines()
        if line.strip().startswith("def ") and "task_inputs" in line
    )
    leaks = {
        "cnnlab/conv.py": sol_line,
        "cnnlab/notes.py": grader_line,
        "README.md": f"the secret: {SECRET}",
    }
    write = bundle.write_bundle
    for rel, text in leaks.items():

        def leaky(dest: Path, manifest=None, rel=rel, text=text) -> None:
            write(dest, manifest)
            with open(dest / rel, "a") as fh:
                fh.write(f"\n{text}\n")

        monkeypatch.setattr(bundle, "write_bundle", leaky)
        out = tmp_path / f"leaky-{rel.replace('/', '-')}"
        monkeypatch.setenv("CNNLAB_COURSE_ROOT", str(course_root))
        assert autograder_main(["bundle", "--out", str(out)]) == 1
        assert not out.exists()
        staged = tmp_path / f"staged-{rel.replace('/', '-')}"
        leaky(staged)
        problems = bundle.leak_check(staged, course_root)
        assert problems and all(p.startswith(rel) for p in problems), problems
    monkeypatch.setattr(bundle, "write_bundle", write)
    clean = tmp_path / "clean"
    write(clean)
    assert bundle.leak_check(clean, course_root) == []
    (clean / "autograder").mkdir()
    (clean / "autograder" / "x.txt").write_text("x")
    assert bundle.leak_check(clean, course_root)


def test_bundle_refuses_to_replace_a_folder_it_did_not_write(tmp_path: Path) -> None:
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("keep me")
    with pytest.raises(bundle.BundleError, match="not a cnnlab bundle"):
        bundle.bundle(tmp_path / "mine", log=lambda _: None)
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "keep me"


def _submit(course: Path, assignment: str) -> tuple[subprocess.CompletedProcess, Path]:
    run = _run(["make", "submit", f"A={assignment}"], course, BARE_ENV)
    return run, course / "submit" / f"{assignment}.zip"


@pytest.mark.parametrize("assignment", list(MANIFEST))
def test_make_submit_zips_exactly_the_assignment(student_course: Path, assignment: str) -> None:
    run, path = _submit(student_course, assignment)
    assert run.returncode == 0, run.stdout + run.stderr
    assert f"submit/{assignment}.zip" in run.stdout and "Upload" in run.stdout
    spec = MANIFEST[assignment]
    with zipfile.ZipFile(path) as zf:
        assert sorted(zf.namelist()) == sorted(f"{assignment}/{f}" for f in spec["notebooks"] + spec["files"])
        for rel in spec["notebooks"] + spec["files"]:
            assert zf.read(f"{assignment}/{rel}") == (student_course / rel).read_bytes()
    assert "not done yet" in run.stdout  # the stubs still raise NotImplementedError


def test_make_submit_says_what_is_wrong(student_course: Path, tmp_path: Path) -> None:
    run = _run(["make", "submit", "A=02_conv"], student_course, BARE_ENV)
    assert run.returncode != 0 and "no assignment '02_conv'" in run.stderr
    assert "02_conv_layer" in run.stderr
    run = _run(["make", "submit"], student_course, BARE_ENV)
    assert run.returncode != 0 and "usage: make submit A=<assignment>" in run.stdout
    broken = tmp_path / "broken"
    shutil.copytree(student_course, broken, ignore=shutil.ignore_patterns("submit"))
    (broken / "cnnlab" / "conv.py").unlink()
    run, path = _submit(broken, "02_conv_layer")
    assert run.returncode != 0 and "cnnlab/conv.py missing" in run.stderr
    assert not path.exists()


def _student(student_course: Path, where: Path, solved: dict[str, str]) -> Path:
    """A copy of the bundle with the reference modules ``solved`` dropped in."""
    shutil.copytree(student_course, where, ignore=shutil.ignore_patterns("submit"))
    for rel, source in solved.items():
        shutil.copyfile(REPO / "solutions" / source, where / rel)
    return where


@pytest.mark.slow
def test_lms_round_trip_reference_full_points_stub_zero(
    student_course: Path, course_root: Path, tmp_path: Path
) -> None:
    """Release, two students hand in through `make submit`, Canvas renames their zips, the batch
    grader grades them, `export` writes Canvas's import CSV and a feedback folder per student."""
    a = "02_conv_layer"
    ada = _student(student_course, tmp_path / "ada", {"cnnlab/conv.py": "cnnlab/conv.py"})
    bob = _student(student_course, tmp_path / "bob", {})
    zips = tmp_path / "download"
    zips.mkdir()
    for student, (course, uid, sid) in {"ada": (ada, 1001, 5001), "bob": (bob, 1002, 5002)}.items():
        run, path = _submit(course, a)
        assert run.returncode == 0, run.stderr
        shutil.copyfile(path, zips / f"{student}_{uid}_{sid}_{a}.zip")  # as Canvas names a download
    assert "not done yet" not in _submit(ada, a)[0].stdout
    root = tmp_path / "course"
    root.mkdir()
    shutil.copyfile(course_root / ".cnnlab-secret", root / ".cnnlab-secret")
    env = {**os.environ, "CNNLAB_COURSE_ROOT": str(root)}
    env.pop("CNNLAB_COURSE_SECRET", None)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    for args in (["release"], ["grade", a, "--zips", str(zips), "--quiet"], ["export"]):
        run = _run([sys.executable, "-m", "autograder", *args], REPO, env)
        assert run.returncode == 0, f"{args}: {run.stdout}\n{run.stderr}"
    total = sum(MANIFEST[a]["points"].values())
    with open(root / "batch" / a / "grades.csv", newline="") as fh:
        rows = {r["student_id"]: r for r in csv.DictReader(fh)}
    assert float(rows["ada"]["total"]) == total
    assert float(rows["bob"]["total"]) == 0
    with open(root / "export" / "canvas.csv", newline="") as fh:
        canvas = list(csv.DictReader(fh))
    assert canvas[0]["Student"] == "Points Possible" and float(canvas[0][a]) == total
    by_id = {r["ID"]: r for r in canvas[1:]}
    assert float(by_id["1001"][a]) == total and float(by_id["1002"][a]) == 0
    for student, points in (("ada", total), ("bob", 0)):
        feedback = root / "export" / "feedback" / student / f"{a}-feedback.md"
        assert f"Total: {points:g} of {total:g} points" in feedback.read_text()


@pytest.mark.slow
@pytest.mark.skipif(
    os.environ.get("CNNLAB_TEST_STUDENT_VENV") != "1",
    reason="installs the student venv (about 3 minutes); set CNNLAB_TEST_STUDENT_VENV=1",
)
def test_student_venv_fits(student_course: Path, tmp_path: Path) -> None:
    """``make setup`` in a fresh copy of the bundle, then the venv is at most 600 MB and imports the
    course's tools."""
    course = tmp_path / "course"
    shutil.copytree(student_course, course, ignore=shutil.ignore_patterns("submit"))
    env = {**BARE_ENV, "HOME": str(tmp_path), "PIP_NO_INPUT": "1"}
    for key in ("PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_FIND_LINKS", "PIP_CONSTRAINT", "PIP_CERT"):
        if key in os.environ:
            env[key] = os.environ[key]
    run = _run(["make", "setup", f"PYTHON={shutil.which('python3') or 'python3'}"], course, env)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    size = sum(p.lstat().st_size for p in (course / ".venv").rglob("*") if not p.is_symlink())
    print(f"student venv: {size / 2**20:.0f} MB")
    assert size <= 600 * 2**20, f"the student venv is {size / 2**20:.0f} MB"
    check = _run(
        [str(course / ".venv/bin/python"), "-c", "import cnnlab, numpy, matplotlib, jupyterlab, nbgrader"],
        tmp_path,
        env,
    )
    assert check.returncode == 0, check.stderr
