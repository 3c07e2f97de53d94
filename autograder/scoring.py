"""Scoring for every task, shared by both graders: what an outcome is worth, and the report.

* What an output is worth is decided by the reference's verdicts module,
  ``cnnlab/_internal/verdicts.py`` (:attr:`autograder.reference.Reference.verdicts`), the code the
  visible checks use too, so all of them say the same thing.
* :func:`grade_runs` turns what a student's function did on each case (:class:`CaseRun`) into a
  :class:`GradeResult`: cases passed, diagnoses, the known mistakes recognised. Both graders use it:
  :func:`autograder.hidden.grade_function` (in nbgrader's kernel, student code in the same process)
  and :mod:`autograder.batch` (student code in a sandboxed child process, outputs sent back as data).
  A backward task that lost cases is judged again on the cache of the student's own forward pass
  (:func:`own_cache_outcome`); the better counts. :func:`task_report` formats the result.

The hidden cases are :mod:`autograder.inputs`'s, grading isolation is :mod:`autograder.isolation`'s,
and the visible cases of ``cnnlab/_internal/check_cases.json`` are the build's
(:func:`autograder.build.visible_cases`).

Tolerance: float results must agree with the reference to a relative error
``max|got - expected| / max(|got| + |expected|) <= 1e-7`` (``verdicts.RTOL``); ints exactly.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import numpy as np

from autograder import mistakes, partial
from autograder.inputs import Case
from autograder.reference import Reference, reference

TASK_IDS = tuple(reference().tasks)

MAX_MESSAGES = 4  # distinct failures shown per task


def verdicts_module(ref: ModuleType) -> ModuleType:
    """The verdicts module of the reference package ``ref`` (``cnnlab/_internal/verdicts.py``)."""
    return _reference(ref).verdicts


def task_module(package: ModuleType, task_id: str) -> ModuleType:
    """``package.<module>`` of a task, e.g. ``cnnlab.conv`` for a task of ``conv.py``."""
    return reference().module(task_id, package)


def task_function(package: ModuleType, task_id: str) -> Callable[..., Any]:
    """``package.<module>.<function>`` of a task, e.g. ``cnnlab.conv.conv2d_forward``."""
    return reference().function(task_id, package)


def _task(task_id: str) -> Any:
    return reference().task(task_id)


def _reference(ref: ModuleType) -> Reference:
    """The :class:`Reference` of the package ``ref``: the one of :func:`reference` when it is that."""
    one = reference()
    return one if ref is one.package else Reference(ref)


# --------------------------------------------------------------------------- outcomes


def run(task_id: str, fn: Callable[..., Any], args: Sequence[Any], ref: ModuleType) -> Any:
    """The outcome (see ``verdicts.Outcome``) of ``fn`` on a private copy of ``args``, quietly."""
    verdicts = verdicts_module(ref)
    with verdicts.quiet():
        outcome, _ = verdicts.call(task_id, fn, copy.deepcopy(tuple(args)))
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
    #: passed cases that earn nothing: on them the function cannot be told from a known mistake it
    #: shows on other cases (see :func:`grade_runs`)
    n_uncredited: int = 0
    n_partial: int = 0  # failed cases that earned part of their credit (right parts)


@dataclass
class CaseRun:
    """What the student's function did on one case: its outcome (``verdicts.Outcome``: the parts of
    the return value, ``verdicts.Raised`` or ``verdicts.Malformed``) and the arguments after the call
    (the private copy it was given, to detect writes into its inputs)."""

    got: Any
    args_after: Sequence[Any]
    own: Any = None  # backward tasks: the outcome on the cache of the student's own forward, if it ran


def missing_function_result(task_id: str, n_total: int, error: str) -> GradeResult:
    """The task's function cannot be found in the student's module: 0 of ``n_total``."""
    task = _task(task_id)
    return GradeResult(0.0, 0, n_total, [f"could not find {task.function} in {task.path} ({error})"])


def stopped_message(n_done: int, n_total: int, seconds: float, why: str = "") -> str:
    """The note for cases that were never run because the time ran out."""
    why = why or f"more than {seconds:g} s"
    return f"stopped after {n_done} of {n_total} cases: {why} (an endless loop?)"


def _passes(task_id: str, got: Any, expected: Any, mutated: str | None, verdicts: ModuleType) -> bool:
    try:
        return not mutated and not verdicts.problems(task_id, got, expected)
    except Exception:  # a result the grader cannot even compare
        return False


def _mutation(task_id: str, before: Sequence[Any], after: Sequence[Any], verdicts: ModuleType) -> str | None:
    try:
        return verdicts.find_mutation(task_id, before, after)
    except Exception as exc:  # arguments replaced by objects that cannot even be compared
        return f"the arguments were changed beyond recognition ({type(exc).__name__})"


def n_passed(task_id: str, case_list: Sequence[Case], runs: Sequence[CaseRun], ref: ModuleType) -> int:
    """How many of the runs pass (no diagnosis): to decide whether a second try is worth it."""
    verdicts = verdicts_module(ref)
    with verdicts.quiet():
        return sum(
            1
            for case, run in zip(case_list, runs, strict=False)
            if _passes(
                task_id,
                run.got,
                expected_outcome(task_id, case.args, ref),
                _mutation(task_id, case.args, run.args_after, verdicts),
                verdicts,
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

    A case passes when its outcome matches the reference's (``verdicts.problems``, tolerance
    ``verdicts.RTOL``) and the arguments are unchanged; cases without a run count as failed. Failed
    cases get one diagnosis per distinct failure (at most :data:`MAX_MESSAGES`), naming the known
    mistakes they match; ``notes`` (e.g. :func:`stopped_message`) follow the diagnoses.

    A passed case earns credit only if it tells the function apart from every known mistake that its
    failed cases show: where such a mistake gives the right answer too, passing proves nothing (a
    'same'-mode mistake passes every 'full' case). So a known mistake earns nothing on any seed,
    however the cases fall, while a function wrong in other ways keeps the credit of its right cases.
    """
    verdicts = verdicts_module(ref)
    n_total = len(case_list)
    notes = list(notes)
    with verdicts.quiet():
        judged = []
        for case, run in zip(case_list, runs, strict=False):
            expected = expected_outcome(task_id, case.args, ref)
            mutated = _mutation(task_id, case.args, run.args_after, verdicts)
            judged.append((case, run.got, expected, mutated))
        n_passed = sum(1 for _, got, exp, mut in judged if _passes(task_id, got, exp, mut, verdicts))
        if any(run.own is not None for run in runs):
            judged, n_passed, note = _fairer_cache(task_id, judged, runs, n_passed, verdicts)
            notes = ([note] if note else []) + notes
        messages: list[str] = []
        found: list[str] = []
        variants: list[dict[str, Any]] = [{} for _ in judged]
        if n_passed < len(judged):
            try:
                messages, found, variants = _diagnoses(task_id, judged, ref, verdicts)
            except Exception as exc:  # never lose points because a diagnosis failed
                messages = [f"{len(judged) - n_passed} cases failed (no diagnosis: {type(exc).__name__})"]
        # each case's credit: whole, or per right part (autograder/partial.py); a passed case that a
        # known mistake the failed cases show passes too earns nothing (it cannot tell them apart)
        affected = _affected_parts(task_id, judged, variants, found, verdicts)
        credits = [
            _credit(task_id, (got, exp, mut), variant, (found, affected), verdicts)
            for (_, got, exp, mut), variant in zip(judged, variants, strict=True)
        ]
        credit = sum(earned for earned, _ in credits)
        uncredited = sum(1 for _, lost in credits if lost)
        if uncredited:
            notes = [
                f"{uncredited} of the {n_passed} cases you pass earn nothing: on them the known mistake "
                f"your other cases show ({', '.join(found)}) gives the right answer too, so they cannot "
                "tell your function from it. Fix the mistake and they count."
            ] + notes
        parts = partial.parts_line(task_id, judged, verdicts)
    fraction = credit / n_total if n_total else 0.0
    lines = ([parts] if parts else []) + messages + notes
    partly = sum(1 for earned, _ in credits if 0.0 < earned < 1.0)
    return GradeResult(fraction, n_passed, n_total, lines, found, uncredited, partly)


