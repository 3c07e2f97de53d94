"""cnnlab's hidden grading inside Otter-Grader: the support file of the benchmark's Otter autograder.

``benchmarks/otter_bench.py`` ships this file in the autograder zip (Otter copies it into the
submission folder, where the notebook's kernel runs). Each generated test case of a task calls
:func:`earns`, which grades the task once per kernel with the course's own hidden grading,
:func:`autograder.hidden.grade_task` (what nbgrader's hidden cells call), on the student's seed from
nbgrader's secret, so that both graders draw the same cases and the points can be compared.

Otter scores a test file as the sum of the points of its passed cases; a case's points are fixed in
the test file. A task's points, 0 to its maximum in steps of 0.01 (``grade_task`` rounds to two
decimals), are therefore written as cases worth 0.01, 0.02, 0.04, ... (:func:`cent_weights`, at most
a dozen per task): the cases that pass are the ones whose weights add up to the task's points
(:func:`earned_cases`), so Otter's score of the file is exactly ``grade_task``'s points.

Environment (set by the benchmark's driver, inherited by Otter's kernel): ``CNNLAB_OTTER_REPO`` (the
project, appended at the end of ``sys.path`` so that the student's ``cnnlab`` in the working
directory still wins), ``CNNLAB_OTTER_STUDENT`` (the student id), ``CNNLAB_COURSE_ROOT`` and
``CNNLAB_NBGRADER_SECRET`` (nbgrader's secret, see ``autograder/secret.py``).

Only the standard library at import time: the build imports it too, in the project's own Python.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys

REPO_ENV = "CNNLAB_OTTER_REPO"
STUDENT_ENV = "CNNLAB_OTTER_STUDENT"

_cents: dict[str, int] = {}  # task id -> the points grade_task gave, in hundredths (one grading a kernel)
reports: dict[str, str] = {}  # task id -> what grade_task printed


def cent_weights(total_cents: int) -> list[int]:
    """Weights (in hundredths of a point) whose subsets make every whole number from 0 to
    ``total_cents``: 1, 2, 4, ... while their sum stays within the total, then the remainder.

    >>> cent_weights(500)
    [1, 2, 4, 8, 16, 32, 64, 128, 245]
    """
    if total_cents < 0:
        raise ValueError(f"total_cents must be >= 0, got {total_cents}")
    weights: list[int] = []
    power = 1
    while sum(weights) + power <= total_cents:
        weights.append(power)
        power *= 2
    if sum(weights) < total_cents:
        weights.append(total_cents - sum(weights))
    return weights


def earned_cases(cents: int, weights: list[int]) -> set[int]:
    """Indexes of ``weights`` (from :func:`cent_weights`) that add up to ``cents``.

    The powers of two alone make every number up to their sum ``S``; above it the remainder ``r``
    (the last weight, less than the next power of two) is taken and ``cents - r`` is at most ``S``.

    >>> sorted(earned_cases(300, cent_weights(500)))  # 245 + 32 + 16 + 4 + 2 + 1
    [0, 1, 2, 4, 5, 8]
    """
    if not 0 <= cents <= sum(weights):
        raise ValueError(f"cents must be in [0, {sum(weights)}], got {cents}")
    powers = [i for i, w in enumerate(weights) if w == 1 << i]
    chosen: set[int] = set()
    if cents > sum(weights[i] for i in powers):
        last = len(weights) - 1
        chosen.add(last)
        cents -= weights[last]
    chosen.update(i for i in powers if cents & weights[i])
    return chosen


def task_cents(task_id: str) -> int:
    """The student's points on ``task_id`` in hundredths, graded once in this kernel by the course's
    ``grade_task`` (it never raises; its report is kept in :data:`reports`)."""
    if task_id not in _cents:
        repo = os.environ[REPO_ENV]
        if repo not in sys.path:
            sys.path.append(repo)  # at the end: the student's cnnlab (working directory) comes first
        from autograder import hidden, secret

        seed = secret.student_seed(
            secret.course_secret(os.environ["CNNLAB_COURSE_ROOT"], "nbgrader"),
            os.environ[STUDENT_ENV],
            task_id,
        )
        report = io.StringIO()
        with contextlib.redirect_stdout(report):  # a doctest's output must be just its value
            _cents[task_id] = round(100 * hidden.grade_task(task_id, seed))
        reports[task_id] = report.getvalue()
    return _cents[task_id]


def earns(task_id: str, total_cents: int, index: int) -> bool:
    """Whether the test case ``index`` of ``task_id`` (worth ``cent_weights(total_cents)[index]``
    hundredths) is among those that add up to the student's points."""
    return index in earned_cases(task_cents(task_id), cent_weights(total_cents))
