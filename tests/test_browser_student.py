"""The student's path as the README tells it, in a browser: ``make lab``, notebook 01, ``cnnlab/conv.py``.

In a copy of the course (``student_lab.py``: what a clone holds, with this virtualenv) ``make lab`` starts
JupyterLab, with an empty ``~/.jupyter`` so that everything a student sees comes from the project.
Headless Chromium (Debian's ``chromium``, driven by Playwright) then does what a new student does:

1. opens ``01_convolution.ipynb`` from the file browser, where ``cnnlab`` sits next to the notebooks;
   nbgrader's Validate button is there, its instructor plugins and JupyterLab's news are not;
2. runs Task 1.1's check cell alone (not the first cell, so no ``%autoreload``): the stub's
   ``NotImplementedError`` naming ``cnnlab/conv.py``;
3. opens ``cnnlab/conv.py`` from the file browser, writes Task 1.1 (the reference's body, put into the
   editor's document as a paste would) and saves it with Ctrl+S;
4. runs the check cell again: it passes, the kernel never restarted;
5. Validate: fails, on Task 1.2 first; writes Task 1.2 and the notebook's other tasks the same way,
   their checks pass;
6. Validate: "Success!".

Screenshots of each step go to ``$TMPDIR/cnnlab-screenshots/student-*.png``; on a failure a screenshot
and the server log go to a temporary folder named in the message. Skipped without Playwright or Chromium.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from chromium import CHROMIUM_ARGS, SCREENSHOTS, chromium_path, evidence_on_failure, offline_page
from student_lab import ROOT, make_lab, student_copy, write_json
from test_browser import KERNEL_IDLE_JS, RUN_TIMEOUT_MS, TIMEOUT_MS, _check_cell, _errors, _run

from autograder.reference import load_reference

pytestmark = [pytest.mark.browser, pytest.mark.slow]

TASKS = load_reference().tasks.TASKS
HIDDEN_PLUGINS = [
    "@jupyter/nbgrader:formgrader",
    "@jupyter/nbgrader:create-assignment",
    "@jupyter/nbgrader:course-list",
    "@jupyterlab/apputils-extension:announcements",
]


@pytest.fixture(scope="module")
def sync_api():
    return pytest.importorskip(
        "playwright.sync_api", reason="Playwright is not installed (pip install playwright)"
    )


@pytest.fixture(scope="module")
def lab(tmp_path_factory, sync_api):
    chromium_path()  # skip before starting a server nobody would look at
    course = student_copy(tmp_path_factory.mktemp("clone"))
    home = tmp_path_factory.mktemp("jupyter-home")
    # every cell in the DOM (no windowing), so that the test can read any cell's output
    write_json(
        home
        / "config"
        / "lab"
        / "user-settings"
        / "@jupyterlab"
        / "notebook-extension"
        / "tracker.jupyterlab-settings",
        {"windowingMode": "none"},
    )
    with make_lab(course, home, ["--LabApp.expose_app_in_browser=True"]) as (base, log):
        yield base, course, log


@pytest.fixture(scope="module")
def page(sync_api, lab):
    base = lab[0]
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


def _solution(function: str) -> str:
    """The reference's body of ``function`` (between the solution markers), as the student writes it."""
    lines = (ROOT / "solutions" / "cnnlab" / "conv.py").read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if line.startswith(f"def {function}("))
    begin = next(i for i in range(start, len(lines)) if "### BEGIN SOLUTION" in lines[i])
    end = next(i for i in range(begin, len(lines)) if "### END SOLUTION" in lines[i])
    return "".join(lines[begin + 1 : end])


def _open_in_file_browser(page, *names: str) -> None:
    """Double-click each name in turn in the file browser (folders, then the file)."""
    for name in names:
        item = page.locator(
            ".jp-DirListing-item",
            has=page.locator(".jp-DirListing-itemText", has_text=re.compile(rf"^{re.escape(name)}$")),
        )
        item.dblclick()


def _activate_tab(page, title: str) -> None:
    page.locator(".lm-DockPanel .lm-TabBar-tab", has_text=title).first.click()


def _write_task(page, course: Path, task) -> None:
    """In the open ``conv.py`` editor: the task's TODO and raise replaced by its body; Ctrl+S."""
    tid = re.escape(task.id)
    stub = re.compile(
        rf"[ \t]*# TODO: Task {tid} .*\n[ \t]*raise NotImplementedError\(\"Task {tid}: .*\"\)\n"
    )
    _activate_tab(page, "conv.py")
    source = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.content.model.sharedModel.getSource()"
    )
    assert len(stub.findall(source)) == 1, f"the stub of Task {task.id} is not in the editor"
    fixed = stub.sub(lambda _: _solution(task.function), source)
    page.evaluate(
        "(text) => window.jupyterapp.shell.currentWidget.content.model.sharedModel.setSource(text)", fixed
    )
    page.locator(".jp-FileEditor:visible .cm-content").click()
    page.keyboard.press("Control+s")
    path = course / "cnnlab" / "conv.py"
    deadline = time.monotonic() + TIMEOUT_MS / 1000
    while path.read_text() != fixed:  # the save reaches the disk
        assert time.monotonic() < deadline, f"conv.py was not saved: {path.read_text()[:200]!r}"
        page.wait_for_timeout(200)


