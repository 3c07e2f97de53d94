"""Build the self-study book: ``python -m tools.book`` (``make book``) -> ``_build/book/index.html``.

The book is static HTML, built with jupyter-book 1.x (Sphinx) with no network:

1. ``book/`` (``_config.yml``, ``_toc.yml``, ``intro.md``) and the source notebooks
   ``solutions/notebooks/*.ipynb`` are copied into a temporary folder; the sources are never changed.
2. In each copied notebook the hidden tests are removed, and right after every task's check cell a
   collapsed "Show solution" dropdown is inserted, holding the reference function from
   ``solutions/cnnlab/<module>.py`` with its ``### BEGIN/END SOLUTION`` marker lines removed (the
   student writes that code in ``cnnlab/*.py``, not in the notebook). A solution region inside a
   notebook cell stays (the cells below need it) but is folded too.
3. Every notebook is executed with nbclient against the reference: ``import cnnlab`` in the kernel is
   ``solutions/cnnlab`` (``solutions/`` ahead of the repository root on ``PYTHONPATH``; its visible
   checks read the release's ``check_cases.json``, which ``make release`` writes). Every
   figure and number is in the book, and a cell that raises stops the build. So does a figure without
   alt text: every image output must carry ``alt`` in its metadata (``cnnlab.plots`` gives each figure
   one, and an ``<img alt>`` that the book shows; see issue 23). Kernels use unix sockets (no port
   to clash on); one that does not start is started again, then the build stops, naming it.
4. MathJax 3 is served from the book itself, not a CDN: ``npm ci`` (run here when ``node_modules/mathjax``
   is missing) installs the version ``package-lock.json`` pins.
5. ``jupyter-book build`` renders the folder; the HTML replaces ``_build/book/``.

``--if-stale`` skips the build when ``_build/book`` was built from the current inputs (a digest of
``book/``, this script, the notebooks, the reference package, ``autograder/*.py`` and
``package-lock.json``).
Nothing is cached in the repository.
"""

from __future__ import annotations

import argparse
import ast
import atexit
import hashlib
import json
import multiprocessing
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

from autograder.errors import CnnlabError
from autograder.markers import BEGIN, BEGIN_HIDDEN, END_HIDDEN, drop_marker_lines, strip_between

ROOT = Path(__file__).resolve().parent.parent
BOOK_SRC = ROOT / "book"
SOURCE_NB = ROOT / "solutions" / "notebooks"
SOURCE_PKG = ROOT / "solutions" / "cnnlab"
OUT = ROOT / "_build" / "book"
MATHJAX = ROOT / "node_modules" / "mathjax" / "es5"
STAMP_NAME = ".cnnlab-book.json"


# What of MathJax's es5/ folder the book serves: the combined TeX component, the TeX extensions it
# autoloads on demand (\boldsymbol, ...), the CHTML fonts, and the menu's accessibility parts.
MATHJAX_PARTS = [
    "tex-mml-chtml.js",
    "input/tex/extensions",
    "output/chtml/fonts/woff-v2",
    "a11y",
    "ui",
    "sre",
]
# html_static_path entry in book/_config.yml: copied into _static/, but not a folder named `_static`
# in the book source, whose every .js file jupyter-book would load with a <script> tag.
MATHJAX_STATIC = "_mathjax"

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
CELL_TIMEOUT = 900  # seconds per cell (notebook 05 trains a small CNN)
KERNEL_NAME = "python3"
STARTUP_TIMEOUT = 60  # seconds for a kernel to answer; one that does not is started again, fresh
KERNEL_STARTS = 3  # then the build stops, naming the notebook


class BookError(CnnlabError):
    """The book cannot be built (a missing input, a failing cell, a Sphinx error)."""


# --- preparing the notebooks ----------------------------------------------------------------------


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _drop_marker_lines(text: str) -> str:
    """``text`` without its ``### BEGIN/END SOLUTION`` lines (the code between them stays)."""
    return drop_marker_lines(text)


