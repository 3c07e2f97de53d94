"""Hidden grading: ``grade_task("2.1")`` in the hidden part of a check cell returns the task's points.

It runs in nbgrader's grading kernel, where ``import cnnlab`` is the student's copy (the working
directory is the student's assignment folder) and ``NBGRADER_EXECUTION=autograde``. For each task it

1. loads the reference with :func:`autograder.reference.load_reference` (never copied next to student
   code) and uses only the reference's ``checks`` and ``tasks`` code: the student's copies of those
   could have been edited;
2. draws the task's cases with :func:`autograder.cases.task_inputs` from a seed (``CNNLAB_GRADING_SEED``
   if set, else :data:`DEFAULT_SEED`, combined with the task ID);
3. calls the student's function on a private copy of each case, with every other function of
   ``cnnlab.conv``, ``cnnlab.pool`` and ``cnnlab.residual`` replaced by the reference's (grading
   isolation: a wrong conv2d_forward costs points in Task 2.1 only, not in 4.1 or 4.2), and with
   warnings, stderr and stdout captured;
4. passes a case when the output matches the reference (``checks.RTOL``) and the inputs are unchanged;
5. prints ``passed X of Y`` and a diagnosis per distinct failure (stdout only: any stderr output in a
   grade cell zeroes it), and returns ``max_points * fraction``, always a float in [0, max_points].

No exception ever leaves :func:`grade_task`: a failing student call becomes a diagnosis, a failure of
the grader itself a one-line message and 0 points, and no traceback reveals the hidden cases.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import inspect
import io
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from autograder import cases
from autograder.reference import load_reference

SEED_ENV = "CNNLAB_GRADING_SEED"
DEFAULT_SEED = 2718281
TIME_BUDGET_ENV = "CNNLAB_TIME_BUDGET"  # seconds for one task's hidden cases; the rest then fail
DEFAULT_TIME_BUDGET = 20.0
MAX_MESSAGES = 4  # distinct failures shown per task
ISOLATED_MODULES = ("conv", "pool", "residual")


@dataclass
class GradeResult:
    """The hidden grading of one task: the fraction of cases passed and what went wrong."""

    fraction: float
    n_passed: int
    n_total: int
    messages: list[str] = field(default_factory=list)


def max_points(task_id: str) -> float:
    """The points of a task, from ``autograder/assignments.toml``."""
    from autograder.manifest import task_points

    return float(task_points()[task_id])


def grading_seed(seed: int | None = None) -> int:
    """``seed`` if given, else the ``CNNLAB_GRADING_SEED`` environment variable, else the default."""
    if seed is not None:
        return int(seed)
    try:
        return int(os.environ[SEED_ENV])
    except (KeyError, ValueError):
        return DEFAULT_SEED


@contextlib.contextmanager
def isolated(task_id: str, student: ModuleType, ref: ModuleType) -> Iterator[None]:
    """Replace every function of the student's conv/pool/residual modules by the reference's,
    except the graded task's own function; restore all of them on exit.

    A residual block then runs the reference convolutions (``cnnlab.residual`` calls
    ``conv2d_forward`` through its own namespace), a backward pass the reference helpers, and so on.
    """
    task = ref.tasks.TASKS[task_id]
    saved: list[tuple[ModuleType, str, bool, object]] = []
    try:
        for name in ISOLATED_MODULES:
            try:
                module = importlib.import_module(f"{student.__name__}.{name}")
            except Exception:
                continue  # a module that does not import is reported when its task is graded
            for attr, value in vars(getattr(ref, name)).items():
                if not inspect.isfunction(value) or (name == task.module and attr == task.function):
                    continue
                namespace = vars(module)
                saved.append((module, attr, attr in namespace, namespace.get(attr)))
                setattr(module, attr, value)
        yield
    finally:
        for module, attr, existed, old in reversed(saved):
            if existed:
                setattr(module, attr, old)
            else:
                with contextlib.suppress(AttributeError):
                    delattr(module, attr)


@contextlib.contextmanager
def _silenced(checks: ModuleType) -> Iterator[None]:
    """No warnings and nothing on stderr or stdout (a student's prints included)."""
    with checks.quiet(), contextlib.redirect_stdout(io.StringIO()):
        yield


def _time_budget() -> float:
    try:
        return float(os.environ.get(TIME_BUDGET_ENV, DEFAULT_TIME_BUDGET))
    except ValueError:
        return DEFAULT_TIME_BUDGET


def grade_function(
    task_id: str,
    student_module: ModuleType,
    ref: ModuleType,
    seed: int,
    time_budget: float = DEFAULT_TIME_BUDGET,
) -> GradeResult:
    """Grade one task of a student package (a module object, e.g. ``import cnnlab``) on seeded cases.

    Pure apart from calling student code: reads no environment, prints nothing. A batch grader can
    call it on packages loaded with :func:`autograder.reference.load_package`. Cases not started
    within ``time_budget`` seconds count as failed.
    """
    checks = cases.checks_module(ref)
    task = ref.tasks.TASKS[task_id]
    with _silenced(checks):
        case_list = cases.task_inputs(task_id, cases.task_rng(task_id, seed))
        n_total = len(case_list)
        try:
            fn = cases.task_function(student_module, task_id)
        except Exception as exc:
            message = f"could not find {task.function} in {task.path} ({type(exc).__name__}: {exc})"
            return GradeResult(0.0, 0, n_total, [message])
        runs: list[tuple[cases.Case, Any, Any, str | None]] = []
        messages: list[str] = []
        start, budget = time.monotonic(), time_budget
        for i, case in enumerate(case_list, start=1):
            if time.monotonic() - start > budget:
                messages.append(
                    f"stopped after {i - 1} of {n_total} cases: more than {budget:g} s (an endless loop?)"
                )
                break
            runs.append((case, *_run_case(task_id, fn, case, student_module, ref, checks)))
        n_passed = sum(
            1 for _, got, expected, mutated in runs if _passes(task_id, got, expected, mutated, checks)
        )
        if n_passed < len(runs):
            try:
                messages = _diagnoses(task_id, runs, ref, checks) + messages
            except Exception as exc:  # never lose points because a diagnosis failed
                messages.append(f"{n_total - n_passed} cases failed (no diagnosis: {type(exc).__name__})")
    fraction = n_passed / n_total if n_total else 0.0
    return GradeResult(fraction, n_passed, n_total, messages)


def _run_case(
    task_id: str,
    fn: Callable[..., Any],
    case: cases.Case,
    student: ModuleType,
    ref: ModuleType,
    checks: ModuleType,
) -> tuple[Any, Any, str | None]:
    """``(got, expected, mutation message)`` of one case: the student's outcome under isolation."""
    expected = cases.expected_outcome(task_id, case.args, ref)
    args = copy.deepcopy(case.args)
    with isolated(task_id, student, ref):
        got, _ = checks.call(task_id, fn, args)
    try:
        mutated = checks.find_mutation(task_id, case.args, args)
    except Exception as exc:  # arguments replaced by objects that cannot even be compared
        mutated = f"the arguments were changed beyond recognition ({type(exc).__name__})"
    return got, expected, mutated


def _passes(task_id: str, got: Any, expected: Any, mutated: str | None, checks: ModuleType) -> bool:
    try:
        return not mutated and not checks.problems(task_id, got, expected)
    except Exception:  # a result the grader cannot even compare
        return False


def _diagnoses(
    task_id: str, runs: list[tuple[cases.Case, Any, Any, str | None]], ref: ModuleType, checks: ModuleType
) -> list[str]:
    """One message per distinct failure (at most :data:`MAX_MESSAGES`), naming known mistakes."""
    variants = [cases.variant_outcomes(task_id, case.args, ref) for case, *_ in runs]
    consistent = checks.consistent_mistakes(
        [(got, expected, v) for (_, got, expected, _), v in zip(runs, variants, strict=True)]
    )
    messages, seen = [], set()
    for i, ((case, got, expected, mutated), v) in enumerate(zip(runs, variants, strict=True), start=1):
        try:
            diagnosis = checks.diagnose(
                task_id, got, expected, v, cases.mistake_messages(), consistent=consistent
            )
        except Exception as exc:
            diagnosis = checks.Diagnosis([f"the result could not be checked ({type(exc).__name__}: {exc})"])
        if diagnosis is None and not mutated:
            continue
        if diagnosis is None:
            text, key = str(mutated), ("mutated",)
        else:
            text = diagnosis.text() + (f"\nAlso: {mutated}" if mutated else "")
            if diagnosis.hints:
                key = tuple(diagnosis.hints)
            elif isinstance(got, checks.Raised | checks.Malformed):
                key = (got,)
            else:
                key = ("values", len(diagnosis.problems))
        if key not in seen and len(messages) < MAX_MESSAGES:
            seen.add(key)
            messages.append(f"case {i} ({case.label}): {text}")
    return messages


def _clamp(points: float, maximum: float) -> float:
    """``points`` rounded to 2 decimals, within [0, maximum]; 0 for NaN (nbgrader would give full marks)."""
    if not isinstance(points, int | float) or math.isnan(points):
        return 0.0
    return float(min(max(round(points, 2), 0.0), maximum))


def grade_task(task_id: str, seed: int | None = None) -> float:
    """Grade the student's Task ``task_id`` (the package ``import cnnlab`` finds) and return its points.

    Prints a short report on stdout. Never raises and never writes to stderr.
    """
    try:
        ref = load_reference()
        task = ref.tasks.TASKS[task_id]
        maximum = max_points(task_id)
    except Exception as exc:
        print(f"Task {task_id}: the grader could not start ({type(exc).__name__}: {exc}); 0 points.")
        return 0.0
    checks = cases.checks_module(ref)
    try:
        with _silenced(checks):
            student = importlib.import_module("cnnlab")
    except BaseException as exc:  # a SyntaxError or an exit() in the student's package
        print(f"Task {task_id}: your cnnlab package does not import ({type(exc).__name__}: {exc}); 0 points.")
        return 0.0
    try:
        result = grade_function(task_id, student, ref, grading_seed(seed), _time_budget())
    except Exception as exc:
        print(f"Task {task_id}: the grader failed ({type(exc).__name__}: {exc}); 0 points.")
        return 0.0
    points = _clamp(maximum * result.fraction, maximum)
    print(
        f"Task {task_id} {task.function}: passed {result.n_passed} of {result.n_total} hidden cases: "
        f"{points:g} of {maximum:g} points."
    )
    for message in result.messages:
        print("- " + message.replace("\n", "\n  "))
    return points