def _run_check(page, task) -> str:
    """Run ``task``'s check cell alone (select it, Shift+Enter); its output text."""
    _activate_tab(page, "01_convolution.ipynb")
    cell = _check_cell(page, task)
    cell.scroll_into_view_if_needed()

    def start() -> None:
        cell.locator(".jp-InputArea-prompt").click()
        page.keyboard.press("Shift+Enter")

    _run(page, start)
    return cell.locator(".jp-OutputArea").inner_text()


def _validate(page) -> str:
    _activate_tab(page, "01_convolution.ipynb")
    page.locator(".jp-NotebookPanel:visible .validate-button").click()
    dialog = page.locator(".jp-Dialog .jp-Dialog-content")
    dialog.wait_for(timeout=RUN_TIMEOUT_MS)
    return dialog.inner_text()


def _close_dialog(page) -> None:
    page.locator(".jp-Dialog .jp-Dialog-button.jp-mod-accept").click()
    page.locator(".jp-Dialog").wait_for(state="detached")


def test_student_path_from_make_lab(page, lab):
    base, course, log = lab
    with evidence_on_failure(page, log, "cnnlab-student-failure-"):
        _student_path(page, base, course)


def _student_path(page, base: str, course: Path) -> None:
    first, second, *more = [t for t in TASKS.values() if t.notebook == "01_convolution"]  # 1.1, 1.2, ...

    # 1. make lab's file browser: the notebooks and cnnlab side by side; open notebook 01.
    page.goto(f"{base}/lab?reset")
    listing = page.locator(".jp-DirListing-content")
    listing.locator(".jp-DirListing-itemText", has_text="01_convolution.ipynb").wait_for()
    names = listing.locator(".jp-DirListing-itemText").all_inner_texts()
    assert "cnnlab" in names and "01_convolution.ipynb" in names, names
    _snapshot(page, "student-1-make-lab.png")
    _open_in_file_browser(page, "01_convolution.ipynb")
    page.wait_for_function(KERNEL_IDLE_JS, timeout=RUN_TIMEOUT_MS)
    assert page.locator(".jp-NotebookPanel:visible .validate-button").count() == 1, "no Validate button"
    active = page.evaluate(
        "(ids) => ids.filter(id => jupyterapp.hasPlugin(id) && jupyterapp.isPluginActivated(id))",
        HIDDEN_PLUGINS,
    )
    assert not active, f"plugins a student should not have: {active}"
    assert page.locator("#jp-MainMenu .lm-MenuBar-item", has_text="Nbgrader").count() == 0

    # 2. Task 1.1's check cell on its own, on the stub.
    text = _run_check(page, first)
    message = f"Task {first.id}: implement {first.function} in {first.path}"
    errors = _errors(_check_cell(page, first))
    assert errors and "NotImplementedError" in errors[0] and message in errors[0], errors or text
    assert "run_checks" not in errors[0], f"the traceback shows the checks' internals: {errors[0]}"
    _snapshot(page, "student-2-stub.png")

    # 3. cnnlab/conv.py from the file browser; write Task 1.1 and save.
    _open_in_file_browser(page, "cnnlab", "conv.py")
    page.locator(".jp-FileEditor:visible").wait_for()
    _write_task(page, course, first)
    _snapshot(page, "student-3-conv-py.png")

    # 4. The same check cell again, same kernel: it runs the saved file and passes.
    text = _run_check(page, first)
    assert re.search(rf"Task {re.escape(first.id)} {first.function}: all \d+ checks passed", text), text
    assert not _errors(_check_cell(page, first))
    _snapshot(page, "student-4-check-passes.png")

    # 5. Validate: only Task 1.2 is left; write it, its check passes.
    verdict = _validate(page)
    _snapshot(page, "student-5-validate-task-1-2-left.png")
    assert "Success!" not in verdict and f"Task {second.id}" in verdict, verdict
    assert f"Task {first.id}: implement" not in verdict, verdict
    _close_dialog(page)
    for task in (second, *more):  # the notebook's other tasks, the same way
        _activate_tab(page, "conv.py")
        _write_task(page, course, task)
        text = _run_check(page, task)
        assert re.search(rf"Task {re.escape(task.id)} {task.function}: all \d+ checks passed", text), text

    # 6. Validate: success.
    verdict = _validate(page)
    _snapshot(page, "student-6-validate-success.png")
    assert "Success! Your notebook passes all the tests." in verdict, f"Validate says: {verdict!r}"
    _close_dialog(page)

    # 7. The task text's link to the file opens it in the Lab (cnnlab/ is next to the notebook).
    _activate_tab(page, "01_convolution.ipynb")
    heading = page.locator(
        ".jp-NotebookPanel:visible .jp-MarkdownCell", has_text=f"Task {second.id}: {second.function}"
    )
    link = heading.locator("a", has_text=second.path).first
    link.scroll_into_view_if_needed()
    link.click()
    page.wait_for_function("() => jupyterapp.shell.currentWidget.title.label === 'conv.py'")
    assert not page.blocked, f"JupyterLab asked for outside resources: {page.blocked}"
