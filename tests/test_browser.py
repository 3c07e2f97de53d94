"""The student's path through JupyterLab, in a real browser.

A temporary copy of the student release (``cnnlab/`` and ``notebooks/*.ipynb`` side by side, as a
student's folder is) is opened in JupyterLab, started on 127.0.0.1 with isolated Jupyter config and
runtime folders, and driven through the UI by Playwright in headless Chromium (Debian's ``chromium``):

1. Run > Run All Cells on the stubs: the run stops at the first task's check cell, which shows that
   task's own ``NotImplementedError("Task 1.1: implement conv_output_size in cnnlab/conv.py")``; the
   next task's check cell, run on its own (Shift+Enter), shows its own message. The kernel imports the
   temporary copy's ``cnnlab``, not the repository's.
2. The reference goes into the copy (``solutions/cnnlab/*.py`` over ``cnnlab/``); Kernel > Restart
   Kernel and Run All Cells: every check cell prints its success line and has no error output, and the
   figures are rendered as images.
3. nbgrader's Validate button (its lab extension, as the project's ``jupyter-config/`` sets it up for
   ``make lab``): "Success!".

Screenshots of each step go to ``$TMPDIR/cnnlab-screenshots/``; on a failure, a screenshot and the
server log go to a temporary folder named in the failure message.

Skipped when Playwright or Chromium is missing (``apt-get install chromium``; never ``playwright install``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from chromium import (
    CHROMIUM_ARGS,
    SCREENSHOTS,
    chromium_path,
    evidence_on_failure,
    offline_page,
    wait_for_server,
)

from autograder.reference import load_reference

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK = "01_convolution"
TASKS = [t for t in load_reference().tasks.TASKS.values() if t.notebook == NOTEBOOK]
TIMEOUT_MS = 60_000  # one UI step
RUN_TIMEOUT_MS = 240_000  # a whole notebook run, or a validation


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def sync_api():
    return pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install playwright)"
    )


@pytest.fixture(scope="module")
def student_dir(tmp_path_factory) -> Path:
    """A student's folder: the released ``cnnlab/`` and notebooks side by side."""
    if not (ROOT / "notebooks" / f"{NOTEBOOK}.ipynb").exists():
        pytest.fail(f"notebooks/{NOTEBOOK}.ipynb is missing: run `make release`")
    work = tmp_path_factory.mktemp("student")
    shutil.copytree(ROOT / "cnnlab", work / "cnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        shutil.copy2(nb, work / nb.name)
    return work


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


@pytest.fixture(scope="module")
def jupyterlab(student_dir, tmp_path_factory, sync_api):
    """JupyterLab on 127.0.0.1, no token, isolated config; yields (base URL, log file)."""
    chromium_path()  # skip before starting a server that nobody would look at
    home = tmp_path_factory.mktemp("jupyter")
    config = home / "config"
    # The student's Lab as `make lab` configures it: the project's jupyter-config/ (nbgrader's Validate
    # on, its instructor tools and the news off) on JUPYTER_CONFIG_PATH, an empty user config besides.
    # Every cell in the DOM (no windowing), so that the test can read any cell's output.
    _write_json(
        config
        / "lab"
        / "user-settings"
        / "@jupyterlab"
        / "notebook-extension"
        / "tracker.jupyterlab-settings",
        {"windowingMode": "none"},
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "MPLBACKEND", "NBGRADER_EXECUTION")}
    env.update(
        JUPYTER_CONFIG_PATH=str(ROOT / "jupyter-config"),
        JUPYTER_CONFIG_DIR=str(config),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        JUPYTER_DATA_DIR=str(home / "data"),
        IPYTHONDIR=str(home / "ipython"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "jupyterlab",
        "--ServerApp.ip=127.0.0.1",
        f"--ServerApp.port={port}",
        "--ServerApp.port_retries=0",
        "--ServerApp.open_browser=False",
        f"--ServerApp.root_dir={student_dir}",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        "--LabApp.news_url=",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
        "--LabApp.expose_app_in_browser=True",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    log = home / "jupyterlab.log"
    with open(log, "w") as log_file:
        proc = subprocess.Popen(cmd, cwd=student_dir, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(proc, base, log, 90, "JupyterLab")
        yield base, log
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def page(sync_api, jupyterlab):
    base, _ = jupyterlab
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True)
        context, page = offline_page(
            browser, (base + "/", "data:"), {"width": 1400, "height": 1000}, TIMEOUT_MS
        )
        yield page
        context.close()
        browser.close()


def _snapshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / name))


