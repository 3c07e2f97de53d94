"""Inputs, comparison and diagnosis for every task, shared by the hidden grader and the release build.

* :func:`task_inputs` draws the argument sets of one task from a seeded generator: fixed shape
  configurations chosen so that every known mistake in :mod:`autograder.mistakes` shows (non-square
  images and filters, stride 1-3, pad 0-2, a batch of one, overlapping pools, ties in max pooling,
  lam in {0, 0.5, 1, 2}), with random float64 values, plus one fully random configuration. The
  layer-stack tasks (5.x) get hand-picked stacks (LeNet-5, AlexNet's features, strides that do not
  divide, layers that do not fit) plus random stacks.
* :func:`compare` and :func:`diagnose` judge a student's output against the reference and name the
  known mistake it matches. The comparison core lives in the reference's ``checks.py`` (shipped to
  students for the visible checks), so the visible checks and the grader say the same thing.
* :func:`grade_runs` turns what a student's function did on each case (:class:`CaseRun`) into a
  :class:`GradeResult`: cases passed, diagnoses, the known mistakes recognised. Both graders use it:
  :func:`autograder.hidden.grade_function` (in nbgrader's kernel, student code in the same process)
  and :mod:`autograder.batch` (student code in a sandboxed child process, outputs sent back as data).
  :func:`task_report` formats the result the same way for both.
* :func:`restored_functions` is the grading-isolation rule both graders apply.
* :func:`visible_cases` is the content of ``cnnlab/check_cases.json`` (written by ``tools/build.py``).

Tolerance: float results must agree with the reference to a relative error
``max|got - expected| / max(|got| + |expected|) <= 1e-7`` (``checks.RTOL``); ints exactly.
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

from autograder import mistakes, wire
from autograder.reference import load_reference

VISIBLE_SEED = 20260101  # the visible cases never change unless this does
_TASKS = load_reference().tasks.TASKS  # the task table, cnnlab/tasks.py
TASK_IDS = tuple(_TASKS)
# the modules whose provided functions grading restores
ISOLATED_MODULES = tuple(dict.fromkeys(t.module for t in _TASKS.values()))  # the student files; grading
# puts their provided functions back while a task runs
MAX_MESSAGES = 4  # distinct failures shown per task


@dataclass(frozen=True)
class Case:
    """One argument set of a task: ``fn(*args)``, and a short description of it for messages.

    A backward task's case is ``(dout, cache)`` with the cache of the reference forward pass on
    ``forward_args``; ``forward`` names that forward function, so that the student's backward can
    also be run on the cache of the student's own forward (fair grading of another cache layout)."""

    label: str
    args: tuple[Any, ...]
    forward: str | None = None
    forward_args: tuple[Any, ...] | None = None


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


# --------------------------------------------------------------------------- inputs


def _values(rng: np.random.Generator, shape: tuple[int, ...], visible: bool) -> np.ndarray:
    """Random float64 values: normal for the grader; multiples of 1/4 in [-2, 2] for the JSON
    (short to store, and every sum and product of them is exact in float64)."""
    if visible:
        return rng.integers(-8, 9, size=shape) / 4.0
    return rng.normal(size=shape)


def _ties(rng: np.random.Generator, shape: tuple[int, ...], high: int) -> np.ndarray:
    """Integer-valued float64 inputs in 0 .. high-1: pooling windows may hold several equal maxima
    (often, for a small ``high``)."""
    return rng.integers(0, high, size=shape).astype(np.float64)


def _shape(a: np.ndarray) -> str:
    return str(tuple(a.shape))


def _case(label: str, args: tuple, forward, rng: np.random.Generator, visible: bool) -> Case:
    """A forward task's case ``args``; for a backward task (``forward`` given: the reference forward
    pass), the case ``(dout, cache)`` with the cache of ``forward(*args)`` and a seeded ``dout``."""
    if not forward:
        return Case(label, args)
    out, cache = forward(*args)
    dout = _values(rng, out.shape, visible)
    label = f"dout {_shape(dout)}, cache of {forward.__name__}({label})"
    return Case(label, (dout, cache), forward.__name__, args)


def _inputs_1_1(rng: np.random.Generator, visible: bool) -> list[Case]:
    if visible:
        fixed = [(7, 3, 2, 1), (6, 3, 2, 0), (4, 5, 1, 1)]
    else:
        fixed = [(5, 3, 1, 0), (7, 3, 2, 1), (6, 3, 2, 0), (10, 4, 3, 2), (1, 1, 1, 0), (2, 5, 1, 0)]
        pad = int(rng.integers(0, 3))
        n = int(rng.integers(1, 13))
        fixed.append((n, int(rng.integers(1, n + 2 * pad + 1)), int(rng.integers(1, 4)), pad))
    return [
        Case(f"conv_output_size(n={n}, f={f}, stride={s}, pad={p})", (n, f, s, p)) for n, f, s, p in fixed
    ]