def _affected_parts(
    task_id: str,
    judged: list[tuple[Case, Any, Any, str | None]],
    variants: list[dict[str, Any]],
    found: Sequence[str],
    verdicts: ModuleType,
) -> set[str]:
    """The parts of the result that a known mistake of ``found`` gets wrong on some case (a part it
    always gets right, ``dx`` beside a wrong ``db``, is not its business)."""
    out: set[str] = set()
    for (_, _, expected, _), variant in zip(judged, variants, strict=True):
        if not isinstance(expected, dict):
            continue
        for m in found:
            if m in variant:
                right = set(partial.right_parts(task_id, variant[m], expected, verdicts) or ())
                out |= set(expected) - right
    return out


def _credit(
    task_id: str,
    judged: tuple[Any, Any, str | None],
    variant: dict[str, Any],
    diagnosed: tuple[Sequence[str], set[str]],
    verdicts: ModuleType,
) -> tuple[float, bool]:
    """``(credit, lost)`` of one case: the whole case when it passes, else its right parts' shares
    (:func:`partial.case_credit`). What cannot tell the function from a known mistake of ``found``
    (the ones the failed cases show) earns nothing (``lost``): a passed case that the mistake passes
    too, and a right part that the mistake also gets right here but wrong elsewhere. A part the
    mistake never touches keeps its share (a right ``dx`` beside a wrong ``db``).

    ``judged`` is the case's ``(got, expected, mutated)``, ``variant`` what each known mistake
    returns on it, ``diagnosed`` the mistakes the failed cases show and the parts they touch."""
    got, expected, mutated = judged
    found, affected = diagnosed
    passes = _passes(task_id, got, expected, mutated, verdicts)
    if passes and found and _a_mistake_passes_too(expected, variant, found, verdicts):
        return 0.0, True
    plain = partial.case_credit(task_id, got, expected, mutated, passes, verdicts)
    if passes or not plain or not found or not affected:
        return plain, False
    right = set(partial.right_parts(task_id, got, expected, verdicts) or ())
    for m in found:
        if m in variant:
            right -= affected & set(partial.right_parts(task_id, variant[m], expected, verdicts) or ())
    kept = len(right) / len(expected)
    return kept, kept < plain


