"""What the build derives from the task table and writes into hand-written files.

A task is written in five places (``cnnlab/_internal/tasks.py`` says which); everything else that names it is
derived here, by ``python -m tools.build`` (``make release``), and ``--check`` fails on drift:

* **source notebooks** (``solutions/notebooks``): the task's markdown cell is the one whose first
  line starts ``## Task X.Y``; the build writes that line (``## Task X.Y: function in `cnnlab/file.py```)
  and the check cell right after it, with its nbgrader metadata and the points of
  ``autograder/assignments.toml`` (inserted when missing, rewritten when it drifted);
* **generated regions** of Markdown files: the lines between one holding ``begin generated: <name>``
  and one holding ``end generated: <name>`` (e.g. ``<!-- begin generated: task table -->``) are the
  build's; everything outside them is hand-written.

:func:`notebook_contract` lists what breaks a course notebook's contract (a fast, static check: the
tests run it on every notebook, the build refuses a notebook that breaks it).
"""

from __future__ import annotations

import ast
import json
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from autograder.errors import CnnlabError
from autograder.markers import cell_source, grade_id

ROOT = Path(__file__).resolve().parent.parent
SOURCE_NB = ROOT / "solutions" / "notebooks"
#: Markdown files with generated regions, and the regions each holds
MARKDOWN_FILES = {
    ROOT / "README.md": ("doing a task", "task table"),
    ROOT / "book" / "intro.md": ("tasks by notebook", "doing a task"),
    ROOT / "docs" / "architecture.md": ("task map", "student files"),
}

HEADING = re.compile(r"^##\s+Task\s+(\d+\.\d+)\b")
CHECK_LINE = re.compile(r"^#\s*Check Task\s+(\d+\.\d+)\b")
BEGIN_GENERATED = re.compile(r"begin generated:\s*(?P<name>[\w -]*\w)(\s*\(.*\))?\s*(-->)?\s*$")
END_GENERATED = re.compile(r"end generated(:\s*(?P<name>[\w -]*\w))?(\s*\(.*\))?\s*(-->)?\s*$")


#: README's paragraph on doing a task, with the course's first task as its example
DOING_A_TASK = """\
Each notebook names the function to write, e.g. **Task {t.id}: `{t.function}` in `{t.path}`**. Open
that file from the file browser (`cnnlab` → `{t.module}.py`), replace the
`raise NotImplementedError("Task {t.id}: ...")` under `# TODO: Task {t.id}` with your code, save it,
and run the check cell right below the task in the notebook. The check always runs the file as you
last saved it (no kernel restart needed); when something is wrong it says what, starting with the
simplest hand-worked case, and counts the other cases that fail the same way. When a notebook is
done, its **Validate** button runs it top to bottom. Run exactly the tests of one task from a
terminal, MiniTorch-style (`make setup-test` first adds pytest, hypothesis and scipy, about 150 MB
more):

```bash
.venv/bin/pytest -m {t.marker}      # tests of Task {t.id} against *your* cnnlab
```"""


class GenerateError(CnnlabError):
    """A hand-written file cannot take its generated parts (an unknown task, a region never closed)."""


# --------------------------------------------------------------------------- check cells and headings


def heading_line(task: Any) -> str:
    """The first line of a task's markdown cell: ``## Task X.Y: conv1d in `cnnlab/conv.py```."""
    return f"## Task {task.id}: {task.function} in `{task.path}`"


def check_cell_source(task: Any) -> str:
    """The exact source of a task's check cell in a source notebook (docs/architecture.md)."""
    return (
        f"# Check Task {task.id}: {task.function}\n"
        "from cnnlab.checks import check_task\n\n"
        f'check_task("{task.id}")\n'
        "### BEGIN HIDDEN TESTS\n"
        "from autograder.hidden import grade_task\n\n"
        f'grade_task("{task.id}")\n'
        "### END HIDDEN TESTS"
    )


def check_cell_metadata(task: Any, points: float) -> dict[str, Any]:
    """nbgrader's metadata of a task's check cell: a locked grade cell worth the manifest's points."""
    return {
        "grade": True,
        "grade_id": task.marker,
        "locked": True,
        "points": points,
        "schema_version": 3,
        "solution": False,
    }