# --- the UI ---------------------------------------------------------------------------------------


def _menu(page, menu: str, item: str) -> None:
    """Click ``menu`` in the main menu bar, then its item whose label starts with ``item``."""
    page.locator("#jp-MainMenu .lm-MenuBar-item", has_text=re.compile(rf"^{re.escape(menu)}$")).click()
    label = page.locator(".lm-Menu-itemLabel", has_text=re.compile(rf"^{re.escape(item)}"))
    page.locator(".lm-Menu .lm-Menu-item").filter(has=label).click()


KERNEL_IDLE_JS = """() => {
    const panel = window.jupyterapp && window.jupyterapp.shell.currentWidget;
    const kernel = panel && panel.sessionContext && panel.sessionContext.session
        && panel.sessionContext.session.kernel;
    return !!(kernel && panel.context.isReady && kernel.connectionStatus === 'connected'
        && kernel.status === 'idle');
}"""


def _kernel_idle(page) -> None:
    """Wait until the notebook is loaded and its kernel is connected and idle."""
    page.wait_for_function(KERNEL_IDLE_JS, timeout=RUN_TIMEOUT_MS)


def _code_cells(page):
    return page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-CodeCell")


def _check_cell(page, task):
    """The check cell of ``task``: the code cell whose source starts ``# Check Task X.Y``."""
    return _code_cells(page).filter(has=page.locator(".jp-InputArea", has_text=f"# Check Task {task.id}:"))


def _prompts(page) -> list[str]:
    return _code_cells(page).locator(".jp-InputArea-prompt").all_inner_texts()


def _run(page, start) -> None:
    """``start()`` a run of cells, then wait until it is over: the cells' prompts changed (a cell that
    ran has a new execution count, even one that ran too fast for its ``[*]`` to be seen), none is
    queued any more, and the kernel is idle. A run stops at the first error."""
    prompts = """() => [...document.querySelectorAll('.jp-NotebookPanel:not(.lm-mod-hidden) .jp-CodeCell '
        + '.jp-InputArea-prompt')].map(p => p.innerText).join('|')"""
    before = page.evaluate(prompts)
    start()
    page.wait_for_function(
        "([idle, prompts, before]) => { const now = eval(prompts)();"
        " return now !== before && !now.includes('*') && eval(idle)(); }",
        arg=[KERNEL_IDLE_JS, prompts, before],
        timeout=RUN_TIMEOUT_MS,
    )


def _kernel_says(page, code: str) -> str:
    """What ``code`` prints in the notebook's kernel (run aside, not in a cell)."""
    return page.evaluate(
        """async (code) => {
            const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
            const future = kernel.requestExecute({code, silent: false, store_history: false});
            let out = '';
            future.onIOPub = msg => {
                if (msg.header.msg_type === 'stream') out += msg.content.text;
                if (msg.header.msg_type === 'error') out += msg.content.ename + ': ' + msg.content.evalue;
            };
            await future.done;
            return out;
        }""",
        code,
    )


def _errors(cell) -> list[str]:
    return cell.locator(
        '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]'
    ).all_inner_texts()


# --- the test -------------------------------------------------------------------------------------


def test_student_path_in_jupyterlab(page, jupyterlab, student_dir):
    base, log = jupyterlab
    with evidence_on_failure(page, log):
        _student_path(page, base, student_dir)


