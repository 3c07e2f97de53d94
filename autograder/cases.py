"""Scoring for every task, shared by both graders and the release build.

* The cases come from :mod:`autograder.inputs` (:func:`task_inputs`, seeded per student).
* What an output is worth is judged by the reference's judging core, ``cnnlab/judge.py``
  (:func:`judge_module`), the code the visible checks use too, so all of them say the same thing.
* :func:`grade_runs` turns what a student's function did on each case (:class:`CaseRun`) into a
  :class:`GradeResult`: cases passed, diagnoses, the known mistakes recognised. Both graders use it:
  :func:`autograder.hidden.grade_function` (in nbgrader's kernel, student code in the same process)
  and :mod:`autograder.batch` (student code in a sandboxed child process, outputs sent back as data).
  A backward task that lost cases is judged again on the cache of the student's own forward pass
  (:func:`own_cache_outcome`); the better counts. :func:`task_report` formats the result.
* :func:`restored_functions` is the grading-isolation rule both graders apply.
* :func:`visible_cases` is the content of ``cnnlab/check_cases.json`` (written by the build).

Tolerance: float results must agree with the reference to a relative error
``max|got - expected| / max(|got| + |expected|) <= 1e-7`` (``judge.RTOL``); ints exactly.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from autograder import mistakes
from autograder.inputs import VISIBLE_SEED, Case, task_inputs, task_rng
from autograder.reference import load_reference

_TASKS = load_reference().tasks.TASKS  # the task table, cnnlab/tasks.py
TASK_IDS = tuple(_TASKS)
# the modules whose provided functions grading restores
ISOLATED_MODULES = tuple(dict.fromkeys(t.module for t in _TASKS.values()))  # the student files; grading
# puts their provided functions back while a task runs
MAX_MESSAGES = 4  # distinct failures shown per task


def judge_module(ref: ModuleType) -> ModuleType:
    """The judging core of the reference package (``cnnlab/judge.py``): outcomes, comparison,
    diagnosis, the visible cases\' JSON; the visible checks and both graders judge with it."""
    return importlib.import_module(f"{ref.__name__}.judge")


def task_module(package: ModuleType, task_id: str) -> ModuleType:
    """``package.<module>`` of a task, e.g. ``cnnlab.conv`` for ``"2.1"``."""
    return importlib.import_module(f"{package.__name__}.{_task(task_id).module}")


def task_function(package: ModuleType, task_id: str) -> Callable[..., Any]:
    """``package.<module>.<function>`` of a task, e.g. ``cnnlab.conv.conv2d_forward`` for ``"2.1"``."""
    task = _task(task_id)
    module = importlib.import_module(f"{package.__name__}.{task.module}")
    return getattr(module, task.function)


def _task(task_id: str) -> Any:
    from autograder.reference import load_reference

    return load_reference().tasks.TASKS[task_id]


# --------------------------------------------------------------------------- outcomes


def run(task_id: str, fn: Callable[..., Any], args: Sequence[Any], ref: ModuleType) -> Any:
    """The outcome (see ``checks.Outcome``) of ``fn`` on a private copy of ``args``, quietly."""
    checks = judge_module(ref)
    with checks.quiet():
        outcome, _ = checks.call(task_id, fn, copy.deepcopy(tuple(args)))
    return outcome


def expected_outcome(task_id: str, args: Sequence[Any], ref: ModuleType) -> Any:
    """What the reference returns (or raises) on ``args``."""
    return run(task_id, task_function(ref, task_id), args, ref)


def variant_outcomes(task_id: str, args: Sequence[Any], ref: ModuleType) -> dict[str, Any]:
    """What each known mistake of the task returns (or raises) on ``args``, by mistake id."""
    return {
        m.id: run(task_id, task_function(mistakes.load_mutant(m), task_id), args, ref)
        for m in mistakes.for_task(task_id)
    }


def mistake_messages() -> dict[str, str]:
    """Every known mistake's student-facing message, by id."""
    return {m.id: m.message for m in mistakes.MISTAKES}


