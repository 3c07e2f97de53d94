"""Visible checks: ``check_task("X.Y")`` tells you whether Task X.Y works and, if not, what is wrong.

Each check calls your function on a small input and compares what it returns with the right answer:

* fixed cases from ``check_cases.json`` (next to this file), computed by the course's reference
  solution, together with what several classic *mistakes* return on the same inputs. When your output
  equals one of those, the check names the mistake ("This looks like: ...") and says how to fix it;
* small hand-worked examples and properties (for instance ``conv1d`` against ``np.convolve``).

Floating-point results are compared with the relative error

    max |got - expected| / max(|got| + |expected|)      (over the whole array)

and must stay below ``RTOL = 1e-7``: different but correct orders of summation agree to ~1e-15, while a
real mistake gives errors of order 1. Shapes and dtypes must match exactly (float64 in, float64 out).

This module is provided: you do not need to read or change it. The comparison and diagnosis are
:mod:`cnnlab._internal.verdicts`'s, the same code the course's graders use.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import linecache
import os
import re
import sys
import traceback
import types
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from . import tasks
from .check_examples import derived_cases, hand_cases, later_check
from .verdicts import (
    ARG_NAMES,
    GRAD_RTOL,
    MATCH_RTOL,
    PARTS,
    RTOL,
    CheckCase,  # the verdicts; re-exported: the graders and tests read it here too
    Diagnosis,
    Malformed,
    Outcome,
    Raised,
    call,
    close_enough,
    compare_arrays,
    compare_values,
    consistent_mistakes,
    describe_args,
    diagnose,
    find_mutation,
    from_json,
    match_variants,
    problems,
    quiet,
    relative_error,
    same_values,
    split_result,
    to_json,
)

#: The student's modules, by name, in the order of the task table (the checks call the student's
#: functions through them).
_MODULES: dict[str, ModuleType] = {
    name: importlib.import_module(f"..{name}", __package__)
    for name in dict.fromkeys(t.module for t in tasks.TASKS.values())
}

# --------------------------------------------------------------------------- check_cases.json

CASES_FILE = Path(__file__).with_name("check_cases.json")


_LOADED: dict[tuple[str, float], dict[str, Any]] = {}


def _cases_path() -> Path:
    """:data:`CASES_FILE`; for the instructor's reference in ``solutions/cnnlab``, which has no copy
    of its own (the build writes the file into the student release only), the release's copy."""
    path = Path(CASES_FILE)
    package = path.parent.parent  # .../cnnlab: this file is in its subpackage
    release_copy = package.parent.parent / "cnnlab" / path.parent.name / path.name
    if not path.exists() and package.parent.name == "solutions" and release_copy.exists():
        return release_copy
    return path


def load_cases() -> dict[str, Any]:
    """The content of :data:`CASES_FILE` (cached): ``rtol``, ``mistakes`` and ``tasks``."""
    path = _cases_path()
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: the visible checks need it. Restore it from the course release."
        )
    key = (str(path), path.stat().st_mtime)
    if key not in _LOADED:
        _LOADED[key] = json.loads(path.read_text())
    return _LOADED[key]


def fixed_cases(task_id: str) -> list[CheckCase]:
    """The fixed cases of one task from ``check_cases.json``."""
    return [
        CheckCase(
            label=c["label"],
            args=tuple(from_json(c["args"])),
            expected=from_json(c["expected"]),
            variants={k: from_json(v) for k, v in c["variants"].items()},
        )
        for c in load_cases()["tasks"][task_id]
    ]


# --------------------------------------------------------------------------- running the checks


@dataclass
class Report:
    """The outcome of one task's visible checks.

    ``failures`` holds one entry per distinct diagnosis: the first case that showed it, then how
    many more cases fail the same way. ``n_failed`` counts every failed case.
    """

    task: tasks.Task
    n_checks: int = 0
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    first_exception: BaseException | None = None
    n_failed: int = 0

    def message(self) -> str:
        task = self.task
        failed = max(self.n_failed, len(self.failures))
        head = f"Task {task.id} {task.function}: {failed} of {self.n_checks} checks failed."
        body = [f"- {f}".replace("\n", "\n  ") for f in self.failures]
        return "\n".join([head, *body, *self.notes])


