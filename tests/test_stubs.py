"""The task tests against the generated student stubs: each fails with its own task's message.

Runs ``pytest --impl=student`` on the task test files in a subprocess (where ``import cnnlab``
is the generated release) and reads the JUnit report: every test marked ``taskX_Y`` must fail
with ``NotImplementedError: Task X.Y: ...``, and every unmarked test (provided code) must pass.
"""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: The provided code's tests that must pass against the stubs (it calls no task function).
PROVIDED_TEST_FILES = ["tests/test_equivariance.py", "tests/test_gradcheck.py"]


def _is_task_test_file(path: Path) -> bool:
    """A file of task tests: its tests take the ``cn`` fixture (the cnnlab under test) and carry a
    task marker (``@pytest.mark.task2_1``, or a ``pytestmark`` of one)."""
    text = path.read_text()
    return re.search(r"\bdef test_\w+\([^)]*\bcn\b", text) is not None and "mark.task" in text


#: Every task test file, and the provided code's tests: derived, so a new task's tests join by their marker.
TASK_TEST_FILES = [
    f"tests/{p.name}" for p in sorted((ROOT / "tests").glob("test_*.py")) if _is_task_test_file(p)
] + PROVIDED_TEST_FILES


@pytest.mark.slow
def test_every_task_test_fails_on_the_stubs_with_its_task(tmp_path):
    report = tmp_path / "junit.xml"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            *TASK_TEST_FILES,
            "--impl=student",
            "-q",
            "-p",
            "no:cacheprovider",
            f"--junitxml={report}",
            "-o",
            "junit_family=xunit1",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    cases = ET.parse(report).getroot().iter("testcase")
    from conftest import TASKS

    by_marker = {t.marker: t for t in TASKS.values()}
    seen_tasks, passed_provided = set(), 0
    for case in cases:
        name = f"{case.get('classname')}::{case.get('name')}"
        failure = case.find("failure") if case.find("failure") is not None else case.find("error")
        task = _task_of(case, by_marker)
        if task is None:
            assert failure is None, f"{name}: provided code must work without any task:\n{failure.text}"
            passed_provided += 1
            continue
        assert failure is not None, f"{name} passed against the stubs: it cannot fail"
        text = (failure.get("message") or "") + (failure.text or "")
        expected = f"NotImplementedError: Task {task.id}: implement {task.function} in {task.path}"
        assert expected in text, f"{name} failed, but not with '{expected}':\n{text[-800:]}"
        seen_tasks.add(task.id)
    assert seen_tasks == set(TASKS), f"tasks without tests: {set(TASKS) - seen_tasks}"
    assert passed_provided > 10


def _task_of(case, by_marker):
    """The task a test case belongs to, from the marker recorded in its properties."""
    for prop in case.iter("property"):
        if prop.get("name") == "task":
            return by_marker[prop.get("value")]
    return None