def _drop_hidden_tests(text: str) -> str:
    return strip_between(text, BEGIN_HIDDEN, END_HIDDEN, None)


def function_source(module: str, function: str) -> str:
    """The reference ``cnnlab.<module>.<function>`` as written, without the solution marker lines."""
    path = SOURCE_PKG / f"{module}.py"
    text = path.read_text()
    tree = ast.parse(text)
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == function:
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            lines = text.splitlines()[first - 1 : node.end_lineno]
            return _drop_marker_lines("\n".join(lines))
    raise BookError(f"solutions/cnnlab/{module}.py has no top-level function {function}")


def _fence(code: str, minimum: int = 3) -> str:
    """A backtick fence longer than any backtick run inside ``code``."""
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    return "`" * max(minimum, longest + 1)


def solution_cell(task) -> dict:
    """The markdown cell holding the collapsed reference solution of ``task``."""
    code = function_source(task.module, task.function)
    inner = _fence(code)
    outer = "::::"  # a colon fence: a backtick fence's info string may not hold the `code` of the title
    text = (
        f"{outer}{{dropdown}} Show solution: Task {task.id}, `{task.function}` in `{task.path}`\n"
        ":class-container: cnnlab-solution\n"
        ":icon: light-bulb\n"
        "\n"
        f"Try it yourself first. The reference `{task.function}` (`solutions/{task.path}`); the "
        "helpers it calls are in the student file too.\n"
        "\n"
        f"{inner}python\n{code}\n{inner}\n"
        f"{outer}"
    )
    return {
        "cell_type": "markdown",
        "id": f"solution-{task.marker.replace('_', '-')}",
        "metadata": {"cnnlab": {"solution_for": task.id}},
        "source": text,
    }


def _check_task_id(cell: dict, tasks: dict) -> str | None:
    """The task a check cell checks (nbgrader grade_id ``taskX_Y`` or a ``# Check Task X.Y`` line)."""
    if cell["cell_type"] != "code":
        return None
    grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id", "")
    by_marker = {t.marker: t.id for t in tasks.values()}
    if grade_id in by_marker:
        return by_marker[grade_id]
    m = re.match(r"\s*#\s*Check Task (\d+\.\d+)\b", _source(cell))
    return m.group(1) if m and m.group(1) in tasks else None


# A notebook's link to the student's file, e.g. [`cnnlab/conv.py`](cnnlab/conv.py): it opens the file in
# JupyterLab, where cnnlab/ is next to the notebook; the book has no such file, so it shows the name.
STUDENT_FILE_LINK = re.compile(r"\[(`?cnnlab/\w+\.py`?)\]\(cnnlab/\w+\.py\)")


def _unlink_student_files(text: str) -> str:
    return STUDENT_FILE_LINK.sub(r"\1", text)


def prepare_notebook(nb: dict, tasks: dict) -> tuple[dict, list[str]]:
    """The book version of one source notebook (a new dict) and the task IDs it got solutions for."""
    nb = json.loads(json.dumps(nb))
    cells, solved = [], []
    for cell in nb["cells"]:
        text = _source(cell)
        meta = cell.setdefault("metadata", {})
        if BEGIN_HIDDEN in text:
            text = _drop_hidden_tests(text)
        in_notebook_solution = BEGIN in text or meta.get("nbgrader", {}).get("solution", False)
        if BEGIN in text:
            text = _drop_marker_lines(text)
        if cell["cell_type"] == "markdown":
            text = _unlink_student_files(text)
        cell["source"] = text
        if cell["cell_type"] == "code":
            cell["outputs"], cell["execution_count"] = [], None
            if in_notebook_solution:  # the code stays (later cells need it) but is folded
                tags = meta.setdefault("tags", [])
                if "hide-input" not in tags:
                    tags.append("hide-input")
        elif in_notebook_solution:
            fence = ":" * max(4, max((len(m) for m in re.findall(r":{3,}", text)), default=0) + 1)
            cell["source"] = (
                f"{fence}{{dropdown}} Show a model answer\n:class-container: cnnlab-answer\n\n{text}\n{fence}"
            )
        cells.append(cell)
        task_id = _check_task_id(cell, tasks)
        if task_id is not None:
            cells.append(solution_cell(tasks[task_id]))
            solved.append(task_id)
    nb["cells"] = cells
    return nb, solved