def _student_path(page, base: str, student_dir: Path) -> None:
    first, second = TASKS[0], TASKS[1]
    page.goto(f"{base}/lab/tree/{NOTEBOOK}.ipynb?reset")
    _kernel_idle(page)
    _check_cell(page, first).wait_for()
    for task in TASKS:
        assert _check_cell(page, task).count() == 1, f"not one check cell for Task {task.id}"
    assert page.locator(".validate-button").count() == 1, "nbgrader's Validate button is not in the toolbar"

    # 1. The stubs: Run All stops at the first task's check cell, with that task's own message.
    _run(page, lambda: _menu(page, "Run", "Run All Cells"))
    cell = _check_cell(page, first)
    errors = _errors(cell)
    message = f"Task {first.id}: implement {first.function} in {first.path}"
    assert errors and "NotImplementedError" in errors[0] and message in errors[0], (
        f"the check cell of Task {first.id} shows {errors!r}, not the stub's {message!r}"
    )
    before = _code_cells(page).evaluate_all(
        """(cells, marker) => {
            const i = cells.findIndex(c => c.querySelector('.jp-InputArea').innerText.includes(marker));
            return cells.slice(0, i).filter(c => c.querySelector(
                '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]')).length;
        }""",
        f"# Check Task {first.id}:",
    )
    assert before == 0, f"{before} cells before the check cell of Task {first.id} failed"
    where = _kernel_says(page, "import cnnlab, os; print(os.path.realpath(cnnlab.__file__))").strip()
    assert where == str((student_dir / "cnnlab" / "__init__.py").resolve()), f"the kernel imports {where}"
    cell.scroll_into_view_if_needed()
    _snapshot(page, "lab-1-stub-error.png")

    # The next task's check cell, run on its own, names its own task.
    cell = _check_cell(page, second)
    cell.locator(".jp-InputArea-prompt").click()  # select the cell
    page.keyboard.press("Shift+Enter")
    cell.locator('.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]').first.wait_for()
    _kernel_idle(page)
    message = f"Task {second.id}: implement {second.function} in {second.path}"
    errors = _errors(cell)
    assert "NotImplementedError" in errors[0] and message in errors[0], f"Task {second.id}: {errors!r}"

    # 2. The reference in the student's copy: restart and run all; every check passes, figures render.
    for src in (ROOT / "solutions" / "cnnlab").glob("*.py"):
        shutil.copy2(src, student_dir / "cnnlab" / src.name)

    def restart_and_run_all() -> None:
        _menu(page, "Kernel", "Restart Kernel and Run All Cells")
        page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()  # "Restart"

    _run(page, restart_and_run_all)
    for task in TASKS:
        cell = _check_cell(page, task)
        text = cell.locator(".jp-OutputArea").inner_text()
        assert re.search(rf"Task {re.escape(task.id)} {task.function}: all \d+ checks passed", text), (
            f"the check cell of Task {task.id} shows ...{text[-800:]!r}"
        )
        assert not _errors(cell), f"the check cell of Task {task.id} has error output: {_errors(cell)}"
    failed = [p for p in _prompts(page) if not re.search(r"\[\d+\]", p)]
    assert not failed, f"cells that did not run: {failed}"
    images = page.locator(".jp-NotebookPanel:visible .jp-OutputArea-output img")
    assert images.count() > 0, "no figure was rendered"
    widths = images.evaluate_all("imgs => imgs.map(i => i.naturalWidth)")
    assert all(w > 0 for w in widths), f"figures that did not load: {widths}"
    assert _check_cell(page, first).locator(".jp-OutputArea-output").count() > 0
    _check_cell(page, second).evaluate("cell => cell.scrollIntoView({block: 'start'})")
    _snapshot(page, "lab-2-reference-passes.png")

    # 3. nbgrader's Validate button: success for the reference.
    page.locator(".validate-button").click()
    dialog = page.locator(".jp-Dialog .jp-Dialog-content")  # the verdict, or an error
    dialog.wait_for(timeout=RUN_TIMEOUT_MS)
    verdict = dialog.inner_text()
    _snapshot(page, "lab-3-validate.png")
    assert "Success! Your notebook passes all the tests." in verdict, f"Validate says: {verdict!r}"
    page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
    assert not page.blocked, f"JupyterLab asked for outside resources: {page.blocked}"