def _student_function(task: tasks.Task) -> Callable[..., Any]:
    # looked up at every call, so that a re-imported or edited module is what gets checked
    return getattr(_MODULES[task.module], task.function)


def _passes_fixed_cases(task_id: str) -> bool:
    """Whether another task (a dependency) passes its own fixed cases; quietly, never raising."""
    fn = _student_function(tasks.TASKS[task_id])
    with quiet():
        for case in fixed_cases(task_id):
            got, _ = call(task_id, fn, _copy(case.args))
            if problems(task_id, got, case.expected):
                return False
    return True


def _copy(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):
        return obj.copy()
    if isinstance(obj, tuple | list):
        return type(obj)(_copy(x) for x in obj)
    if isinstance(obj, dict):
        return {k: _copy(v) for k, v in obj.items()}
    return obj


_NUMBER = re.compile(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _kind(got: Outcome, found: Diagnosis | None, mutated: str | None) -> tuple[Any, ...]:
    """What makes two failed cases "the same way": the known mistakes they look like, else the kind of
    problem (the exception's type, or the problem's sentence with its numbers left out)."""
    if found is None:
        shape: tuple[Any, ...] = ()
    elif found.hints:
        shape = ("looks like", *found.hints)
    elif isinstance(got, Raised):
        shape = ("raised", got.type)
    else:
        shape = ("problem", *(_NUMBER.sub("#", p) for p in found.problems))
    return (*shape, "mutated" if mutated else "")


def _words_problem(case: CheckCase, got: Outcome) -> str | None:
    """The right exception type whose message lacks the words the task's rules ask for."""
    if case.words is None or not isinstance(got, Raised) or not isinstance(case.expected, Raised):
        return None
    if got.type != case.expected.type or case.words in got.message:
        return None
    return (
        f"raised {got.type}({got.message!r}); its message must contain {case.words!r} "
        "(the docstring lists the words of each rule)"
    )


def _checks_of_the_same_way(numbers: list[int]) -> str:
    return ", ".join(str(i) for i in numbers[:8]) + (", ..." if len(numbers) > 8 else "")


def run_checks(task_id: str) -> Report:
    """Run every visible check of one task. A ``NotImplementedError`` propagates unchanged.

    The hand-worked examples come first (the simplest first), then the fixed cases from
    ``check_cases.json``, then cases derived from them. Failed cases that fail the same way (the same
    known mistake, or the same kind of problem) make one entry: the first of them, and a count.
    """
    task = tasks.TASKS[task_id]
    report = Report(task)
    messages = {k: v["message"] for k, v in load_cases()["mistakes"].items()}
    fixed = fixed_cases(task_id)
    hand = hand_cases(task_id)
    all_cases = [*hand, *fixed, *derived_cases(task_id, fixed)]
    runs = []
    for case in all_cases:
        args = _copy(case.args)
        got, exc = call(task_id, _student_function(task), args)
        if isinstance(exc, NotImplementedError):
            raise exc
        runs.append((got, exc, find_mutation(task_id, case.args, args)))
    # an exception names a mistake only if that mistake explains every fixed case
    fixed_runs = zip(fixed, runs[len(hand) : len(hand) + len(fixed)], strict=True)
    consistent = consistent_mistakes([(got, c.expected, c.variants) for c, (got, _, _) in fixed_runs])
    groups: dict[tuple[Any, ...], list[int]] = {}  # kind of failure -> the checks that failed so
    texts: dict[tuple[Any, ...], str] = {}
    missing_words: list[str] = []  # the words of the failing argument rules after the first
    for i, (case, (got, exc, mutated)) in enumerate(zip(all_cases, runs, strict=True), start=1):
        report.n_checks += 1
        found = diagnose(task_id, got, case.expected, case.variants, messages, consistent=consistent)
        words = _words_problem(case, got)
        if words and found is None:
            found = Diagnosis([words])
        if not (found or mutated):
            continue
        report.n_failed += 1
        if exc is not None and report.first_exception is None:
            report.first_exception = exc
        # the argument rules (tasks.ERROR_RULES) make one entry, listing the words every failing rule needs
        key = ("rules",) if case.words else _kind(got, found, mutated)
        if key in groups:
            groups[key].append(i)
            if case.words:
                missing_words.append(repr(case.words))
            continue
        groups[key] = [i]
        text = found.text() if found else str(mutated)
        if found and mutated:
            text += f"\nAlso: {mutated}"
        texts[key] = f"check {i} ({case.label}): {text}"
    for key, numbers in groups.items():
        entry = texts[key]
        more = len(numbers) - 1
        which = _checks_of_the_same_way(numbers[1:])
        if more and key == ("rules",):
            rules = "rule fails" if more == 1 else "rules fail"
            entry += (
                f"\n... and {more} more argument {rules} (check {which}): each must raise ValueError with a "
                f"message containing, in turn, {', '.join(missing_words)}."
            )
        elif more:
            cases = "case fails" if more == 1 else "cases fail"
            entry += f"\n... and {more} more {cases} the same way (check {which})."
        report.failures.append(entry)
    later = later_check(task_id)
    if later is not None:
        _run_later_check(report, later)
    if report.failures:
        for dep in task.depends:
            try:
                ok = _passes_fixed_cases(dep)
            except NotImplementedError:
                ok = False
            if not ok:
                t = tasks.TASKS[dep]
                report.notes.append(
                    f"Note: {task.function} calls {t.function} (Task {t.id}), which does not pass its own "
                    f"checks yet: fix Task {t.id} first (check_task({t.id!r}))."
                )
    return report


def _run_later_check(report: Report, later: tasks.LaterCheck) -> None:
    """A check that calls other tasks' functions (e.g. a numerical gradient of the student's forward
    pass): run once those pass their own fixed cases, else a note says when it will run."""
    waiting = [tasks.TASKS[d] for d in later.needs if not _passes_fixed_cases(d)]
    if waiting:
        names = " and ".join(f"{t.function} (Task {t.id})" for t in waiting)
        report.notes.append(f"(The check '{later.label}' runs once {names} passes its own checks.)")
        return
    report.n_checks += 1
    try:
        problem = later.run()
    except Exception as exc:  # e.g. a forward pass that fails on float64 perturbations
        problem = f"raised {type(exc).__name__}: {exc}"
    if problem:
        report.n_failed += 1
        report.failures.append(f"check {report.n_checks} ({later.label}): {problem}")


# --------------------------------------------------------------------------- fresh code, short tracebacks


def _package_name() -> str:
    """The ``cnnlab`` package (under whatever name it was imported), the parent of this subpackage."""
    return __name__.rsplit(".", 2)[0]


def student_modules() -> list[ModuleType]:
    """The modules the students write (``conv``, ``pool``, ``residual``), in the order of the tasks."""
    package = _package_name()
    names = dict.fromkeys(t.module for t in tasks.TASKS.values())
    return [sys.modules.get(f"{package}.{name}") or _MODULES[name] for name in names]


def reload_student_modules() -> None:
    """Run the student's files again, as they are on disk now, so that a check never sees old code.

    Each student module is re-executed in its own namespace from its source (not from a cached
    ``.pyc``, which can be stale when a file changes twice within a second), in the order of the
    tasks, so that ``from .conv import ...`` in a later one picks up the new functions. Other modules
    of the package that imported a student function by name are pointed at the new one. Errors in the
    file (a ``SyntaxError``, a ``NameError`` at module level) propagate.
    """
    package = _package_name()
    reloaded = student_modules()
    old: dict[int, tuple[Any, ModuleType, str]] = {}
    for module in reloaded:
        for name, value in vars(module).items():
            if getattr(value, "__module__", None) == module.__name__:
                old[id(value)] = (value, module, name)
    for module in reloaded:
        path = module.__file__
        if path is None:
            continue
        code = compile(Path(path).read_bytes(), path, "exec", dont_inherit=True)
        exec(code, module.__dict__)  # what importlib.reload does, minus the bytecode cache
        linecache.checkcache(path)  # tracebacks show the lines that ran
        _MODULES[module.__name__.rpartition(".")[2]] = module
    for name, module in list(sys.modules.items()):
        if not name.startswith(package + ".") or module in reloaded or module is None:
            continue
        for attr, value in list(vars(module).items()):
            hit = old.get(id(value))
            if hit is not None and hit[0] is value and hasattr(hit[1], hit[2]):
                setattr(module, attr, getattr(hit[1], hit[2]))


def _student_files() -> set[str]:
    return {os.path.realpath(m.__file__) for m in student_modules() if m.__file__}


def student_traceback(exc: BaseException) -> BaseException:
    """``exc`` with its traceback cut to the frames in the student's files (the checks' own frames,
    above them, and numpy's, below them, left out). Unchanged if none of its frames is the student's."""
    files = _student_files()
    frames = []
    tb = exc.__traceback__
    while tb is not None:
        frames.append(tb)
        tb = tb.tb_next
    mine = [i for i, t in enumerate(frames) if os.path.realpath(t.tb_frame.f_code.co_filename) in files]
    if not mine:
        return exc
    new = None
    for t in reversed(frames[mine[0] : mine[-1] + 1]):
        new = types.TracebackType(new, t.tb_frame, t.tb_lasti, t.tb_lineno)
    return exc.with_traceback(new)


def _check_failed(message: str, student_error: BaseException | None = None) -> AssertionError:
    """The ``AssertionError`` of a failed check: ``str()`` is the diagnosis.

    In a notebook only the diagnosis is shown, after the student's frames when the student's code
    raised (``student_error``): IPython's ``_render_traceback_`` protocol replaces the usual
    traceback, which would run through this file. The cell still ends in an error, so nbgrader's
    Validate fails; pytest and plain Python see an ordinary ``AssertionError``.
    """
    failed = AssertionError(message)
    before = student_lines(student_error) + [""] if student_error is not None else []
    failed._render_traceback_ = lambda: before + message.splitlines()  # type: ignore[attr-defined]
    return failed


def student_lines(exc: BaseException) -> list[str]:
    """``exc`` as a short traceback: only the frames in the student's files (none: just the error
    line); a ``SyntaxError`` as file, line, caret and message."""
    if isinstance(exc, SyntaxError):
        text = traceback.format_exception_only(type(exc), exc)
        return "".join(text).rstrip("\n").splitlines()
    files = _student_files()
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if os.path.realpath(f.filename) in files]
    text = ["Traceback (most recent call last):\n", *traceback.format_list(frames)] if frames else []
    text += traceback.format_exception_only(type(exc), exc)
    return "".join(text).rstrip("\n").splitlines()