def _lines(text: str) -> list[str]:
    """A cell source as nbformat (and JupyterLab) stores it: a list of lines."""
    return text.splitlines(keepends=True)


def task_heading(cell: dict[str, Any]) -> str | None:
    """The task ID of a task's markdown cell (first line ``## Task X.Y ...``), else None."""
    if cell.get("cell_type") != "markdown":
        return None
    m = HEADING.match(cell_source(cell).lstrip("\n"))
    return m.group(1) if m else None


def is_check_cell(cell: dict[str, Any]) -> bool:
    """A task's check cell: a graded cell with a ``task..`` grade_id, or a ``# Check Task`` first line."""
    gid = grade_id(cell) or ""
    return bool(re.fullmatch(r"task\d+_\d+", gid)) or bool(CHECK_LINE.match(cell_source(cell)))


def _id_prefix(name: str) -> str:
    """The prefix of a notebook's cell ids, ``nb01-`` for ``01_convolution``."""
    return f"nb{name[:2]}-" if name[:2].isdigit() else ""


def with_check_cells(
    nb: dict[str, Any], name: str, tasks: Mapping[str, Any], points: Mapping[str, float]
) -> dict[str, Any]:
    """The source notebook ``nb`` (a new dict) with every task heading and check cell as derived.

    Each task's markdown cell gets its heading line, and the cell after it becomes its check cell
    (inserted when that cell is no check cell). A check cell anywhere else is an error.
    """
    nb = json.loads(json.dumps(nb))
    cells: list[dict[str, Any]] = []
    source = nb["cells"]
    i = 0
    while i < len(source):
        cell = source[i]
        i += 1
        task_id = task_heading(cell)
        if task_id is None:
            if is_check_cell(cell):
                raise GenerateError(
                    f"{name}: cell {cell.get('id')!r} is a check cell without a '## Task X.Y' markdown cell "
                    "right above it"
                )
            cells.append(cell)
            continue
        if task_id not in tasks:
            raise GenerateError(
                f"{name}: heading '## Task {task_id}' names no task of cnnlab/_internal/tasks.py"
            )
        task = tasks[task_id]
        if task.notebook != name:
            raise GenerateError(
                f"{name}: Task {task_id} belongs to {task.notebook}.ipynb (cnnlab/_internal/tasks.py)"
            )
        if task_id not in points:
            raise GenerateError(f"{name}: Task {task_id} has no points in autograder/assignments.toml")
        text = cell_source(cell).lstrip("\n")
        rest = text.partition("\n")[2]
        cell["source"] = _lines(heading_line(task) + ("\n" + rest if rest else ""))
        cells.append(cell)
        check = source[i] if i < len(source) and is_check_cell(source[i]) else None
        if check is not None:
            i += 1
        else:
            check = {
                "cell_type": "code",
                "execution_count": None,
                "id": f"{_id_prefix(name)}check-{task.marker}",
                "outputs": [],
            }
        check["cell_type"] = "code"
        check["source"] = _lines(check_cell_source(task))
        check.setdefault("metadata", {})["nbgrader"] = check_cell_metadata(task, points[task_id])
        check.setdefault("outputs", [])
        check.setdefault("execution_count", None)
        cells.append(check)
    nb["cells"] = cells
    return nb


def dump_source_notebook(nb: dict[str, Any]) -> str:
    """A source notebook as it is committed: nbformat's layout, sources as lists of lines."""
    for cell in nb["cells"]:
        if isinstance(cell.get("source"), str):
            cell["source"] = _lines(cell["source"])
    return json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


# --------------------------------------------------------------------------- the notebook contract


def _called_functions(code: str) -> set[tuple[str, str]]:
    """The ``(module, function)`` pairs a code cell calls as ``module.function(...)``, and as
    ``function(...)`` after ``from cnnlab.module import function``, outside ``try`` blocks that catch
    ``NotImplementedError``."""
    try:
        tree = ast.parse("\n".join(ln for ln in code.splitlines() if not ln.lstrip().startswith(("%", "!"))))
    except SyntaxError:
        return set()
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cnnlab."):
            for alias in node.names:
                imported[alias.asname or alias.name] = node.module.rpartition(".")[2]
    guarded = set()  # calls inside `try: ... except NotImplementedError` know they may meet a stub
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            "NotImplementedError" in ast.unparse(h.type or ast.Pass()) for h in node.handlers
        ):
            guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    calls = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or id(node) in guarded:
            continue
        fn = node.func
        if isinstance(fn, ast.Attribute) and isinstance(fn.value, ast.Name):
            calls.add((fn.value.id, fn.attr))
        elif isinstance(fn, ast.Name) and fn.id in imported:
            calls.add((imported[fn.id], fn.id))
    return calls


