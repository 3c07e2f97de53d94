"""The student's view of ``cnnlab/``: the files they edit, the provided layers, figures and data, and
one private subpackage (``_internal/``) holding the course's machinery, with its public names intact.

* The top level of the release (and of the reference it is built from) holds exactly the student's
  files (the task table's modules), the provided modules and data, ``__init__.py`` and ``_internal``.
* ``import cnnlab.checks``, ``from cnnlab.checks import check_task``, ``import cnnlab.tasks`` and the
  attributes ``cnnlab.checks`` / ``cnnlab.tasks`` work in a fresh interpreter, under the name
  ``cnnlab`` and under another one (the grader imports the reference as ``cnnlab_reference``).
* ``_internal/__init__.py`` imports nothing, so a module of it costs only itself.
* ``docs/architecture.md``'s module map names exactly the files there are.
* A cluster worker's copy of the reference (``ReferenceFiles``) carries the subpackage.
"""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from autograder.reference import SUBPACKAGE, load_reference

ROOT = Path(__file__).resolve().parent.parent
RELEASE = ROOT / "cnnlab"
SOURCE = ROOT / "solutions" / "cnnlab"

#: what the student sees besides the files they edit: written here, not derived, so that a module
#: added to the top level must be added here on purpose
PROVIDED = {
    "equivariance.py",
    "gradcheck.py",
    "fast.py",
    "data.py",
    "model.py",
    "plots.py",
    "plots_matrix.py",
    "digits.txt",
}
#: the machinery students never edit: none of it is at the top level
MACHINERY = {"tasks", "checks", "check_examples", "verdicts", "judge", "threads", "validate"}


def student_files() -> set[str]:
    return {f"{t.module}.py" for t in load_reference().tasks.TASKS.values()}


def top_level(folder: Path) -> set[str]:
    return {p.name for p in folder.iterdir() if p.name not in ("__pycache__", ".ipynb_checkpoints")}


@pytest.mark.parametrize("folder", [RELEASE, SOURCE], ids=["release", "reference"])
def test_the_top_level_is_the_students_files_the_provided_ones_and_one_private_folder(folder: Path) -> None:
    expected = student_files() | PROVIDED | {"__init__.py", SUBPACKAGE}
    assert student_files() == {"conv.py", "pool.py", "residual.py", "network.py"}  # the table is read
    assert top_level(folder) == expected
    assert (folder / SUBPACKAGE).is_dir()
    hidden = {p.stem for p in (folder / SUBPACKAGE).glob("*.py")}
    assert MACHINERY - {"judge"} <= hidden, hidden
    leaked = {name for name in top_level(folder) if Path(name).stem.lstrip("_") in MACHINERY}
    assert not leaked, f"machinery at the top level of {folder.name}/: {leaked}"


def test_the_view_check_fails_on_a_module_at_the_top_level(tmp_path: Path) -> None:
    """The check above can fail: one more top-level file is seen."""
    for name in [*student_files(), *PROVIDED, "__init__.py"]:
        (tmp_path / name).write_text("")
    (tmp_path / SUBPACKAGE).mkdir()
    assert top_level(tmp_path) == student_files() | PROVIDED | {"__init__.py", SUBPACKAGE}
    (tmp_path / "checks.py").write_text("")
    assert top_level(tmp_path) != student_files() | PROVIDED | {"__init__.py", SUBPACKAGE}


def _fresh(code: str, *path: Path) -> subprocess.CompletedProcess[str]:
    """``code`` in a fresh interpreter with ``path`` first on ``sys.path``, from a folder outside
    the repository."""
    prelude = f"import sys\nsys.path[:0] = {[str(p) for p in path]!r}\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=str(ROOT.parent) if ROOT.parent.is_dir() else None,
    )