# --------------------------------------------------------------------------- grading


@dataclass
class GradeResult:
    """The hidden grading of one task: the fraction of cases passed and what went wrong.

    ``mistakes`` holds the ids of the known mistakes (:mod:`autograder.mistakes`) the diagnoses
    recognised, in order of first appearance.
    """

    fraction: float
    n_passed: int
    n_total: int
    messages: list[str] = field(default_factory=list)
    mistakes: list[str] = field(default_factory=list)


@dataclass
class CaseRun:
    """What the student's function did on one case: its outcome (``checks.Outcome``: the parts of
    the return value, ``checks.Raised`` or ``checks.Malformed``) and the arguments after the call
    (the private copy it was given, to detect writes into its inputs)."""

    got: Any
    args_after: Sequence[Any]
    own: Any = None  # backward tasks: the outcome on the cache of the student's own forward, if it ran


def restored_functions(module: ModuleType, module_name: str, tasks: Any) -> dict[str, Callable[..., Any]]:
    """Grading isolation: the functions of ``cnnlab.<module_name>`` that are put back while a task
    is graded, by name: every function bound in the pristine module ``module`` (the reference, or
    the released copy, which is the same code outside the task bodies) except the task functions
    defined in it. The student's own task functions stay the student's, so both graders agree;
    backward tasks get caches built by the reference forward (:func:`task_inputs`), and a residual
    block runs the provided ``cnnlab.fast`` convolutions, so a wrong ``conv2d_forward`` costs points
    in Task 2.1 only.

    ``autograder/sandbox/child.py`` applies the same rule to the released copy inside the sandbox.
    """
    own = {t.function for t in tasks.values() if t.module == module_name}
    return {
        name: value for name, value in vars(module).items() if inspect.isfunction(value) and name not in own
    }


def missing_function_result(task_id: str, n_total: int, error: str) -> GradeResult:
    """The task's function cannot be found in the student's module: 0 of ``n_total``."""
    task = _task(task_id)
    return GradeResult(0.0, 0, n_total, [f"could not find {task.function} in {task.path} ({error})"])


def stopped_message(n_done: int, n_total: int, seconds: float, why: str = "") -> str:
    """The note for cases that were never run because the time ran out."""
    why = why or f"more than {seconds:g} s"
    return f"stopped after {n_done} of {n_total} cases: {why} (an endless loop?)"


def _passes(task_id: str, got: Any, expected: Any, mutated: str | None, checks: ModuleType) -> bool:
    try:
        return not mutated and not checks.problems(task_id, got, expected)
    except Exception:  # a result the grader cannot even compare
        return False


def _mutation(task_id: str, before: Sequence[Any], after: Sequence[Any], checks: ModuleType) -> str | None:
    try:
        return checks.find_mutation(task_id, before, after)
    except Exception as exc:  # arguments replaced by objects that cannot even be compared
        return f"the arguments were changed beyond recognition ({type(exc).__name__})"


def n_passed(task_id: str, case_list: Sequence[Case], runs: Sequence[CaseRun], ref: ModuleType) -> int:
    """How many of the runs pass (no diagnosis): to decide whether a second try is worth it."""
    checks = judge_module(ref)
    with checks.quiet():
        return sum(
            1
            for case, run in zip(case_list, runs, strict=False)
            if _passes(
                task_id,
                run.got,
                expected_outcome(task_id, case.args, ref),
                _mutation(task_id, case.args, run.args_after, checks),
                checks,
            )
        )