def _inputs_1_2(rng: np.random.Generator, visible: bool) -> list[Case]:
    if visible:
        fixed = [(5, 2, "same"), (4, 3, "full"), (3, 5, "valid")]
    else:
        fixed = [(7, 4, "full"), (7, 4, "same"), (7, 4, "valid"), (6, 2, "same"), (3, 6, "same")]
        fixed += [(3, 6, "valid"), (5, 5, "full"), (4, 1, "same")]
        fixed.append(
            (int(rng.integers(1, 9)), int(rng.integers(1, 7)), str(rng.choice(["full", "same", "valid"])))
        )
    cases = []
    for L, F, mode in fixed:
        x, w = _values(rng, (L,), visible), _values(rng, (F,), visible)
        cases.append(Case(f"x ({L},), w ({F},), mode {mode!r}", (x, w, mode)))
    return cases


def _conv_configs(rng: np.random.Generator, visible: bool) -> list[tuple[int, ...]]:
    """(N, C, H, W, K, FH, FW, stride, pad) of the conv-layer cases."""
    if visible:
        return [
            (1, 2, 4, 5, 2, 2, 3, 1, 0),  # Ho = Wo = 3 from a non-square image and filter
            (2, 1, 3, 4, 3, 2, 2, 2, 1),  # stride 2, pad 1, Wo = K = 3
            (1, 1, 5, 3, 1, 3, 1, 3, 2),  # stride 3, pad 2
        ]
    configs = [
        (2, 3, 5, 7, 4, 3, 2, 1, 0),  # non-square image and filter, overlapping windows
        (1, 2, 6, 5, 3, 2, 3, 2, 1),  # batch of one, stride 2, pad 1, Wo = K = 3
        (2, 1, 5, 6, 2, 2, 3, 1, 0),  # Ho = Wo = 4 from a non-square image and filter
        (1, 2, 7, 9, 2, 3, 3, 3, 2),  # stride 3, pad 2
        (2, 2, 4, 4, 3, 3, 3, 1, 1),  # square, stride 1, pad 1
    ]
    N, C, K = (int(v) for v in rng.integers(1, 4, size=3))
    FH, FW = (int(v) for v in rng.integers(1, 5, size=2))
    stride, pad = int(rng.integers(1, 4)), int(rng.integers(0, 3))
    H = int(rng.integers(max(1, FH - 2 * pad), 9))
    W = int(rng.integers(max(1, FW - 2 * pad), 9))
    configs.append((N, C, H, W, K, FH, FW, stride, pad))
    return configs


def _conv_layer(ref: ModuleType, rng: np.random.Generator, visible: bool, forward: Any) -> list[Case]:
    cases = []
    for N, C, H, W, K, FH, FW, stride, pad in _conv_configs(rng, visible):
        x = _values(rng, (N, C, H, W), visible)
        w = _values(rng, (K, C, FH, FW), visible)
        b = _values(rng, (K,), visible)
        label = f"x {_shape(x)}, w {_shape(w)}, b {_shape(b)}, stride {stride}, pad {pad}"
        cases.append(_case(label, (x, w, b, stride, pad), forward, rng, visible))
    return cases


def _pool_configs(
    rng: np.random.Generator, visible: bool
) -> list[tuple[int, int, int, int, int, int | None]]:
    """(N, C, H, W, size, stride) of the max-pooling cases."""
    if visible:
        return [(1, 2, 5, 5, 3, 2), (2, 2, 4, 6, 2, None)]
    configs: list[tuple[int, int, int, int, int, int | None]] = [
        (2, 2, 5, 7, 3, 2),  # overlapping windows
        (1, 3, 4, 6, 2, None),  # the default stride = size
        (2, 1, 6, 5, 2, 1),  # heavily overlapping
        (1, 2, 7, 7, 3, 3),
        (1, 1, 3, 3, 3, None),  # one window
    ]
    size = int(rng.integers(1, 4))
    configs.append(
        (
            int(rng.integers(1, 3)),
            int(rng.integers(1, 4)),
            int(rng.integers(size, 8)),
            int(rng.integers(size, 8)),
            size,
            int(rng.integers(1, 4)),
        )
    )
    return configs