# --- executing them against the reference ---------------------------------------------------------


def kernel_env(reference: Path) -> dict[str, str]:
    """The environment of the kernels: ``solutions/`` first on the path (``import cnnlab`` is the
    reference; its visible checks read the release's check_cases.json), inline figures."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(reference), str(ROOT)])
    env.pop("MPLBACKEND", None)  # CI sets Agg, which would leave the book without figures
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # no debugger warning in the first cell's output
    env.pop("NBGRADER_EXECUTION", None)
    # The notebooks multiply small matrices: BLAS threads only oversubscribe the cores while two
    # kernels run at once (as tests/test_notebooks.py finds, notebook 05 gets several times slower).
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env.setdefault(var, "1")
    return env


def execute_notebook(path: str, reference: str) -> tuple[str, float]:
    """Execute the notebook at ``path`` in place, in its folder, against the package in ``reference``;
    returns (name, seconds).

    Kernels talk over unix sockets next to the notebook, not TCP ports, so that kernels started at
    the same time never clash on a port. A kernel that does not answer within
    :data:`STARTUP_TIMEOUT` seconds is started again (:data:`KERNEL_STARTS` times in all, each
    attempt said on one line), then the build stops with one line naming the notebook."""
    import nbformat
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError
    from traitlets.config import Config

    start, name = time.perf_counter(), Path(path).name
    started: list[bool] = []  # whether the kernel of this attempt answered (then no retry)
    for attempt in range(1, KERNEL_STARTS + 1):
        nb = nbformat.read(path, as_version=4)
        ipc = str(Path(path).with_name(f".{Path(path).stem}-kernel{attempt}"))
        started.clear()
        client = NotebookClient(
            nb,
            config=Config({"KernelManager": {"transport": "ipc", "ip": ipc}}),
            kernel_name=KERNEL_NAME,
            timeout=CELL_TIMEOUT,
            startup_timeout=STARTUP_TIMEOUT,
            on_notebook_start=lambda **_: started.append(True),
            resources={"metadata": {"path": str(Path(path).parent)}},
        )
        try:
            client.execute(env=kernel_env(Path(reference)))
            break
        except CellExecutionError as err:
            raise BookError(f"{name}: a cell failed against the reference:\n{err}") from None
        except Exception as err:
            if started:
                raise BookError(f"{name}: the kernel failed ({type(err).__name__}: {err})") from None
            atexit.unregister(client._cleanup_kernel)  # nbclient already stopped this kernel
            why = f"{type(err).__name__}: {err}".splitlines()[0]
            if attempt == KERNEL_STARTS:
                raise BookError(
                    f"{name}: no kernel started in {KERNEL_STARTS} attempts of {STARTUP_TIMEOUT:g} s ({why})"
                ) from None
            print(f"  {name}: the kernel did not start ({why}); starting a fresh one", flush=True)
    drop_widgets(nb)
    missing = undescribed_figures(nb)
    if missing:
        raise BookError(
            f"{Path(path).name}: figures without alt text (draw them with cnnlab.plots, or give them "
            f"plots.describe and plots.show): {missing}"
        )
    nbformat.write(nb, path)
    return Path(path).name, time.perf_counter() - start


IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml", "image/gif")


def undescribed_figures(nb) -> list[str]:
    """Where ``nb`` (executed) has an image output without alt text: ``cell N, output M`` each.

    An image is described when its metadata has a non-empty ``alt`` and, if the output also has
    ``text/html`` (what the book shows), that HTML's every ``<img>`` has an ``alt`` too.
    """
    missing = []
    for n, cell in enumerate(nb["cells"]):
        for m, out in enumerate(cell.get("outputs", []) if cell["cell_type"] == "code" else []):
            data, meta = out.get("data", {}), out.get("metadata", {})
            for mime in (t for t in IMAGE_TYPES if t in data):
                alt = str(meta.get(mime, {}).get("alt", "")).strip()
                imgs = re.findall(r"<img\b[^>]*>", str(data.get("text/html", "")), re.IGNORECASE)
                if not alt or any(not re.search(r'\balt="[^"]+"', img) for img in imgs):
                    missing.append(f"cell {n}, output {m}")
                    break
    return missing


def drop_widgets(nb) -> None:
    """Remove ipywidgets views and their saved state: a static page cannot run them (the notebooks
    draw a static figure next to every widget)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [o for o in cell.outputs if WIDGET_VIEW not in o.get("data", {})]
    nb.metadata.pop("widgets", None)


