"""The notebook series, end to end.

(a) Every source notebook (``solutions/notebooks``) runs top to bottom in a fresh kernel against the
    reference (``solutions/`` first on PYTHONPATH, then the repository root), with no error, and the
    whole series fits the time budget.
(b) Every released notebook (``notebooks/``) runs against the generated stubs; its only errors are the
    stubs' ``NotImplementedError("Task X.Y: ...")`` of its own tasks, and each check cell fails with
    its own task's message.
(c) The committed notebooks are clean and consistent: no outputs, one check cell per task with the
    right grade_id, points and heading, autoreload on.

Kernels run in a temporary folder, so nothing is written into the repository.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")

from autograder.manifest import load_manifest  # noqa: E402
from autograder.reference import load_reference  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SOURCE_NB = ROOT / "solutions" / "notebooks"
RELEASE_NB = ROOT / "notebooks"
TASKS = load_reference().tasks.TASKS
NOTEBOOKS = sorted(p.stem for p in SOURCE_NB.glob("*.ipynb"))
CELL_TIMEOUT_SECONDS = 300

# Notebooks that run the functions of earlier notebooks (05's digit network runs conv, pool and the
# residual blocks): against the stubs they may also fail with those tasks' stubs. The manifest says
# which: the student files an assignment grades beyond its own tasks' files.
USES = {
    name: tuple(t.id for t in TASKS.values() if t.path in a.files and t.notebook not in a.notebook_ids)
    for a in load_manifest().values()
    for name in a.notebook_ids
}
STUB_ERROR = re.compile(r"^Task (\d+\.\d+): implement (\w+) in (cnnlab/\w+\.py)")


from autograder.generate import check_cell_source  # noqa: E402  (the exact source of a check cell)


@dataclass
class Run:
    nb: object  # the executed notebook
    seconds: float  # wall time, kernel start included
    errors: list[tuple[str, str, str]]  # (cell id, ename, evalue)

    def cell_seconds(self) -> dict[str, float]:
        """Run time of each code cell, from the timestamps nbclient records in the cell metadata."""
        out = {}
        for cell in self.nb.cells:
            timing = cell.get("metadata", {}).get("execution", {})
            start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
            if start and end:
                delta = datetime.fromisoformat(end.replace("Z", "+00:00")) - datetime.fromisoformat(
                    start.replace("Z", "+00:00")
                )
                out[cell.get("id", "?")] = delta.total_seconds()
        return out

    def summary(self) -> str:
        cells = self.cell_seconds()
        slowest = sorted(cells.items(), key=lambda kv: -kv[1])[:3]
        startup = self.seconds - sum(cells.values())
        return (
            f"{self.seconds:6.1f} s (kernel start and overhead {startup:.1f} s; slowest cells: "
            + ", ".join(f"{cid} {sec:.1f} s" for cid, sec in slowest)
            + ")"
        )


def execute(path: Path, pythonpath: str, cwd: Path) -> Run:
    """Run a notebook in a fresh python3 kernel with ``allow_errors=True``; collect its errors."""
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ)
    env["PYTHONPATH"] = pythonpath
    env["MPLBACKEND"] = "Agg"
    env.pop("NBGRADER_EXECUTION", None)
    # The notebooks multiply small matrices: BLAS threads only add overhead, and on a busy machine
    # (CI runs other work beside the kernel) they oversubscribe the cores and slow 05 down fourfold.
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[var] = "1"
    from traitlets.config import Config

    # unix sockets, not TCP ports: kernels started beside other servers (the hub test, the book)
    # never clash on a port (as tools/book.py)
    ipc = str(Path(tempfile.mkdtemp(prefix="cnnlab-kernel-")) / "kernel")
    client = nbclient.NotebookClient(
        nb,
        timeout=CELL_TIMEOUT_SECONDS,
        kernel_name="python3",
        allow_errors=True,
        config=Config({"KernelManager": {"transport": "ipc", "ip": ipc}}),
        resources={"metadata": {"path": str(cwd)}},
    )
    start = time.perf_counter()
    client.execute(env=env)
    seconds = time.perf_counter() - start
    errors = [
        (cell.get("id", "?"), out.get("ename", ""), out.get("evalue", ""))
        for cell in nb.cells
        if cell.cell_type == "code"
        for out in cell.get("outputs", [])
        if out.get("output_type") == "error"
    ]
    return Run(nb, seconds, errors)


def check_cells(nb) -> dict[str, tuple[int, object]]:
    """grade_id -> (index, cell) of the nbgrader grade cells of a notebook."""
    found = {}
    for i, cell in enumerate(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade"):
            found[meta.get("grade_id")] = (i, cell)
    return found


def tasks_of(name: str) -> list:
    return [t for t in TASKS.values() if t.notebook == name]


# ---------------------------------------------------------------------------------------------
# (a) source notebooks against the reference
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def source_runs(tmp_path_factory) -> dict[str, Run]:
    """Each source notebook run once, in a temporary folder, with the reference as ``cnnlab``."""
    # solutions/ first: `import cnnlab` is the reference (its visible checks read the release's
    # _internal/check_cases.json, see cnnlab.checks._cases_path); the root second, for `import autograder`.
    pythonpath = os.pathsep.join([str(ROOT / "solutions"), str(ROOT)])
    runs = {}
    for name in NOTEBOOKS:
        cwd = tmp_path_factory.mktemp(f"source_{name}")
        runs[name] = execute(SOURCE_NB / f"{name}.ipynb", pythonpath, cwd)
    return runs


def test_there_are_notebooks():
    assert NOTEBOOKS, f"no notebooks in {SOURCE_NB}"
    assert {t.notebook for t in TASKS.values()} <= set(NOTEBOOKS), "a task's notebook is missing"


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_source_notebook_runs_against_the_reference(source_runs, name):
    run = source_runs[name]
    print(f"{name}: {run.summary()}")
    assert not run.errors, f"{name} raised in cells: " + "; ".join(
        f"{cid}: {ename}: {evalue[:300]}" for cid, ename, evalue in run.errors
    )


# The series' run time is measured, never asserted (a timed assertion fails on a busy machine): each
# notebook's run prints its seconds and slowest cells (Run.summary) with the test above.


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_source_check_cells_pass_and_grade(source_runs, name):
    """Against the reference each check cell prints no failure and its hidden grade is full marks."""
    points = {tid: p for a in load_manifest().values() for tid, p in a.points.items()}
    cells = check_cells(source_runs[name].nb)
    for task in tasks_of(name):
        _, cell = cells[task.marker]
        results = [o for o in cell.outputs if o.get("output_type") == "execute_result"]
        if results:  # grade_task's return value: the points earned
            value = results[-1]["data"].get("text/plain", "")
            try:
                earned = float(value)
            except ValueError:
                continue
            assert earned == pytest.approx(points[task.id]), f"Task {task.id}: reference earns {value}"


# ---------------------------------------------------------------------------------------------
# (b) released notebooks against the stubs
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def release_runs(tmp_path_factory) -> dict[str, Run]:
    if not all((RELEASE_NB / f"{n}.ipynb").exists() for n in NOTEBOOKS):
        pytest.fail("notebooks/ is not built: run `python -m tools.build`")
    runs = {}
    for name in NOTEBOOKS:
        cwd = tmp_path_factory.mktemp(f"release_{name}")
        runs[name] = execute(RELEASE_NB / f"{name}.ipynb", str(ROOT), cwd)
    return runs


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_release_fails_only_with_its_own_stubs(release_runs, name):
    """Each error is a stub's NotImplementedError of this notebook's tasks or of those it uses (USES)."""
    run = release_runs[name]
    own = {t.id for t in tasks_of(name)} | set(USES.get(name, ()))
    for cid, ename, evalue in run.errors:
        match = STUB_ERROR.match(evalue)
        assert ename == "NotImplementedError" and match, f"{name}, cell {cid}: {ename}: {evalue[:300]}"
        assert match.group(1) in own, f"{name}, cell {cid} fails with another notebook's task: {evalue}"
        task = TASKS[match.group(1)]
        assert (match.group(2), match.group(3)) == (task.function, task.path), evalue


@pytest.mark.slow
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_release_check_cells_fail_with_their_own_task(release_runs, name):
    cells = check_cells(release_runs[name].nb)
    for task in tasks_of(name):
        _, cell = cells[task.marker]
        errors = [o for o in cell.outputs if o.get("output_type") == "error"]
        assert errors, f"the check cell of Task {task.id} passed against the stub"
        assert errors[0]["ename"] == "NotImplementedError", errors[0]["ename"]
        assert errors[0]["evalue"].startswith(f"Task {task.id}: "), errors[0]["evalue"]


@pytest.mark.slow
def test_a_fresh_kernel_finds_the_public_checks_first_of_all(tmp_path):
    """A check cell's ``from cnnlab.checks import check_task`` as the kernel's very first import: the
    machinery is in ``cnnlab/_internal/``, and ``cnnlab.checks`` / ``cnnlab.tasks`` are still there."""
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(
            "from cnnlab.checks import check_task\n"
            "import cnnlab.tasks\n"
            "import cnnlab\n"
            'print(cnnlab.__file__, check_task.__module__, cnnlab.tasks.TASKS["1.1"].function)'
        ),
        nbformat.v4.new_code_cell('check_task("1.1")'),
    ]
    path = tmp_path / "fresh.ipynb"
    nbformat.write(nb, path)
    run = execute(path, str(ROOT), tmp_path)
    printed = "".join(o.get("text", "") for o in run.nb.cells[0].outputs)
    assert printed.split() == [
        str(ROOT / "cnnlab" / "__init__.py"),
        "cnnlab._internal.checks",
        "conv_output_size",
    ]
    assert [(e[1], e[2].split(":")[0]) for e in run.errors] == [("NotImplementedError", "Task 1.1")], (
        run.errors
    )


# ---------------------------------------------------------------------------------------------
# (c) committed notebooks: clean and consistent
# ---------------------------------------------------------------------------------------------


def committed() -> list[Path]:
    return sorted(SOURCE_NB.glob("*.ipynb")) + sorted(RELEASE_NB.glob("*.ipynb"))


@pytest.mark.parametrize("path", committed(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_committed_notebook_is_clean(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3"
    ids = [cell.get("id") for cell in nb.cells]
    assert all(ids) and len(set(ids)) == len(ids), "every cell needs a unique, stable id"
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name}, cell {cell.id} has outputs"
            assert cell.execution_count is None, f"{path.name}, cell {cell.id} has an execution count"
        assert "execution" not in cell.metadata, f"{path.name}, cell {cell.id} has execution timing"
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "%load_ext autoreload" in code and "%autoreload 2" in code
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def test_release_has_the_same_notebooks():
    assert sorted(p.stem for p in RELEASE_NB.glob("*.ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("folder", [SOURCE_NB, RELEASE_NB], ids=["source", "release"])
def test_one_check_cell_per_task_with_heading_and_points(folder):
    manifest = load_manifest()
    points = {tid: p for a in manifest.values() for tid, p in a.points.items()}
    seen: dict[str, str] = {}
    for path in sorted(folder.glob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for i, cell in enumerate(nb.cells):
            meta = cell.get("metadata", {}).get("nbgrader")
            if not meta:
                continue
            gid = meta.get("grade_id")
            assert gid not in seen, f"grade_id {gid} in {seen.get(gid)} and {path.name}"
            seen[gid] = path.name
            assert meta.get("grade") is True and meta.get("locked") is True and meta.get("solution") is False
            assert meta.get("schema_version") == 3
            task = next((t for t in TASKS.values() if t.marker == gid), None)
            assert task is not None, f"{path.name}: grade_id {gid} is no task marker"
            assert path.stem == task.notebook, f"Task {task.id}'s check cell is in {path.name}"
            assert meta.get("points") == points[task.id], f"Task {task.id}: points {meta.get('points')}"
            above = nb.cells[i - 1]
            assert above.cell_type == "markdown", f"the cell above Task {task.id}'s check is not markdown"
            assert above.source.startswith(f"## Task {task.id}: {task.function}"), above.source[:80]
            assert f"cnnlab/{task.module}.py" in above.source and task.function in above.source
            if folder == SOURCE_NB:
                assert cell.source == check_cell_source(task)
            else:
                assert "grade_task" not in cell.source and f'check_task("{task.id}")' in cell.source
    assert set(seen) == {t.marker for t in TASKS.values()}, "every task needs exactly one check cell"


def test_manifest_notebooks_exist():
    for assignment in load_manifest().values():
        for nb in assignment.notebooks:
            assert (SOURCE_NB / nb).exists(), nb