def _a_mistake_passes_too(
    expected: Any, variant: dict[str, Any], found: Sequence[str], verdicts: ModuleType
) -> bool:
    """Whether a known mistake of ``found`` gives the right answer on this case too."""
    rtol = verdicts.MATCH_RTOL
    return any(m in variant and verdicts.close_enough(variant[m], expected, rtol) for m in found)


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
    verdicts: ModuleType,
) -> tuple[list[tuple[Case, Any, Any, str | None]], int, str | None]:
    """A backward task graded on the cache of the student's own forward pass when that passes more
    cases than the reference's cache (another cache layout, used consistently, is not a mistake);
    the note says which cache was used and, on a mismatch, the layout the docstring documents."""
    own = [(case, run.own, expected, None) for (case, _, expected, _), run in zip(judged, runs, strict=False)]
    n_own = sum(1 for _, got, exp, _ in own if got is not None and _passes(task_id, got, exp, None, verdicts))
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
        raised = [got for _, got, _, _ in judged if isinstance(got, verdicts.Raised)]
        if raised and len(raised) == len(judged) - n_passed:
            note = (
                f"graded on the cache of the reference {forward}: your backward pass failed on it "
                f"({raised[0].type}); it must take the cache {forward} returns, as documented: {documented}"
            )
            return judged, n_passed, note
    return judged, n_passed, None


def _diagnoses(
    task_id: str, judged: list[tuple[Case, Any, Any, str | None]], ref: ModuleType, verdicts: ModuleType
) -> tuple[list[str], list[str], list[dict[str, Any]]]:
    """One message per distinct failure, the ids of the known mistakes recognised, and every known
    mistake's outcome on each case."""
    variants = [variant_outcomes(task_id, case.args, ref) for case, *_ in judged]
    consistent = verdicts.consistent_mistakes(
        [(got, expected, v) for (_, got, expected, _), v in zip(judged, variants, strict=True)]
    )
    messages, seen, found = [], set(), []
    texts = mistake_messages()
    for i, ((case, got, expected, mutated), v) in enumerate(zip(judged, variants, strict=True), start=1):
        try:
            diagnosis = verdicts.diagnose(task_id, got, expected, v, texts, consistent=consistent)
            if diagnosis is not None:
                for mid, _ in verdicts.match_variants(got, expected, v, consistent=consistent):
                    if mid not in found:
                        found.append(mid)
        except Exception as exc:
            diagnosis = verdicts.Diagnosis([f"the result could not be checked ({type(exc).__name__}: {exc})"])
        if diagnosis is None and not mutated:
            continue
        if diagnosis is None:
            text, key = str(mutated), ("mutated",)
        else:
            text = diagnosis.text() + (f"\nAlso: {mutated}" if mutated else "")
            if diagnosis.hints:
                key = tuple(diagnosis.hints)
            elif isinstance(got, verdicts.Raised | verdicts.Malformed):
                key = (got,)
            else:
                key = ("values", len(diagnosis.problems))
        if key not in seen and len(messages) < MAX_MESSAGES:
            seen.add(key)
            messages.append(f"case {i} ({case.label}): {text}")
    return messages, found, variants


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
    partly = result.n_partial > 0
    summary = f"passed {result.n_passed} of {result.n_total} hidden cases"
    summary += ", others in part" if partly else ""
    lines = [f"Task {task_id} {task.function}: {summary}: {points:g} of {maximum:g} points."]
    lines += ["- " + message.replace("\n", "\n  ") for message in result.messages]
    return points, lines


def own_cache_outcome(task_id: str, module: ModuleType, case: Case, verdicts: ModuleType) -> Any:
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
    got = verdicts.call(task_id, fn, (dout, cache))[0]
    # a backward that writes into what its forward was given (through the cache) or into dout is
    # judged on the reference's cache, where that is diagnosed
    if not (verdicts.same_values(fargs, case.forward_args) and verdicts.same_values(dout, case.args[0])):
        return None
    return got