def _pooling(ref: ModuleType, rng: np.random.Generator, visible: bool, forward: Any) -> list[Case]:
    cases = []
    for k, (N, C, H, W, size, stride) in enumerate(_pool_configs(rng, visible)):
        # integer values: many ties for the backward pass, a few for the forward; normal values in
        # one configuration of the grader's
        if not visible and k == 3:
            x = _values(rng, (N, C, H, W), visible)
        else:
            x = _ties(rng, (N, C, H, W), (3 if visible else 4) if forward else 10)
        label = f"x {_shape(x)}, size {size}, stride {stride}"
        cases.append(_case(label, (x, size, stride), forward, rng, visible))
    return cases


def _residual_configs(rng: np.random.Generator, visible: bool) -> list[tuple[Any, ...]]:
    """(N, C, H, W, C1, (FH1, FW1), (FH2, FW2), lam) of the residual-block cases."""
    if visible:
        return [(1, 2, 3, 4, 2, (3, 3), (1, 3), 0.5), (1, 1, 4, 3, 2, (3, 1), (3, 3), 2.0)]
    odd = [1, 3, 5]
    configs = [
        (2, 2, 4, 5, 3, (3, 3), (1, 3), 0.5),
        (1, 1, 5, 3, 2, (3, 5), (3, 3), 2.0),
        (2, 3, 3, 4, 2, (1, 1), (3, 3), 0.0),
        (1, 2, 4, 4, 2, (3, 3), (3, 3), 1.0),
    ]
    configs.append(
        (
            int(rng.integers(1, 3)),
            int(rng.integers(1, 4)),
            int(rng.integers(2, 6)),
            int(rng.integers(2, 6)),
            int(rng.integers(1, 4)),
            (int(rng.choice(odd)), int(rng.choice(odd))),
            (int(rng.choice(odd)), int(rng.choice(odd))),
            float(rng.choice([0.0, 0.5, 1.0, 2.0])),
        )
    )
    return configs


def _residual(ref: ModuleType, rng: np.random.Generator, visible: bool, forward: Any) -> list[Case]:
    cases = []
    for N, C, H, W, C1, (FH1, FW1), (FH2, FW2), lam in _residual_configs(rng, visible):
        x = _values(rng, (N, C, H, W), visible)
        params = {
            "w1": _values(rng, (C1, C, FH1, FW1), visible),
            "b1": _values(rng, (C1,), visible),
            "w2": _values(rng, (C, C1, FH2, FW2), visible),
            "b2": _values(rng, (C,), visible),
        }
        label = f"x {_shape(x)}, w1 {_shape(params['w1'])}, w2 {_shape(params['w2'])}, lam {lam}"
        cases.append(_case(label, (x, params, lam), forward, rng, visible))
    return cases


_LENET = [
    ("conv", 6, 5, 1, 0),
    ("relu",),
    ("pool", 2, 2),
    ("conv", 16, 5, 1, 0),
    ("relu",),
    ("pool", 2, 2),
]
_ALEXNET_FEATURES = [
    ("conv", 96, 11, 4, 0),
    ("relu",),
    ("pool", 3, 2),
    ("conv", 256, 5, 1, 2),
    ("relu",),
    ("pool", 3, 2),
    ("conv", 384, 3, 1, 1),
    ("relu",),
    ("conv", 384, 3, 1, 1),
    ("relu",),
    ("conv", 256, 3, 1, 1),
    ("relu",),
    ("pool", 3, 2),
]


def _random_stack(rng: np.random.Generator, with_fc: bool) -> tuple[tuple[int, int, int], list[tuple]]:
    """A random stack of 2-5 conv/pool/relu layers (then 1-2 fc layers if ``with_fc``) that fits its
    random input: window sizes are drawn no larger than the current (padded) input."""
    D, H, W = int(rng.integers(1, 4)), int(rng.integers(6, 20)), int(rng.integers(6, 20))
    h, w, layers = H, W, []
    for _ in range(int(rng.integers(2, 6))):
        kind = str(rng.choice(["conv", "conv", "pool", "relu"]))
        if kind == "relu":
            layers.append(("relu",))
            continue
        if kind == "conv":
            P = int(rng.integers(0, 3))
            F = int(rng.integers(1, min(h, w) + 2 * P + 1))
            S = int(rng.integers(1, 4))
            layers.append(("conv", int(rng.integers(1, 9)), F, S, P))
            h, w = (h + 2 * P - F) // S + 1, (w + 2 * P - F) // S + 1
        else:
            F = int(rng.integers(1, min(h, w, 3) + 1))
            S = int(rng.integers(1, 4))
            layers.append(("pool", F, S))
            h, w = (h - F) // S + 1, (w - F) // S + 1
    if with_fc:
        layers += [("fc", int(rng.integers(1, 20))) for _ in range(int(rng.integers(1, 3)))]
    return (D, H, W), layers