# --- assembling and building ----------------------------------------------------------------------


def vendor_mathjax(dest: Path) -> None:
    """Copy the parts of MathJax the book serves into ``dest``; ``npm ci`` first if it is missing."""
    if not (MATHJAX / "tex-mml-chtml.js").is_file():
        npm = shutil.which("npm")
        if npm is None:
            raise BookError(f"{MATHJAX.relative_to(ROOT)} is missing and npm is not installed: run `npm ci`")
        print("npm ci (MathJax for the book)...", flush=True)
        proc = subprocess.run(
            [npm, "ci", "--no-audit", "--no-fund"], cwd=ROOT, capture_output=True, text=True
        )
        if proc.returncode != 0 or not (MATHJAX / "tex-mml-chtml.js").is_file():
            raise BookError(f"npm ci failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    for part in MATHJAX_PARTS:
        src, out = MATHJAX / part, dest / part
        out.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, out)
        else:
            shutil.copy2(src, out)


def inputs_digest() -> str:
    """A digest of everything the book is built from."""
    files = [Path(__file__), ROOT / "package-lock.json"]
    files += sorted(p for p in BOOK_SRC.rglob("*") if p.is_file())
    files += sorted(SOURCE_NB.glob("*.ipynb")) + sorted(SOURCE_PKG.rglob("*.py"))  # _internal/ too
    files += sorted((ROOT / "autograder").glob("*.py"))  # the visible check cases come from there
    h = hashlib.sha256()
    for f in files:
        if f.is_file():
            h.update(str(f.relative_to(ROOT)).encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()


def is_fresh(out: Path = OUT) -> bool:
    """Whether ``out`` holds a book built from the current inputs."""
    try:
        stamp = json.loads((out / STAMP_NAME).read_text())
    except (OSError, ValueError):
        return False
    return stamp.get("digest") == inputs_digest() and (out / "index.html").is_file()


def _last_timings(out: Path) -> dict[str, float]:
    try:
        stamp = json.loads((out / STAMP_NAME).read_text())
        return dict(stamp["seconds"]["execute_per_notebook"])
    except (OSError, ValueError, KeyError, TypeError):
        return {}


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).with_name("jupyter-book")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if found is None:
        raise BookError("jupyter-book is not installed: pip install -e '.[book]'")
    return [found]