def _shown_short(exc: BaseException) -> BaseException:
    """``exc`` (a stub's ``NotImplementedError``, an error in the student's file) as raised by
    :func:`check_task`: same type and message, shown in a notebook as :func:`student_lines`. A
    ``SyntaxError`` becomes the check's ``AssertionError`` (IPython renders every ``SyntaxError``
    its own way, with the frames that compiled the file), and is not shown again by
    :func:`report_broken_files`."""
    if isinstance(exc, SyntaxError):
        where = f"{exc.filename}, line {exc.lineno}" if exc.filename else "your file"
        with contextlib.suppress(OSError, TypeError, ValueError):
            _REPORTED.add((str(exc.filename), os.stat(str(exc.filename)).st_mtime))
        failed = AssertionError(f"{where}: {exc.msg} (SyntaxError)")
        failed._render_traceback_ = lambda: student_lines(exc)  # type: ignore[attr-defined]
        return failed
    exc._render_traceback_ = lambda: student_lines(exc)  # type: ignore[attr-defined]
    return exc


_REPORTED: set[tuple[str, float]] = set()  # (file, mtime) of the broken files already shown


def report_broken_files(info: Any = None) -> None:
    """IPython's ``pre_run_cell`` hook (registered by :func:`register_ipython_hook`): a student file
    that does not compile is shown once per save, short (file, line, caret, message), on stderr.

    The notebooks run ``%autoreload 2 --hide-errors``, so this is the only report of such an error
    in an ordinary cell; a check cell (one calling ``check_task``) reports it itself, once.
    """
    if os.environ.get("NBGRADER_EXECUTION") == "autograde" or "check_task(" in (
        getattr(info, "raw_cell", "") or ""
    ):
        return
    for module in student_modules():
        path = module.__file__
        try:
            key = (str(path), os.stat(str(path)).st_mtime)
            if key in _REPORTED:
                continue
            compile(Path(str(path)).read_bytes(), str(path), "exec", dont_inherit=True)
        except SyntaxError as exc:
            _REPORTED.add(key)
            print("\n".join(student_lines(exc)), file=sys.stderr)
        except (OSError, ValueError, TypeError):
            continue