def grade_runs(
    task_id: str,
    case_list: Sequence[Case],
    runs: Sequence[CaseRun],
    ref: ModuleType,
    notes: Sequence[str] = (),
) -> GradeResult:
    """Score one task from what the student's function did on ``case_list[:len(runs)]``.

    A case passes when its outcome matches the reference's (``checks.problems``, tolerance
    ``checks.RTOL``) and the arguments are unchanged; cases without a run count as failed. Failed
    cases get one diagnosis per distinct failure (at most :data:`MAX_MESSAGES`), naming the known
    mistakes they match; ``notes`` (e.g. :func:`stopped_message`) follow the diagnoses.
    """
    checks = judge_module(ref)
    n_total = len(case_list)
    notes = list(notes)
    with checks.quiet():
        judged = []
        for case, run in zip(case_list, runs, strict=False):
            expected = expected_outcome(task_id, case.args, ref)
            mutated = _mutation(task_id, case.args, run.args_after, checks)
            judged.append((case, run.got, expected, mutated))
        n_passed = sum(1 for _, got, exp, mut in judged if _passes(task_id, got, exp, mut, checks))
        if any(run.own is not None for run in runs):
            judged, n_passed, note = _fairer_cache(task_id, judged, runs, n_passed, checks)
            notes = ([note] if note else []) + notes
        messages: list[str] = []
        found: list[str] = []
        if n_passed < len(judged):
            try:
                messages, found = _diagnoses(task_id, judged, ref, checks)
            except Exception as exc:  # never lose points because a diagnosis failed
                messages = [f"{len(judged) - n_passed} cases failed (no diagnosis: {type(exc).__name__})"]
    fraction = n_passed / n_total if n_total else 0.0
    return GradeResult(fraction, n_passed, n_total, messages + notes, found)


def describe_cache(cache: Any) -> str:
    """The shape of a cache, for a message, e.g. ``(array (2, 3, 7, 7), array (4, 3, 3, 3), 1, 0)``."""
    if isinstance(cache, np.ndarray):
        return f"array {tuple(cache.shape)}"
    if isinstance(cache, tuple | list):
        inner = ", ".join(describe_cache(c) for c in cache)
        return f"({inner})" if isinstance(cache, tuple) else f"[{inner}]"
    if isinstance(cache, dict):
        return "{" + ", ".join(f"{k!r}: {describe_cache(v)}" for k, v in cache.items()) + "}"
    return repr(cache) if isinstance(cache, int | float | str | bool | None) else type(cache).__name__


def _fairer_cache(
    task_id: str,
    judged: list[tuple[Case, Any, Any, str | None]],
    runs: Sequence[CaseRun],
    n_passed: int,
    checks: ModuleType,
) -> tuple[list[tuple[Case, Any, Any, str | None]], int, str | None]:
    """A backward task graded on the cache of the student's own forward pass when that passes more
    cases than the reference's cache (another cache layout, used consistently, is not a mistake);
    the note says which cache was used and, on a mismatch, the layout the docstring documents."""
    own = [(case, run.own, expected, None) for (case, _, expected, _), run in zip(judged, runs, strict=False)]
    n_own = sum(1 for _, got, exp, _ in own if got is not None and _passes(task_id, got, exp, None, checks))
    case = judged[0][0] if judged else None
    forward = case.forward if case else "the forward pass"
    documented = describe_cache(case.args[1]) if case and len(case.args) > 1 else "its cache"
    if n_own > n_passed:
        note = (
            f"graded on the cache of your own {forward} (it passed {n_own} cases, the reference "
            f"{forward}'s cache {n_passed}); the documented cache is {documented}"
        )
        return own, n_own, note
    if n_passed < len(judged):
        raised = [got for _, got, _, _ in judged if isinstance(got, checks.Raised)]
        if raised and len(raised) == len(judged) - n_passed:
            note = (
                f"graded on the cache of the reference {forward}: your backward pass failed on it "
                f"({raised[0].type}); it must take the cache {forward} returns, as documented: {documented}"
            )
            return judged, n_passed, note
    return judged, n_passed, None


