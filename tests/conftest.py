"""Shared fixtures: which cnnlab is under test, and the task markers.

``pytest --impl=student`` (the default) tests ``import cnnlab``: the student's package.
``pytest --impl=reference`` tests the reference in ``solutions/cnnlab`` (what ``make test`` does).
Each task's tests carry its marker: ``pytest -m task2_1`` runs exactly the tests of Task 2.1.
"""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

from autograder.reference import load_reference

TASKS = load_reference().tasks.TASKS


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--impl",
        choices=("student", "reference"),
        default="student",
        help="which cnnlab the task tests exercise: the student's package (default) or the reference",
    )


def pytest_configure(config: pytest.Config) -> None:
    for task in TASKS.values():
        config.addinivalue_line("markers", f"{task.marker}: tests of Task {task.id} ({task.function})")
    config.addinivalue_line("markers", "slow: end-to-end tests that take more than a few seconds")
    config.addinivalue_line("markers", "browser: tests that drive a real browser (Chromium)")


@pytest.fixture(scope="session")
def cn(request: pytest.FixtureRequest):
    """The cnnlab package under test (see ``--impl``)."""
    if request.config.getoption("--impl") == "reference":
        return load_reference()
    return importlib.import_module("cnnlab")


#: the test files that take longest (from ``make test``'s ``--durations``, measured side by side on 2
#: cores), longest first. ``make test`` runs them first (``--dist loadfile --no-loadscope-reorder``),
#: and the many short files fill the gaps at the end, so that both workers finish together; by
#: default xdist would start the files with the most tests first, and a file of one long test (the
#: hub's) last. A file missing here only runs later; nothing else depends on this order.
LONGEST_FIRST = (
    "test_big_class.py",
    "test_nbgrader.py",
    "test_book.py",
    "test_hub.py",
    "test_sandbox_attacks.py",
    "test_browser.py",
    "test_batch.py",
    "test_browser_student.py",
    "test_notebooks.py",
    "test_book_kernels.py",
    "test_hostile_class.py",
    "test_both_graders.py",
    "test_bundle.py",
    "test_stubs.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The longest test files first (:data:`LONGEST_FIRST`; a stable sort: the tests of a file, and
    the other files, keep their order), and each test's task in its report properties (read by
    tests/test_stubs.py)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
    markers = {t.marker for t in TASKS.values()}
    for item in items:
        for mark in item.iter_markers():
            if mark.name in markers:
                item.user_properties.append(("task", mark.name))


def _task_markers_selected(config: pytest.Config) -> set[str] | None:
    """The task markers of a ``-m`` expression made only of task markers joined by ``or`` (e.g.
    ``task1_2`` or ``task2_1 or task2_2``), else None."""
    expr = (config.getoption("markexpr") or "").strip()
    words = re.findall(r"\w+", expr)
    markers = {t.marker for t in TASKS.values()}
    names = [w for w in words if w != "or"]
    if not names or not set(names) <= markers or re.search(r"[^\w\s]", expr):
        return None
    return set(names)


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """``pytest -m task1_2`` collects only the test files that carry that marker: importing the whole
    suite (notebooks, nbgrader, the batch grader, Dask) takes most of the time of a student's run."""
    selected = _task_markers_selected(config)
    if selected is None or collection_path.suffix != ".py" or not collection_path.name.startswith("test_"):
        return None
    text = collection_path.read_text()
    if any(re.search(rf"mark\.{m}\b", text) for m in selected):
        return None
    return True