@pytest.mark.parametrize("folder", [RELEASE.parent, SOURCE.parent], ids=["release", "reference"])
def test_the_public_names_import_every_way_in_a_fresh_interpreter(folder: Path) -> None:
    run = _fresh(
        f"""
        from cnnlab.checks import check_task          # every check cell's first line, first of all
        import cnnlab.checks
        import cnnlab.tasks
        import importlib
        import cnnlab

        assert cnnlab.__file__ == {str(folder / "cnnlab" / "__init__.py")!r}, cnnlab.__file__
        assert cnnlab.checks.check_task is check_task
        assert cnnlab.checks is sys.modules["cnnlab.checks"] is sys.modules["cnnlab._internal.checks"]
        assert cnnlab.tasks is sys.modules["cnnlab.tasks"] is sys.modules["cnnlab._internal.tasks"]
        assert importlib.import_module("cnnlab.tasks").TASKS["1.1"].function == "conv_output_size"
        from cnnlab.tasks import TASKS
        assert "2.1" in TASKS
        assert "judge" not in dir(cnnlab) and not hasattr(cnnlab._internal, "judge")
        print("ok")
        """,
        folder,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_the_public_names_follow_the_package_under_another_name() -> None:
    """The grader imports the reference as ``cnnlab_reference``: its aliases are its own."""
    run = _fresh(
        f"""
        from autograder.reference import load_package
        ref = load_package({str(SOURCE)!r}, "cnnlab_elsewhere")
        from cnnlab_elsewhere.checks import check_task
        import cnnlab_elsewhere.tasks
        assert ref.checks is sys.modules["cnnlab_elsewhere.checks"]
        assert ref.checks.__name__ == "cnnlab_elsewhere._internal.checks"
        assert check_task.__module__ == "cnnlab_elsewhere._internal.checks"
        assert cnnlab_elsewhere.tasks is ref.tasks
        assert "cnnlab" not in sys.modules and "cnnlab.checks" not in sys.modules
        print("ok")
        """,
        ROOT,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def test_the_private_subpackage_imports_nothing() -> None:
    """As the sandbox imports the released copy (``__init__`` of the package not run): the subpackage
    alone loads no module of its own and no numpy; the thread helpers load only themselves."""
    run = _fresh(
        f"""
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "bare", {str(RELEASE / "__init__.py")!r}, submodule_search_locations=[{str(RELEASE)!r}]
        )
        sys.modules["bare"] = importlib.util.module_from_spec(spec)  # not executed
        before = set(sys.modules)
        importlib.import_module("bare._internal")
        assert set(sys.modules) - before == {{"bare._internal"}}, set(sys.modules) - before
        importlib.import_module("bare._internal.threads")
        loaded = {{m for m in sys.modules if m.startswith("bare.")}}
        assert loaded == {{"bare._internal", "bare._internal.threads"}}, loaded
        print("ok")
        """,
    )
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr


def module_map() -> set[str]:
    """The files ``docs/architecture.md``'s module map names (its table with a "student writes?"
    column)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    table = text.split("| file | what | student writes? |", 1)[1].split("\n\n", 1)[0]
    names: set[str] = set()
    for row in table.splitlines()[2:]:
        names |= set(re.findall(r"`([\w./]+\.(?:py|txt|json))`", row.split("|")[1]))
    return names


def test_the_module_map_names_exactly_the_files_of_the_package() -> None:
    files = {p.relative_to(RELEASE).as_posix() for p in RELEASE.rglob("*") if p.is_file()}
    files = {f for f in files if "__pycache__" not in f and ".ipynb_checkpoints" not in f}
    assert module_map() == files
    assert "_internal/verdicts.py" in files and "checks.py" not in files  # the check can fail


def test_the_reference_travels_with_its_subpackage() -> None:
    """A cluster worker gets the reference as files (``ReferenceFiles``): the subpackage's files go
    too, and a path outside the package's two folders is refused."""
    from autograder import reference
    from autograder.build import package_files

    files = reference.ReferenceFiles.read(SOURCE)
    names = {name for name, _ in files.files}
    assert {"conv.py", "_internal/tasks.py", "_internal/verdicts.py", "_internal/checks.py"} <= names
    shipped = [p for p in package_files(SOURCE) if p.suffix in reference.PACKAGE_SUFFIXES]
    assert names == {p.relative_to(SOURCE).as_posix() for p in shipped}
    for bad in ("../conv.py", "_internal/../../x.py", "other/x.py", "_internal/.hidden.py", "a/b/c.py"):
        with pytest.raises(ValueError, match="not a file of the reference package"):
            reference._private_folder(reference.ReferenceFiles(((bad, b""),)), "0" * 64)
