"""Shared fixtures: which cnnlab is under test, and the task markers.

``pytest --impl=student`` (the default) tests ``import cnnlab``: the student's package.
``pytest --impl=reference`` tests the reference in ``solutions/cnnlab`` (what ``make test`` does).
Each task's tests carry its marker: ``pytest -m task2_1`` runs exactly the tests of Task 2.1.
"""

from __future__ import annotations

import importlib

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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Record each test's task in its report properties (read by tests/test_stubs.py)."""
    markers = {t.marker for t in TASKS.values()}
    for item in items:
        for mark in item.iter_markers():
            if mark.name in markers:
                item.user_properties.append(("task", mark.name))
