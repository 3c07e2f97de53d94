"""The graders' one import for grading a task: the hidden cases, grading isolation and scoring.

Each idea has its own module: the hidden cases :mod:`autograder.inputs`, isolation
:mod:`autograder.isolation`, scoring :mod:`autograder.scoring`; this module names them together for
the two graders (:mod:`autograder.hidden` and :mod:`autograder.batch`).
"""

from __future__ import annotations

from autograder.inputs import VISIBLE_SEED, Case, task_inputs, task_rng
from autograder.isolation import ISOLATED_MODULES, restored_functions
from autograder.scoring import (
    MAX_MESSAGES,
    TASK_IDS,
    CaseRun,
    GradeResult,
    clamp_points,
    describe_cache,
    expected_outcome,
    grade_runs,
    missing_function_result,
    mistake_messages,
    n_passed,
    own_cache_outcome,
    run,
    stopped_message,
    task_function,
    task_module,
    task_report,
    variant_outcomes,
    verdicts_module,
)

__all__ = [
    "ISOLATED_MODULES",
    "MAX_MESSAGES",
    "TASK_IDS",
    "VISIBLE_SEED",
    "Case",
    "CaseRun",
    "GradeResult",
    "clamp_points",
    "describe_cache",
    "expected_outcome",
    "grade_runs",
    "missing_function_result",
    "mistake_messages",
    "n_passed",
    "own_cache_outcome",
    "restored_functions",
    "run",
    "stopped_message",
    "task_function",
    "task_inputs",
    "task_module",
    "task_report",
    "task_rng",
    "variant_outcomes",
    "verdicts_module",
]