def notebook_contract(
    nb: dict[str, Any], name: str, tasks: Mapping[str, Any], points: Mapping[str, float]
) -> list[str]:
    """Everything that breaks the contract of the source notebook ``name``, one line each.

    * its tasks (by the task table) each have one heading and one check cell right after it, with the
      exact source and metadata (points from the manifest), in the order of the task table;
    * the heading names the task's file;
    * cell ids are present, unique and stable (not nbformat's random 8-hex ids);
    * no demo cell calls a function that is still a stub for its reader: a task function of a later
      notebook, or of this notebook above that task's check cell (in the student release the demo
      would fail with another task's ``NotImplementedError``).
    """
    problems: list[str] = []
    cells = nb.get("cells", [])
    ids = [c.get("id") for c in cells]
    for i, cid in enumerate(ids):
        if not isinstance(cid, str) or not cid:
            problems.append(f"{name}: cell {i} has no id")
        elif re.fullmatch(r"[0-9a-f]{8}(-[0-9a-f]{4}){0,4}[0-9a-f]*", cid):
            problems.append(f"{name}: cell {i} has a random id {cid!r}: give it a stable, readable one")
    dupes = sorted({c for c in ids if isinstance(c, str) and ids.count(c) > 1})
    if dupes:
        problems.append(f"{name}: duplicate cell ids {dupes}")
    own = [t.id for t in tasks.values() if t.notebook == name]
    seen: list[str] = []
    for i, cell in enumerate(cells):
        task_id = task_heading(cell)
        if task_id is not None:
            task = tasks.get(task_id)
            if task is None:
                problems.append(f"{name}: heading of unknown Task {task_id}")
                continue
            first = cell_source(cell).lstrip("\n").partition("\n")[0]
            if first != heading_line(task):
                problems.append(f"{name}: Task {task_id}'s heading is {first!r}, not {heading_line(task)!r}")
            nxt = cells[i + 1] if i + 1 < len(cells) else {}
            if not is_check_cell(nxt):
                problems.append(f"{name}: no check cell right after Task {task_id}'s heading")
            seen.append(task_id)
        elif is_check_cell(cell):
            gid = grade_id(cell) or ""
            m = CHECK_LINE.match(cell_source(cell))
            task_id = m.group(1) if m else gid.removeprefix("task").replace("_", ".")
            task = tasks.get(task_id)
            if task is None:
                problems.append(f"{name}: check cell of unknown task {task_id!r}")
                continue
            if cell_source(cell) != check_cell_source(task):
                problems.append(f"{name}: Task {task_id}'s check cell differs from the derived source")
            meta = cell.get("metadata", {}).get("nbgrader")
            if meta != check_cell_metadata(task, points.get(task_id, -1)):
                problems.append(
                    f"{name}: Task {task_id}'s check cell metadata {meta} (points {points.get(task_id)})"
                )
            if i == 0 or task_heading(cells[i - 1]) != task_id:
                problems.append(f"{name}: Task {task_id}'s check cell is not right after its heading")
    if seen != own:
        problems.append(f"{name}: task headings {seen}, the task table says {own} in this order")
    by_function = {(t.module, t.function): t for t in tasks.values()}
    checked: set[str] = set()
    for cell in cells:
        if is_check_cell(cell):
            m = CHECK_LINE.match(cell_source(cell))
            checked.add(m.group(1) if m else "")
            continue
        if cell.get("cell_type") != "code":
            continue
        for module, fn in sorted(_called_functions(cell_source(cell))):
            task = by_function.get((module, fn))
            if task is None or task.id in checked or task.notebook < name:
                continue
            problems.append(
                f"{name}: cell {cell.get('id')!r} calls {module}.{fn}, still a stub there (Task {task.id} "
                f"is asked for {'below' if task.notebook == name else 'in ' + task.notebook})"
            )
    return problems


# --------------------------------------------------------------------------- generated regions


