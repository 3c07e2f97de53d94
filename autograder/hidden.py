"""Hidden grading: ``grade_task("X.Y")`` in the hidden part of a check cell returns the task's points.

It runs in nbgrader's grading kernel, where ``import cnnlab`` is the student's copy (the working
directory is the student's assignment folder) and ``NBGRADER_EXECUTION=autograde``. For each task it

1. loads the reference with :func:`autograder.reference.load_reference` (never copied next to student
   code) and uses only the reference's ``verdicts`` and ``tasks`` code: the student's copies of those
   could have been edited;
2. draws the task's cases with :func:`autograder.cases.task_inputs` from a seed (:func:`grading_seed`:
   ``CNNLAB_GRADING_SEED`` if set; in nbgrader's ``autograded/<student>/<assignment>/`` folder a
   per-student seed, an HMAC of the course secret, the student id and the task ID, see
   :mod:`autograder.secret`; else :data:`DEFAULT_SEED`), combined with the task ID;
3. calls the student's function on a private copy of each case, with the provided functions of
   ``cnnlab.conv``, ``cnnlab.pool`` and ``cnnlab.residual`` replaced by the reference's (grading
   isolation, :func:`autograder.cases.restored_functions`: backward passes get caches made by the
   reference forward, a residual block runs the provided convolutions, so a wrong conv2d_forward costs
   points in its own task only), and with warnings, stderr and stdout captured;
4. scores the outcomes with :func:`autograder.cases.grade_runs`, the code the batch grader
   (:mod:`autograder.batch`) uses too: a case passes when the output matches the reference
   (``verdicts.RTOL``) and the inputs are unchanged;
5. prints ``passed X of Y`` and a diagnosis per distinct failure (stdout only: any stderr output in a
   grade cell zeroes it), and returns ``max_points * fraction``, always a float in [0, max_points].

No exception ever leaves :func:`grade_task`: a failing student call becomes a diagnosis, a failure of
the grader itself a one-line message and 0 points, and no traceback reveals the hidden cases.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import os
import time
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

from autograder import cases, messages
from autograder.cases import ISOLATED_MODULES, MAX_MESSAGES, GradeResult
from autograder.reference import load_reference

SEED_ENV = "CNNLAB_GRADING_SEED"
DEFAULT_SEED = 2718281
TIME_BUDGET_ENV = "CNNLAB_TIME_BUDGET"  # seconds for one task's hidden cases; the rest then fail
DEFAULT_TIME_BUDGET = 20.0

__all__ = [
    "DEFAULT_SEED",
    "ISOLATED_MODULES",
    "MAX_MESSAGES",
    "GradeResult",
    "grade_function",
    "grade_task",
    "grading_seed",
    "isolated",
    "max_points",
]


def max_points(task_id: str) -> float:
    """The points of a task, from ``autograder/assignments.toml``."""
    from autograder.manifest import task_points

    return float(task_points()[task_id])


def grading_seed(
    seed: int | None = None,
    task_id: str | None = None,
    student: str | None = None,
    root: str | Path | None = None,
) -> int:
    """The seed of a task's hidden cases, by priority:

    1. ``seed`` if given;
    2. the ``CNNLAB_GRADING_SEED`` environment variable (one seed for everybody: tests, debugging);
    3. with ``task_id``: the student's own seed, :func:`autograder.secret.student_seed` of the course
       secret of ``root``, ``student`` and ``task_id`` (the batch grader's secret). Without ``student``
       and ``root`` they are read from the working directory when it is nbgrader's
       ``<root>/autograded/<student>/<assignment>`` (see :func:`autograder.secret.kernel_context`),
       and the seed comes from nbgrader's own secret: a leak there says nothing of the batch's cases;
    4. :data:`DEFAULT_SEED`.
    """
    if seed is not None:
        return int(seed)
    try:
        return int(os.environ[SEED_ENV])
    except (KeyError, ValueError):
        pass
    if task_id is not None:
        from autograder import secret

        grader = "batch"
        if student is None or root is None:
            context = secret.kernel_context()
            if context is not None:  # nbgrader's kernel: that path's own secret
                root, student, grader = context.root, context.student, "nbgrader"
        if student is not None and root is not None:
            return secret.student_seed(secret.course_secret(root, grader), student, task_id)
    return DEFAULT_SEED


@contextlib.contextmanager
def isolated(student: ModuleType, ref: ModuleType) -> Iterator[None]:
    """Put the reference's provided functions into the student's conv/pool/residual modules
    (:func:`autograder.isolation.restored_functions`); restore the student's on exit.

    A residual block then runs the provided convolutions (``cnnlab.residual`` calls
    ``conv2d_forward`` through its own namespace), a backward pass the provided helpers, and so on.
    The student's task functions stay the student's (the batch grader cannot do otherwise: it never
    gives the reference to student code), whichever task is graded.
    """
    saved: list[tuple[ModuleType, str, bool, object]] = []
    try:
        for name in ISOLATED_MODULES:
            try:
                module = importlib.import_module(f"{student.__name__}.{name}")
            except Exception:
                continue  # a module that does not import is reported when its task is graded
            for attr, value in cases.restored_functions(getattr(ref, name), name, ref.tasks.TASKS).items():
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
def _silenced(verdicts: ModuleType) -> Iterator[None]:
    """No warnings and nothing on stderr or stdout (a student's prints included)."""
    with verdicts.quiet(), contextlib.redirect_stdout(io.StringIO()):
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

    Pure apart from calling student code: reads no environment, prints nothing. Cases not started
    within ``time_budget`` seconds count as failed. The scoring is
    :func:`autograder.cases.grade_runs`, shared with the batch grader.
    """
    verdicts = cases.verdicts_module(ref)
    with _silenced(verdicts):
        case_list = cases.task_inputs(task_id, cases.task_rng(task_id, seed))
        n_total = len(case_list)
        try:
            fn = cases.task_function(student_module, task_id)
        except Exception as exc:
            return cases.missing_function_result(task_id, n_total, f"{type(exc).__name__}: {exc}")
        runs: list[cases.CaseRun] = []
        notes: list[str] = []
        start = time.monotonic()
        for case in case_list:
            if time.monotonic() - start > time_budget:
                notes.append(cases.stopped_message(len(runs), n_total, time_budget))
                break
            args = copy.deepcopy(case.args)
            with isolated(student_module, ref):
                got, _ = verdicts.call(task_id, fn, args)
            runs.append(cases.CaseRun(got, args))
        if case_list and case_list[0].forward and cases.n_passed(task_id, case_list, runs, ref) < len(runs):
            # a backward task that lost cases: again, on the cache of the student's own forward
            module = cases.task_module(student_module, task_id)
            with isolated(student_module, ref):
                runs = [
                    cases.CaseRun(
                        run.got, run.args_after, cases.own_cache_outcome(task_id, module, case, verdicts)
                    )
                    for case, run in zip(case_list, runs, strict=False)
                ]
    return cases.grade_runs(task_id, case_list, runs, ref, notes)


def grade_task(task_id: str, seed: int | None = None) -> float:
    """Grade the student's Task ``task_id`` (the package ``import cnnlab`` finds) and return its points.

    Prints a short report on stdout. Never raises and never writes to stderr.
    """
    try:
        ref = load_reference()
        function = ref.tasks.TASKS[task_id].function
        maximum = max_points(task_id)
    except Exception as exc:
        print(f"Task {task_id}: the grader could not start ({type(exc).__name__}: {exc}); 0 points.")
        return 0.0
    try:
        task_seed = grading_seed(seed, task_id)
    except Exception as exc:  # the course secret cannot be read or created
        print(f"Task {task_id}: no per-student seed ({type(exc).__name__}: {exc}); the default seed is used.")
        task_seed = DEFAULT_SEED
    verdicts = cases.verdicts_module(ref)
    try:
        with _silenced(verdicts):
            student = importlib.import_module("cnnlab")
    except BaseException as exc:  # a SyntaxError or an exit() in the student's package
        print(messages.not_importable(task_id, function, f"{type(exc).__name__}: {exc}", maximum))
        return 0.0
    try:
        result = grade_function(task_id, student, ref, task_seed, _time_budget())
    except Exception as exc:
        print(messages.grader_failed(task_id, function, f"{type(exc).__name__}: {exc}", maximum))
        return 0.0
    points, lines = cases.task_report(task_id, result, maximum)
    for line in lines:
        print(line)
    return points