def _diagnoses(
    task_id: str, judged: list[tuple[Case, Any, Any, str | None]], ref: ModuleType, checks: ModuleType
) -> tuple[list[str], list[str]]:
    """One message per distinct failure, and the ids of the known mistakes recognised."""
    variants = [variant_outcomes(task_id, case.args, ref) for case, *_ in judged]
    consistent = checks.consistent_mistakes(
        [(got, expected, v) for (_, got, expected, _), v in zip(judged, variants, strict=True)]
    )
    messages, seen, found = [], set(), []
    texts = mistake_messages()
    for i, ((case, got, expected, mutated), v) in enumerate(zip(judged, variants, strict=True), start=1):
        try:
            diagnosis = checks.diagnose(task_id, got, expected, v, texts, consistent=consistent)
            if diagnosis is not None:
                for mid, _ in checks.match_variants(got, expected, v, consistent=consistent):
                    if mid not in found:
                        found.append(mid)
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
    return messages, found


def clamp_points(points: float, maximum: float) -> float:
    """``points`` rounded to 2 decimals, within [0, maximum]; 0 for NaN (nbgrader would give full marks)."""
    if not isinstance(points, int | float) or math.isnan(points):
        return 0.0
    return float(min(max(round(points, 2), 0.0), maximum))


def task_report(task_id: str, result: GradeResult, maximum: float) -> tuple[float, list[str]]:
    """``(points, lines)``: the task's points and the report ``grade_task`` prints (and the batch
    grader's feedback shows): a summary line, then one ``- `` item per message."""
    points = clamp_points(maximum * result.fraction, maximum)
    task = _task(task_id)
    lines = [
        f"Task {task_id} {task.function}: passed {result.n_passed} of {result.n_total} hidden cases: "
        f"{points:g} of {maximum:g} points."
    ]
    lines += ["- " + message.replace("\n", "\n  ") for message in result.messages]
    return points, lines


# --------------------------------------------------------------------------- check_cases.json


def visible_cases(ref: ModuleType) -> dict[str, Any]:
    """The content of ``cnnlab/check_cases.json``: deterministic and JSON-serialisable.

    For every task a few tiny cases: the arguments, the reference's outcome, and the outcome of each
    known mistake of the task that differs from it; plus the mistakes' messages and the tolerance.
    """
    checks = judge_module(ref)
    tasks: dict[str, list[dict[str, Any]]] = {}
    for task_id in TASK_IDS:
        entries = []
        for case in task_inputs(task_id, task_rng(task_id, VISIBLE_SEED), visible=True):
            expected = expected_outcome(task_id, case.args, ref)
            variants = {
                k: checks.to_json(v)
                for k, v in variant_outcomes(task_id, case.args, ref).items()
                if not checks.close_enough(v, expected, checks.MATCH_RTOL)
            }
            entries.append(
                {
                    "label": case.label,
                    "args": checks.to_json(list(case.args)),
                    "expected": checks.to_json(expected),
                    "variants": variants,
                }
            )
        tasks[task_id] = entries
    return {
        "about": "Fixed cases of the visible checks (cnnlab/checks.py), generated by `make release`.",
        "rtol": checks.RTOL,
        "mistakes": {m.id: {"task": m.task, "message": m.message} for m in mistakes.MISTAKES},
        "tasks": tasks,
    }


def own_cache_outcome(task_id: str, module: ModuleType, case: Case, checks: ModuleType) -> Any:
    """A backward case run on the cache of the student's own forward (``module`` is the student's
    module of the task): the backward's outcome, or None when the forward itself fails."""
    if case.forward is None or case.forward_args is None:
        return None
    fargs = copy.deepcopy(case.forward_args)
    try:
        _, cache = getattr(module, case.forward)(*fargs)
    except (Exception, SystemExit):
        return None
    fn = getattr(module, _task(task_id).function)
    dout = copy.deepcopy(case.args[0])
    got = checks.call(task_id, fn, (dout, cache))[0]
    # a backward that writes into what its forward was given (through the cache) or into dout is
    # judged on the reference's cache, where that is diagnosed
    if not (checks.same_values(fargs, case.forward_args) and checks.same_values(dout, case.args[0])):
        return None
    return got
