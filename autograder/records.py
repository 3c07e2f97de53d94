"""The grader's records, typed: the status of a task and the result rows the batch grader saves.

Rows stay plain JSON on disk (``results/<student>.json``), so they are ``TypedDict``s: the keys
below are the whole vocabulary, checked by a type checker, and a saved row reads back as it was.
"""

from __future__ import annotations

from enum import StrEnum
from typing import TypedDict


class Status(StrEnum):
    """What happened to one task (a ``str``: it is saved as its value)."""

    OK = "ok"  # every case ran (right or wrong)
    MISSING = "missing"  # the task's function is not in the student's module
    IMPORT_ERROR = "import_error"  # the student's package does not import
    MEMORY = "memory"  # the memory limit was hit
    TIMEOUT = "timeout"  # the submission's time limit ran out
    BUDGET = "budget"  # the task's case budget ran out (cases left unrun)
    CRASHED = "crashed"  # the child ended (os._exit, a crash, the disk limit)
    PROTOCOL = "protocol"  # the child sent output the grader cannot read
    GRADER = "grader"  # the grader's own failure: not saved, retried by the next run
    REJECTED = "rejected"  # nothing to grade (a refused zip)


class TaskResult(TypedDict):
    """One task of one submission."""

    function: str
    points: float
    max: float
    passed: int
    total: int
    status: str  # a Status value
    summary: str  # a few words for the CSV's reason column; "" with full marks
    messages: list[str]  # the diagnoses shown to the student
    mistakes: list[str]  # ids of the named mistakes recognised (autograder/mistakes.py)
    report: list[str]  # the lines of the check cell's output (as nbgrader's grade_task prints them)
    seconds: float
    error: str | None


class SubmissionResult(TypedDict, total=False):
    """One submission: what is saved, what the reports and the gradebook read."""

    student: str
    assignment: str
    key: str  # the cache key (autograder/batch/store.py)
    grader: str
    problems: list[str]  # notes on the submission (missing files, notebooks, the zip)
    tasks: dict[str, TaskResult]
    grader_error: str | None
    timestamp: str | None
    time_source: str
    sandbox: dict[str, object]
    total: float
    max_total: float
    reason: str
    seconds: float
    late_seconds: float
    penalty: float
    score: float
    cache_parts: dict[str, str]  # the parts of the key shared by the batch (to say why it regrades)
