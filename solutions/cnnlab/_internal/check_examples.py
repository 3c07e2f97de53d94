"""The visible checks' hand-worked examples (provided), read from their one registry next to the task
table (``cnnlab/_internal/tasks.py``): small inputs worked out by hand, with what some classic
mistakes return on them, cases derived from the fixed cases (properties), and checks that run once
the tasks they need pass. :mod:`cnnlab.checks` runs them first, simplest first.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import tasks
from .verdicts import CheckCase


def hand_cases(task_id: str) -> list[CheckCase]:
    """Small examples worked out by hand, with what some known mistakes give on them."""
    make = tasks.HAND_WORKED.get(task_id)
    return make() if make else []


def derived_cases(task_id: str, fixed: Sequence[CheckCase]) -> list[CheckCase]:
    """Cases derived from the fixed ones (e.g. residual_block_backward with lam changed)."""
    make = tasks.DERIVED.get(task_id)
    return make(fixed) if make else []


def later_check(task_id: str) -> tasks.LaterCheck | None:
    """The check of a task that runs once the tasks it needs pass (e.g. a numerical gradient)."""
    return tasks.LATER.get(task_id)