def fill_regions(text: str, where: str, make: Mapping[str, Callable[[], str]]) -> str:
    """``text`` with each generated region's lines replaced by ``make[name]()``."""
    lines = text.splitlines(keepends=True)
    out: list[str] = []
    current: str | None = None
    found: set[str] = set()
    for n, line in enumerate(lines, start=1):
        begin = BEGIN_GENERATED.search(line)
        end = END_GENERATED.search(line)
        if begin and current is None:
            current = begin.group("name")
            if current not in make:
                raise GenerateError(
                    f"{where}:{n}: unknown generated region {current!r} (known: {sorted(make)})"
                )
            out.append(line)
            body = make[current]().rstrip("\n")
            out.append(body + "\n" if body else "")
            found.add(current)
        elif end and current is not None:
            if end.group("name") not in (None, current):
                raise GenerateError(f"{where}:{n}: region {current!r} ends as {end.group('name')!r}")
            current = None
            out.append(line)
        elif begin or end:
            raise GenerateError(f"{where}:{n}: generated regions cannot nest or end unopened")
        elif current is None:
            out.append(line)
    if current is not None:
        raise GenerateError(f"{where}: generated region {current!r} is never closed")
    missing = sorted(set(make) - found)
    if missing:
        raise GenerateError(f"{where}: the generated regions {missing} are missing")
    return "".join(out)


def notebook_titles() -> dict[str, str]:
    """Each source notebook's title (its first heading, without ``# ``), by name."""
    titles = {}
    for path in sorted(SOURCE_NB.glob("*.ipynb")):
        first = json.loads(path.read_text())["cells"][0]
        titles[path.stem] = cell_source(first).lstrip("# ").partition("\n")[0].strip()
    return titles


def regions(
    tasks: Mapping[str, Any], points: Mapping[str, float], titles: Mapping[str, str]
) -> dict[str, Callable[[], str]]:
    """The generated regions by name."""

    def task_table() -> str:
        rows = ["| task | function | file | notebook |", "|---|---|---|---|"]
        shown: set[str] = set()
        for t in tasks.values():
            nb = (
                t.notebook[:2]
                if t.notebook in shown
                else f"{t.notebook[:2]} {titles[t.notebook].split(' · ', 1)[-1]}"
            )
            shown.add(t.notebook)
            rows.append(f"| {t.id} | `{t.function}` | `{t.path}` | {nb} |")
        return "\n".join(rows)

    def by_notebook() -> str:
        rows = []
        for nb, title in titles.items():
            own = [t for t in tasks.values() if t.notebook == nb]
            if own:
                files = ", ".join(dict.fromkeys(f"`{t.path}`" for t in own))
                written = ", ".join(f"Task {t.id} `{t.function}`" for t in own)
                rows.append(f"- [{title}]({nb}.ipynb): {written}, in {files}")
        return "\n".join(rows)

    def task_map() -> str:
        rows = [
            "| task | function | file | notebook | points | marker / grade_id |",
            "|---|---|---|---|---|---|",
        ]
        for t in tasks.values():
            rows.append(
                f"| {t.id} | `{t.function}` | `{t.path}` | `{t.notebook}.ipynb` | {points.get(t.id, '?')} "
                f"| `{t.marker}` |"
            )
        return "\n".join(rows)

    def student_files() -> str:
        rows = ["| file | tasks |", "|---|---|"]
        for module in dict.fromkeys(t.module for t in tasks.values()):
            ids = ", ".join(t.id for t in tasks.values() if t.module == module)
            rows.append(f"| `{module}.py` | {ids} |")
        return "\n".join(rows)

    def doing_a_task() -> str:
        t = next(iter(tasks.values()))  # the example: the course's first task
        return DOING_A_TASK.format(t=t)

    return {
        "doing a task": doing_a_task,
        "task table": task_table,
        "tasks by notebook": by_notebook,
        "task map": task_map,
        "student files": student_files,
    }


def markdown_files(tasks: Mapping[str, Any], points: Mapping[str, float]) -> dict[Path, str]:
    """Every Markdown file with generated regions, as the build writes it (path -> text)."""
    make = regions(tasks, points, notebook_titles())
    out = {}
    for path, names in MARKDOWN_FILES.items():
        out[path] = fill_regions(path.read_text(), str(path.relative_to(ROOT)), {n: make[n] for n in names})
    return out