def register_ipython_hook() -> None:
    """Register :func:`report_broken_files` in the running IPython shell, once; nothing outside IPython."""
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    if shell is None or getattr(shell, "_cnnlab_hook", False):
        return
    shell.events.register("pre_run_cell", report_broken_files)
    shell._cnnlab_hook = True


def check_task(task_id: str) -> None:
    """Run the visible checks of one task (e.g. ``"X.Y"``, the ID in its notebook heading).

    First runs your files again as they are now (:func:`reload_student_modules`): the check always sees
    the code you last saved, with or without ``%autoreload``, after a kernel restart or not.

    Prints one line when everything passes. Otherwise raises ``AssertionError`` saying which check
    failed, what differs, and which known mistake it looks like; cases that fail the same way are
    counted, not repeated. A function that is still a stub raises its ``NotImplementedError`` ("Task
    X.Y: implement <function> in cnnlab/<file>.py"). In a notebook a failure shows only the
    message and the lines of your files that raised (a syntax error: file, line, caret and message).

    While nbgrader autogrades (``NBGRADER_EXECUTION=autograde``) nothing is raised: the diagnosis is
    printed, so that the hidden grading in the same cell still runs.
    """
    __tracebackhide__ = True  # IPython and pytest leave this frame out of tracebacks
    if task_id not in tasks.TASKS:
        raise ValueError(f"unknown task {task_id!r}; tasks are {', '.join(tasks.TASKS)}")
    task = tasks.TASKS[task_id]
    if os.environ.get("NBGRADER_EXECUTION") == "autograde":
        try:
            reload_student_modules()
            with quiet():
                report = run_checks(task_id)
        except NotImplementedError as exc:
            print(f"Task {task_id} is not implemented yet: {exc}")
            return
        except Exception as exc:  # the checks themselves failed: report, never raise while grading
            error = f"{type(exc).__name__}: {exc}"
            print(f"Task {task_id} {task.function}: the visible checks could not run ({error})")
            return
        if report.failures:
            print(report.message())
            return
    else:
        try:
            reload_student_modules()
            report = run_checks(task_id)
        except Exception as exc:  # a syntax error in the file, a stub's NotImplementedError, ...
            raise _shown_short(student_traceback(exc)) from None
        if report.failures:
            cause = report.first_exception and student_traceback(report.first_exception)
            raise _check_failed(report.message(), cause) from cause
    print(f"Task {task_id} {task.function}: all {report.n_checks} checks passed.")


__all__ = [
    "ARG_NAMES",
    "CASES_FILE",
    "CheckCase",
    "Diagnosis",
    "GRAD_RTOL",
    "MATCH_RTOL",
    "Malformed",
    "Outcome",
    "PARTS",
    "RTOL",
    "Raised",
    "call",
    "check_task",
    "close_enough",
    "compare_arrays",
    "compare_values",
    "consistent_mistakes",
    "describe_args",
    "diagnose",
    "find_mutation",
    "fixed_cases",
    "from_json",
    "load_cases",
    "match_variants",
    "problems",
    "quiet",
    "relative_error",
    "same_values",
    "reload_student_modules",
    "split_result",
    "student_modules",
    "register_ipython_hook",
    "report_broken_files",
    "student_lines",
    "student_traceback",
    "to_json",
]

register_ipython_hook()