def _inputs_5_1(rng: np.random.Generator, visible: bool) -> list[Case]:
    if visible:
        fixed = [
            ((3, 9, 8), [("conv", 4, 3, 2, 1), ("relu",), ("pool", 2, 2), ("fc", 5)]),
            ((2, 6, 7), [("conv", 3, 2, 1, 0), ("pool", 3, 2), ("conv", 2, 2, 1, 2), ("fc", 4)]),
        ]
    else:
        fc_head = [("fc", 120), ("relu",), ("fc", 84), ("relu",), ("fc", 10)]
        fixed = [
            ((1, 32, 32), _LENET + fc_head),  # depths 1 then 6, every kind of layer
            ((3, 227, 227), _ALEXNET_FEATURES + [("fc", 4096)]),  # stride 4, pad 2, overlapping pools
            ((3, 13, 10), [("conv", 4, 3, 2, 1), ("pool", 3, 2), ("fc", 5)]),  # strides do not divide
            ((2, 7, 9), [("conv", 5, 3, 1, 2), ("relu",), ("conv", 3, 4, 3, 1), ("fc", 6), ("fc", 2)]),
            ((1, 4, 4), [("conv", 2, 7, 1, 1)]),  # the filter is larger than the padded input
            ((1, 6, 6), [("conv", 2, 3, 1, 0), ("pool", 5, 1)]),  # the pool window does not fit
            ((1, 8, 8), [("fc", 10), ("conv", 2, 3, 1, 1)]),  # no image after fc
        ]
        fixed.append(_random_stack(rng, with_fc=True))
    return [
        Case(f"input_shape {shape}, layers {layers}", (shape, [tuple(layer) for layer in layers]))
        for shape, layers in fixed
    ]


def _inputs_5_2(rng: np.random.Generator, visible: bool) -> list[Case]:
    if visible:
        fixed = [
            [("conv", 4, 3, 2, 1), ("relu",), ("pool", 2, 2), ("conv", 2, 3, 1, 0)],
            [("pool", 3, 3), ("conv", 2, 2, 1, 0)],
        ]
    else:
        fixed = [
            _LENET,
            _ALEXNET_FEATURES,  # the classic 195-pixel receptive field, jump 32
            [("conv", 8, 3, 1, 1)] * 3,  # three 3x3 see as far as one 7x7
            [("conv", 4, 3, 2, 1), ("conv", 4, 5, 1, 2), ("pool", 2, 2), ("conv", 4, 3, 3, 0)],
            [("relu",)],
            [("conv", 4, 3, 1, 1), ("pool", 2, 2), ("fc", 10)],  # fc: no receptive field
        ]
        fixed.append(_random_stack(rng, with_fc=False)[1])
    return [Case(f"layers {layers}", ([tuple(layer) for layer in layers],)) for layers in fixed]


#: The case generators the task table names (``Task.inputs``): ``(ref, rng, visible, forward)``.
_GENERATORS: dict[str, Callable[[ModuleType, np.random.Generator, bool, Any], list[Case]]] = {
    "output_size": lambda ref, rng, visible, forward: _inputs_1_1(rng, visible),
    "conv1d": lambda ref, rng, visible, forward: _inputs_1_2(rng, visible),
    "conv_layer": _conv_layer,
    "pooling": _pooling,
    "residual": _residual,
    "layer_shapes": lambda ref, rng, visible, forward: _inputs_5_1(rng, visible),
    "receptive_field": lambda ref, rng, visible, forward: _inputs_5_2(rng, visible),
}


def task_inputs(task_id: str, rng: np.random.Generator, visible: bool = False) -> list[Case]:
    """The argument sets of one task, drawn from ``rng`` (float64 throughout).

    ``visible=True`` gives the few tiny cases stored in ``check_cases.json``; otherwise the grader's
    cases. The task table names the generator (``Task.inputs``); a backward task (``Task.forward``)
    gets a cache made by the *reference* forward pass, so a student's backward is graded on its own.
    """
    ref = load_reference()
    task = ref.tasks.TASKS[task_id]
    forward = getattr(getattr(ref, task.module), task.forward) if task.forward else None
    return _GENERATORS[task.inputs](ref, rng, visible, forward)


def task_rng(task_id: str, seed: int) -> np.random.Generator:
    """The generator of one task's cases: the seed combined with the task ID (``"2.1"`` -> 2, 1)."""
    major, minor = (int(p) for p in task_id.split("."))
    return np.random.default_rng([int(seed) % 2**63, major, minor])


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

    ``autograder/child.py`` applies the same rule to the released copy inside the sandbox.
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
    if not (wire.same_values(fargs, case.forward_args) and wire.same_values(dout, case.args[0])):
        return None
    return got
