"""Partial credit per part: the rule both graders apply to tasks whose result has several parts.

A backward pass returns ``dx, dw, db``; a residual block's backward ``dx`` and four gradients;
``layer_shapes`` the shapes and the parameter counts (the parts of ``cnnlab/_internal/tasks.py``'s table,
``verdicts.PARTS``). The rule:

* every hidden case of a task is worth the same share of the task's points;
* within a case, each part of the result is worth an equal share of the case: a part is right when
  it matches the reference's part (``verdicts.compare_values``, tolerance ``verdicts.RTOL``);
* a case earns nothing when the call raised (or should have raised and did not), returned a
  malformed result (not the documented tuple), or wrote into its inputs;
* a task with one part: a case is right or wrong, as before.

So a backward pass with ``dx`` and ``dw`` right and ``db`` wrong on every case earns two thirds of
the task's points, and the feedback names the right parts (:func:`parts_line`). Where a named mistake
is recognised, :func:`autograder.scoring.grade_runs` withholds what cannot tell the function from it
(cases it passes too; parts it gets right there but wrong elsewhere). ``cases.grade_runs``
(shared by nbgrader's hidden ``grade_task`` and the batch grader) calls :func:`case_credit` and
:func:`parts_line`; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import ModuleType
from typing import Any


def right_parts(task_id: str, got: Any, expected: Any, verdicts: ModuleType) -> list[str] | None:
    """The parts of ``got`` that match ``expected``; None when the outcome is not a result with
    parts (an exception, a malformed result, an expected exception)."""
    if not isinstance(got, dict) or not isinstance(expected, dict):
        return None
    right = []
    for part, value in expected.items():
        try:
            if verdicts.compare_values(got.get(part), value, verdicts.RTOL, part) is None:
                right.append(part)
        except Exception:  # a part the grader cannot even compare is wrong
            continue
    return right


def case_credit(
    task_id: str, got: Any, expected: Any, mutated: str | None, passes: bool, verdicts: ModuleType
) -> float:
    """What one case earns, in [0, 1], by the rule above (``passes``: the whole case is right)."""
    if mutated:
        return 0.0
    if passes:
        return 1.0
    right = right_parts(task_id, got, expected, verdicts)
    if not right or len(expected) < 2:
        return 0.0
    return len(right) / len(expected)


def parts_line(
    task_id: str, judged: Sequence[tuple[Any, Any, Any, str | None]], verdicts: ModuleType
) -> str | None:
    """For a multi-part task where some case is partly right: which parts were right in how many
    cases, e.g. ``parts right: dx in 8 of 8 cases, dw in 8 of 8, db in 0 of 8 (each part is a third
    of a case)``. None for a one-part task, or when no case was partly right."""
    parts = list(verdicts.PARTS.get(task_id, ()))
    if len(parts) < 2 or not judged:
        return None
    counts = dict.fromkeys(parts, 0)
    partly = False
    for _, got, expected, mutated in judged:
        right = None if mutated else right_parts(task_id, got, expected, verdicts)
        for part in right or ():
            if part in counts:
                counts[part] += 1
        if right and len(right) < len(expected):
            partly = True
    if not partly:
        return None
    n = len(judged)
    shown = [
        f"{part} in {counts[part]} of {n} cases" if i == 0 else f"{part} in {counts[part]} of {n}"
        for i, part in enumerate(parts)
    ]
    share = {2: "a half", 3: "a third", 4: "a quarter", 5: "a fifth"}.get(len(parts), f"1/{len(parts)}")
    return f"parts right: {', '.join(shown)} (each part earns {share} of a case's points)"