def build(out: Path = OUT, notebooks: Path = SOURCE_NB, jobs: int = 2, keep_temp: bool = False) -> dict:
    """Build the book into ``out``; returns timings (seconds) and what went in."""
    sys.path.insert(0, str(ROOT))
    from autograder.reference import load_reference

    tasks = load_reference().tasks.TASKS
    sources = sorted(Path(notebooks).glob("*.ipynb"))
    if not sources:
        raise BookError(f"no notebooks in {notebooks}")
    t0 = time.perf_counter()
    tmp = Path(tempfile.mkdtemp(prefix="cnnlab-book-"))
    try:
        src = tmp / "src"
        shutil.copytree(BOOK_SRC, src, ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
        solved: list[str] = []
        for nb_path in sources:
            nb, ids = prepare_notebook(json.loads(nb_path.read_text()), tasks)
            solved += ids
            (src / nb_path.name).write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
        if notebooks == SOURCE_NB:
            missing = sorted(set(tasks) - set(solved))
            if missing:
                raise BookError(f"no check cell found for tasks {missing}: their solutions would be missing")
        vendor_mathjax(src / MATHJAX_STATIC / "mathjax")
        t_prep = time.perf_counter()

        print(f"executing {len(sources)} notebooks against the reference ({jobs} at a time)...", flush=True)
        timings: dict[str, float] = {}
        # Longest first (the last build's timings, else the biggest file): the slowest notebook
        # (05 trains a network) must not start last.
        last = _last_timings(out)
        order = sorted(sources, key=lambda p: (-last.get(p.name, 0.0), -p.stat().st_size))
        paths = [str(src / p.name) for p in order]
        refs = [str(ROOT / "solutions")] * len(paths)
        if jobs > 1:
            spawn = multiprocessing.get_context("spawn")  # no fork of this process's state into kernels
            with ProcessPoolExecutor(max_workers=jobs, mp_context=spawn) as pool:
                timings = dict(pool.map(execute_notebook, paths, refs))
        else:
            timings = dict(map(execute_notebook, paths, refs))
        timings = {p.name: timings[p.name] for p in sources}
        for name, secs in timings.items():
            print(f"  {name}: {secs:.1f} s")
        t_exec = time.perf_counter()

        print("jupyter-book build...", flush=True)
        cmd = [*_jupyter_book(), "build", str(src), "--path-output", str(tmp / "out"), "--builder", "html"]
        cmd += ["--warningiserror", "--keep-going"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise BookError(f"jupyter-book build failed:\n{proc.stdout[-6000:]}\n{proc.stderr[-6000:]}")
        t_sphinx = time.perf_counter()

        html = tmp / "out" / "_build" / "html"
        if out.exists():
            shutil.rmtree(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        shutil.copytree(html, out)
        info = {
            "digest": inputs_digest(),
            "notebooks": [p.stem for p in sources],
            "solutions": solved,
            "seconds": {
                "prepare": round(t_prep - t0, 1),
                "execute": round(t_exec - t_prep, 1),
                "execute_per_notebook": {k: round(v, 1) for k, v in timings.items()},
                "sphinx": round(t_sphinx - t_exec, 1),
                "total": round(time.perf_counter() - t0, 1),
            },
        }
        (out / STAMP_NAME).write_text(json.dumps(info, indent=1) + "\n")
        return info
    finally:
        if keep_temp:
            print(f"kept the book source in {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=OUT, help="output folder (default _build/book)")
    parser.add_argument("--notebooks", type=Path, default=SOURCE_NB, help="source notebooks folder")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="notebooks at a time")
    parser.add_argument("--if-stale", action="store_true", help="do nothing if the book is up to date")
    parser.add_argument("--keep-temp", action="store_true", help="keep the temporary book source")
    args = parser.parse_args(argv)
    out = args.out.resolve()
    if args.if_stale and args.notebooks.resolve() == SOURCE_NB and is_fresh(out):
        print(f"{out} is up to date")
        return 0
    try:
        info = build(out, args.notebooks.resolve(), args.jobs, args.keep_temp)
    except BookError as err:
        print(f"make book: {err}", file=sys.stderr)
        return 1
    s = info["seconds"]
    print(
        f"built the book into {out} in {s['total']:.0f} s "
        f"(execute {s['execute']:.0f} s, jupyter-book {s['sphinx']:.0f} s): open {out / 'index.html'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
