"""The course's task table: one ID per student exercise, and everything known about it, in one place.

The ID ``"2.1"`` is the TODO line in ``cnnlab/conv.py``, the pytest marker ``task2_1``
(run ``pytest -m task2_1``), the notebook heading "Task 2.1" and the nbgrader ``grade_id``
``task2_1`` of that task's check cell. The checks (argument names, result parts, how a result is
split) and the grader (which modules grading isolates, how inputs are drawn, which forward pass a
backward task's cache comes from) read this table; none keeps a table of its own.

A new task is written in five places: its row here (with its hand-worked examples, below the table),
its solution body between the markers, its named mistakes in ``autograder/mistakes.py``, its notebook
prose (a markdown cell whose heading starts ``## Task X.Y``), and its points in
``autograder/assignments.toml``. The build (``make release``) derives the rest: the check cell after
the heading, the heading's file name, the task tables of the README, the book and
``docs/architecture.md``. Its tests carry its marker. (A new kind of inputs also needs a case
generator in ``autograder/inputs.py``.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Task:
    id: str  # "2.1"
    function: str  # name of the function the student writes
    module: str  # module inside cnnlab, e.g. "conv"
    notebook: str  # notebook (without .ipynb) that teaches it
    args: tuple[str, ...]  # the function's argument names, in order
    parts: tuple[str, ...]  # what its result holds, part by part (a forward's cache is not compared)
    returns: str  # how the result splits into parts: "value", "pair" (out, cache), "tuple", or a
    #               task's own splitter in checks.py ("dx_grads", "layer_table")
    inputs: str  # the case generator of autograder/inputs.py that draws its arguments
    forward: str | None = None  # a backward task: the forward function whose cache it takes
    depends: tuple[str, ...] = ()  # tasks whose functions this one calls in the student's own file
    #: a task drawing the inputs of another kind of task (``inputs``): its arguments from each drawn
    #: case's arguments, so that a new task on known kinds of inputs needs no generator of its own
    view: Callable[[tuple[Any, ...]], tuple[Any, ...]] | None = None

    @property
    def marker(self) -> str:
        """The pytest marker / nbgrader grade_id for this task, e.g. ``task2_1``."""
        return "task" + self.id.replace(".", "_")

    @property
    def path(self) -> str:
        """The student file to edit, relative to the folder holding ``cnnlab/``."""
        return f"cnnlab/{self.module}.py"


TASKS: dict[str, Task] = {
    t.id: t
    for t in [
        Task(
            "1.1",
            "conv_output_size",
            "conv",
            "01_convolution",
            ("n", "f", "stride", "pad"),
            ("M",),
            "value",
            "output_size",
        ),
        Task("1.2", "conv1d", "conv", "01_convolution", ("x", "w", "mode"), ("h",), "value", "conv1d"),
        Task(
            "1.3",
            "conv_matrix",
            "conv",
            "01_convolution",
            ("w", "n", "mode"),
            ("T",),
            "value",
            "conv1d",
            view=lambda args: (args[1], len(args[0]), args[2]),  # (x, w, mode) -> (w, len(x), mode)
        ),
        Task(
            "2.1",
            "conv2d_forward",
            "conv",
            "02_conv_layer",
            ("x", "w", "b", "stride", "pad"),
            ("out",),
            "pair",
            "conv_layer",
        ),
        Task(
            "2.2",
            "conv2d_backward",
            "conv",
            "02_conv_layer",
            ("dout", "cache"),
            ("dx", "dw", "db"),
            "tuple",
            "conv_layer",
            forward="conv2d_forward",
            depends=("2.1",),
        ),
        Task(
            "3.1",
            "maxpool2d_forward",
            "pool",
            "03_equivariance_pooling",
            ("x", "size", "stride"),
            ("out",),
            "pair",
            "pooling",
        ),
        Task(
            "3.2",
            "maxpool2d_backward",
            "pool",
            "03_equivariance_pooling",
            ("dout", "cache"),
            ("dx",),
            "value",
            "pooling",
            forward="maxpool2d_forward",
        ),
        Task(
            "4.1",
            "residual_block_forward",
            "residual",
            "04_residual",
            ("x", "params", "lam"),
            ("out",),
            "pair",
            "residual",
            depends=("2.1",),
        ),
        Task(
            "4.2",
            "residual_block_backward",
            "residual",
            "04_residual",
            ("dout", "cache"),
            ("dx", "grads['w1']", "grads['b1']", "grads['w2']", "grads['b2']"),
            "dx_grads",
            "residual",
            forward="residual_block_forward",
            depends=("2.1", "2.2"),
        ),
        Task(
            "5.1",
            "layer_shapes",
            "network",
            "05_conv_pool_stacks",
            ("input_shape", "layers"),
            ("shapes", "params"),
            "layer_table",
            "layer_shapes",
        ),
        Task(
            "5.2",
            "receptive_field",
            "network",
            "05_conv_pool_stacks",
            ("layers",),
            ("size", "jump"),
            "tuple",
            "receptive_field",
        ),
    ]
}


@dataclass(frozen=True)
class ErrorRule:
    """One argument rule of a task function: a call that breaks it, and the words of its ValueError.

    The task's docstring and notebook text state the rule and the words; the visible check
    (``check_task``) and the task's pytest tests demand exactly these: a ``ValueError`` whose message
    contains ``words``.
    """

    rule: str  # the rule broken, in words: "n < 1"
    args: tuple[object, ...]  # positional arguments of a call that breaks it (and only it)
    words: str  # what the ValueError's message must contain: "n must be >= 1"


#: The ValueError rules the visible checks test, where students write the argument checks themselves
#: or where the rules are part of what the task teaches. (Elsewhere the checks are provided, above the
#: TODO, and their own tests cover them.)
ERROR_RULES: dict[str, tuple[ErrorRule, ...]] = {
    "1.1": (
        ErrorRule("n < 1", (0, 3, 1, 0), "n must be >= 1"),
        ErrorRule("f < 1", (5, 0, 1, 0), "f must be >= 1"),
        ErrorRule("stride < 1", (5, 3, 0, 0), "stride must be >= 1"),
        ErrorRule("pad < 0", (5, 3, 1, -1), "pad must be >= 0"),
        ErrorRule("n is not an integer", (5.0, 3, 1, 0), "n must be an integer"),
        ErrorRule("f is not an integer", (5, 3.0, 1, 0), "f must be an integer"),
        ErrorRule("stride is not an integer", (5, 3, 1.5, 0), "stride must be an integer"),
        ErrorRule("pad is not an integer", (5, 3, 1, 0.5), "pad must be an integer"),
        ErrorRule(
            "the filter is larger than the padded input (f > n + 2*pad)",
            (2, 5, 1, 1),
            "f=5 is larger than the padded input",
        ),
    ),
    "1.3": (
        ErrorRule("w is not 1-D", (np.ones((2, 2)), 3, "full"), "w must be a non-empty 1-D array"),
        ErrorRule("w is empty", (np.ones(0), 3, "full"), "w must be a non-empty 1-D array"),
        ErrorRule("n is not an integer", (np.ones(2), 3.0, "full"), "n must be an integer"),
        ErrorRule("n < 1", (np.ones(2), 0, "full"), "n must be >= 1"),
        ErrorRule("an unknown mode", (np.ones(2), 3, "circular"), "mode must be one of"),
    ),
}


def task_for_function(module: str, function: str) -> Task:
    """The task whose student-written body is ``cnnlab.<module>.<function>``."""
    for task in TASKS.values():
        if task.module == module and task.function == function:
            return task
    raise KeyError(f"no task writes {module}.{function}; add it to cnnlab/_internal/tasks.py TASKS")


def not_implemented_message(task: Task) -> str:
    """The message a student stub raises, e.g. 'Task 1.2: implement conv1d in cnnlab/conv.py'."""
    return f"Task {task.id}: implement {task.function} in {task.path}"


# --------------------------------------------------------------------------- hand-worked examples
#
# The visible checks (``check_task``) run these first, simplest first: small inputs worked out by hand,
# with what some classic mistakes (ids of ``autograder/mistakes.py``) return on them. One registry, next
# to the table: a task registers its examples with ``@hand_worked("X.Y")``, cases derived from its fixed
# cases with ``@derived("X.Y")``, and a check that needs other tasks to work first with
# ``@after(...)``. A task without any still gets the fixed cases of ``check_cases.json``.


@dataclass(frozen=True)
class LaterCheck:
    """A visible check run after the cases, once the tasks it ``needs`` pass their own fixed cases.

    ``run()`` returns None when it passes, else the problem in words.
    """

    label: str  # e.g. "numerical gradient of conv2d_forward"
    needs: tuple[str, ...]  # task IDs whose functions it calls
    run: Callable[[], str | None]


HAND_WORKED: dict[str, Callable[[], list[Any]]] = {}
DERIVED: dict[str, Callable[[Sequence[Any]], list[Any]]] = {}
LATER: dict[str, LaterCheck] = {}


def hand_worked(task_id: str) -> Callable[[Callable[[], list[Any]]], Callable[[], list[Any]]]:
    """Register a function returning the hand-worked ``verdicts.CheckCase``s of a task."""

    def register(fn: Callable[[], list[Any]]) -> Callable[[], list[Any]]:
        HAND_WORKED[task_id] = fn
        return fn

    return register


def derived(task_id: str) -> Callable[[Callable[..., list[Any]]], Callable[..., list[Any]]]:
    """Register a function turning a task's fixed cases into more cases (properties)."""

    def register(fn: Callable[..., list[Any]]) -> Callable[..., list[Any]]:
        DERIVED[task_id] = fn
        return fn

    return register


def after(
    task_id: str, label: str, needs: tuple[str, ...]
) -> Callable[[Callable[[], str | None]], Callable[[], str | None]]:
    """Register a :class:`LaterCheck` of a task."""

    def register(fn: Callable[[], str | None]) -> Callable[[], str | None]:
        LATER[task_id] = LaterCheck(label, needs, fn)
        return fn

    return register


def _verdicts() -> Any:
    from . import verdicts  # imported late: verdicts reads this table

    return verdicts


@hand_worked("1.1")
def _conv_output_size_examples() -> list[Any]:
    C, Raised = _verdicts().CheckCase, _verdicts().Raised
    return [
        C("conv_output_size(5, 3)", (5, 3, 1, 0), {"M": 3}, {"size_no_plus_one": {"M": 2}}),
        C(
            "conv_output_size(32, 5, stride=1, pad=2)",
            (32, 5, 1, 2),
            {"M": 32},
            {"size_no_plus_one": {"M": 31}, "size_pad_once": {"M": 30}},
        ),
        C(
            "conv_output_size(6, 3, stride=2, pad=0): the last partial window is dropped",
            (6, 3, 2, 0),
            {"M": 2},
            {"size_ceil": {"M": 3}, "size_no_plus_one": {"M": 1}},
        ),
        C(
            "conv_output_size(7, 3, stride=2, pad=1)",
            (7, 3, 2, 1),
            {"M": 4},
            {"size_pad_once": {"M": 3}, "size_no_plus_one": {"M": 3}},
        ),
        C(
            "conv_output_size(3, 5, stride=1, pad=1): f just fits",
            (3, 5, 1, 1),
            {"M": 1},
            {"size_no_plus_one": {"M": 0}},
        ),
        *[
            C(f"conv_output_size{r.args}: {r.rule}", r.args, Raised("ValueError", r.words), words=r.words)
            for r in ERROR_RULES["1.1"]
        ],
    ]


@hand_worked("1.2")
def _conv1d_examples() -> list[Any]:
    C, a = _verdicts().CheckCase, np.array
    x, w = a([1.0, 2.0, 3.0]), a([0.0, 1.0, 0.5])
    cases = [
        C(
            "conv1d([1, 2, 3], [0, 1, 0.5]) = [0, 1, 2.5, 4, 1.5]",
            (x, w, "full"),
            {"h": a([0.0, 1.0, 2.5, 4.0, 1.5])},
            {"conv1d_correlation": {"h": a([0.5, 2.0, 3.5, 3.0, 0.0])}},
        )
    ]
    rng = np.random.default_rng(2024)
    for L, F in [(7, 4), (3, 6), (6, 6)]:
        x, w = rng.normal(size=L), rng.normal(size=F)
        for mode in ("full", "same", "valid"):
            cases.append(
                C(
                    f"conv1d vs np.convolve: x {x.shape}, w {w.shape}, mode {mode!r}",
                    (x, w, mode),
                    {"h": np.convolve(x, w, mode)},
                    {"conv1d_correlation": {"h": np.convolve(x, w[::-1], mode)}},
                )
            )
    return cases


@hand_worked("1.3")
def _conv_matrix_examples() -> list[Any]:
    """A 5 x 3 matrix written out, then matrices whose columns are np.convolve of unit vectors."""
    C, Raised, a = _verdicts().CheckCase, _verdicts().Raised, np.array
    T = a([[1.0, 0, 0], [2, 1, 0], [3, 2, 1], [0, 3, 2], [0, 0, 3]])  # column j: w put down at row j
    cases = [
        C(
            "conv_matrix([1, 2, 3], 3): columns are w shifted down one row at a time",
            (a([1.0, 2.0, 3.0]), 3, "full"),
            {"T": T},
            {"conv_matrix_correlation": {"T": T[:, ::-1][::-1]}, "conv_matrix_transposed": {"T": T.T}},
        )
    ]

    def of_unit_vectors(w: np.ndarray, n: int, mode: str) -> np.ndarray:
        return np.column_stack([np.convolve(np.eye(n)[j], w, mode) for j in range(n)])

    rng = np.random.default_rng(2025)
    for F, n, mode in [(3, 6, "same"), (4, 5, "valid"), (2, 5, "same"), (5, 3, "valid")]:
        w = rng.normal(size=F)
        T = of_unit_vectors(w, n, mode)
        cases.append(
            C(
                f"conv_matrix(w {w.shape}, n={n}, mode={mode!r}): column j is np.convolve(e_j, w, mode)",
                (w, n, mode),
                {"T": T},
                {
                    "conv_matrix_correlation": {"T": of_unit_vectors(w[::-1], n, mode)},
                    "conv_matrix_transposed": {"T": T.T},
                    "conv_matrix_always_full": {"T": of_unit_vectors(w, n, "full")},
                },
            )
        )
    cases += [
        C(f"conv_matrix{_show(r.args)}: {r.rule}", r.args, Raised("ValueError", r.words), words=r.words)
        for r in ERROR_RULES["1.3"]
    ]
    return cases


def _show(args: tuple[Any, ...]) -> str:
    """Arguments for a label: arrays by shape."""
    return "(" + ", ".join(f"array{v.shape}" if isinstance(v, np.ndarray) else repr(v) for v in args) + ")"


@hand_worked("2.1")
def _conv2d_forward_examples() -> list[Any]:
    # out[i, j] = x[i, j] - x[i+1, j+1] + 0.5 = -3.5 everywhere; the flipped kernel gives +4.5.
    C, a = _verdicts().CheckCase, np.array
    x = np.arange(9.0).reshape(1, 1, 3, 3)
    w = a([[[[1.0, 0.0], [0.0, -1.0]]]])
    return [
        C(
            "hand-worked: x = arange(9).reshape(1, 1, 3, 3), w = [[1, 0], [0, -1]], b = [0.5]",
            (x, w, a([0.5]), 1, 0),
            {"out": np.full((1, 1, 2, 2), -3.5)},
            {
                "conv2d_flipped_kernel": {"out": np.full((1, 1, 2, 2), 4.5)},
                "conv2d_no_bias": {"out": np.full((1, 1, 2, 2), -4.0)},
            },
        )
    ]


@after("2.2", "numerical gradient of conv2d_forward", needs=("2.1",))
def _conv2d_backward_gradcheck() -> str | None:
    """conv2d_backward against finite differences of your conv2d_forward (run once 2.1 passes)."""
    from .. import conv, gradcheck

    verdicts = _verdicts()
    rng = np.random.default_rng(7)
    x, w, b = rng.normal(size=(1, 2, 4, 3)), rng.normal(size=(2, 2, 2, 2)), rng.normal(size=2)
    stride, pad = 2, 1
    out, cache = conv.conv2d_forward(x, w, b, stride, pad)
    dout = rng.normal(size=out.shape)
    got, _ = verdicts.call("2.2", conv.conv2d_backward, (dout, cache))
    if not isinstance(got, dict):
        return "; ".join(verdicts.problems("2.2", got, {"dx": x}))
    numeric = {
        "dx": gradcheck.numerical_gradient(lambda v: conv.conv2d_forward(v, w, b, stride, pad)[0], x, dout),
        "dw": gradcheck.numerical_gradient(lambda v: conv.conv2d_forward(x, v, b, stride, pad)[0], w, dout),
        "db": gradcheck.numerical_gradient(lambda v: conv.conv2d_forward(x, w, v, stride, pad)[0], b, dout),
    }
    found = verdicts.problems("2.2", got, numeric, verdicts.GRAD_RTOL)
    return "; ".join(found) if found else None


@hand_worked("3.1")
def _maxpool2d_forward_examples() -> list[Any]:
    C, a = _verdicts().CheckCase, np.array
    x = a([[[[1.0, 3.0, 0.0], [2.0, 0.0, 5.0], [4.0, 1.0, 1.0]]]])
    return [
        C(
            "hand-worked: 3x3 input, size 2, stride 1 (overlapping windows)",
            (x, 2, 1),
            {"out": a([[[[3.0, 5.0], [4.0, 5.0]]]])},
        )
    ]


@hand_worked("3.2")
def _maxpool2d_backward_examples() -> list[Any]:
    C, a = _verdicts().CheckCase, np.array
    ties = a([[[[1.0, 3.0], [3.0, 2.0]]]])
    overlap = a([[[[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]]])
    return [
        C(
            "tie rule: window [[1, 3], [3, 2]], dout = 1: the FIRST maximum (row-major) gets it",
            (a([[[[1.0]]]]), (ties, 2, 2)),
            {"dx": a([[[[0.0, 1.0], [0.0, 0.0]]]])},
            {
                "maxpool_backward_split_ties": {"dx": a([[[[0.0, 0.5], [0.5, 0.0]]]])},
                "maxpool_backward_all_ties": {"dx": a([[[[0.0, 1.0], [1.0, 0.0]]]])},
                "maxpool_backward_last_tie": {"dx": a([[[[0.0, 0.0], [1.0, 0.0]]]])},
            },
        ),
        C(
            "overlap: x = [[0, 5, 0], [0, 0, 0]], size 2, stride 1, dout = [1, 2]: the 5 gets 1 + 2",
            (a([[[[1.0, 2.0]]]]), (overlap, 2, 1)),
            {"dx": a([[[[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]]])},
            {"maxpool_backward_assign_overlap": {"dx": a([[[[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]]])}},
        ),
    ]


@hand_worked("4.1")
def _residual_block_forward_examples() -> list[Any]:
    C, a = _verdicts().CheckCase, np.array
    x = a([[[[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]]])
    zeros = {"w1": np.zeros((2, 1, 3, 3)), "b1": np.zeros(2), "w2": np.zeros((1, 2, 1, 3)), "b2": np.zeros(1)}
    return [
        C(
            "all weights and biases zero, lam = 0.5: F(x) = 0 so H(x) = 0.5 * x",
            (x, zeros, 0.5),
            {"out": 0.5 * x},
            {"residual_no_lam": {"out": x}, "residual_relu_after_sum": {"out": np.maximum(0.5 * x, 0)}},
        )
    ]


@derived("4.2")
def _residual_block_backward_other_lam(fixed: Sequence[Any]) -> list[Any]:
    """residual_block_backward with lam changed to 3: dx = dx_F + lam * dout, and dx_F does not depend
    on lam, so the expected dx for lam = 3 follows from the stored one; the weights' gradients do not
    change."""
    C = _verdicts().CheckCase
    out, new_lam = [], 3.0
    for case in fixed:
        dout, cache = case.args
        lam, expected = cache[0], case.expected
        if not isinstance(expected, dict):
            continue
        dx_f = expected["dx"] - lam * dout
        label = case.label.replace(f"lam {lam}", f"lam {new_lam}")
        out.append(
            C(
                f"skip path, {label}",
                (dout, (new_lam, *cache[1:])),
                {**expected, "dx": dx_f + new_lam * dout},
                {
                    "residual_backward_skip_no_lam": {**expected, "dx": dx_f + dout},
                    "residual_backward_no_skip": {**expected, "dx": dx_f},
                },
            )
        )
    return out


@hand_worked("5.1")
def _layer_shapes_examples() -> list[Any]:
    C, Raised = _verdicts().CheckCase, _verdicts().Raised
    lenet = [
        ("conv", 6, 5, 1, 0),
        ("relu",),
        ("pool", 2, 2),
        ("conv", 16, 5, 1, 0),
        ("relu",),
        ("pool", 2, 2),
        ("fc", 120),
        ("relu",),
        ("fc", 84),
        ("relu",),
        ("fc", 10),
    ]
    shapes = [(6, 28, 28), (6, 28, 28), (6, 14, 14), (16, 10, 10), (16, 10, 10), (16, 5, 5)]
    shapes += [(120,), (120,), (84,), (84,), (10,)]
    # conv 5*5*1*6 + 6 and 5*5*6*16 + 16; fc 400*120 + 120, 120*84 + 84, 84*10 + 10
    params = [156, 0, 0, 2416, 0, 0, 48120, 0, 10164, 0, 850]

    def with_params(**changed: int) -> dict[str, Any]:
        return {"shapes": shapes, "params": [changed.get(f"l{i}", p) for i, p in enumerate(params)]}

    return [
        C(
            "hand-worked: LeNet-5 on (1, 32, 32): [conv 5x5 -> relu -> pool 2x2] x 2 -> fc 120, 84, 10",
            ((1, 32, 32), lenet),
            {"shapes": shapes, "params": params},
            {
                "shapes_conv_no_bias": with_params(l0=150, l3=2400),
                "shapes_conv_no_depth": with_params(l3=416),
                "shapes_fc_no_bias": with_params(l6=48000, l8=10080, l10=840),
            },
        ),
        C(
            "hand-worked (CS231n): 10 filters 5x5, stride 1, pad 2 on (3, 32, 32): 5*5*3 + 1 = 76 each",
            ((3, 32, 32), [("conv", 10, 5, 1, 2)]),
            {"shapes": [(10, 32, 32)], "params": [760]},
            {"shapes_conv_no_bias": {"shapes": [(10, 32, 32)], "params": [750]}},
        ),
        C(
            "a 7x7 filter on a (1, 4, 4) input padded by 1 does not fit",
            ((1, 4, 4), [("conv", 2, 7, 1, 1)]),
            Raised("ValueError", "filter size F=7 is larger than the padded input"),
        ),
    ]


@hand_worked("5.2")
def _receptive_field_examples() -> list[Any]:
    C, Raised = _verdicts().CheckCase, _verdicts().Raised
    lenet = [("conv", 6, 5, 1, 0), ("relu",), ("pool", 2, 2), ("conv", 16, 5, 1, 0), ("pool", 2, 2)]
    return [
        C(
            "three 3x3 convolutions, stride 1, see as far as one 7x7: (7, 1)",
            ([("conv", 8, 3, 1, 1)] * 3,),
            {"size": 7, "jump": 1},
            {"rf_add_f": {"size": 10, "jump": 1}},
        ),
        C(
            "hand-worked: LeNet's features, r = 1 + 4 + 1 + 4*2 + 1*2 = 16, jump 1*1*2*1*2 = 4",
            (lenet,),
            {"size": 16, "jump": 4},
            {
                "rf_no_jump": {"size": 11, "jump": 4},
                "rf_pool_ignored": {"size": 9, "jump": 1},
                "rf_size_times_stride": {"size": 28, "jump": 4},
            },
        ),
        C("no layers: one unit is one pixel: (1, 1)", ([],), {"size": 1, "jump": 1}),
        C(
            "a stack ending in fc has no receptive field",
            ([("conv", 4, 3, 1, 1), ("fc", 10)],),
            Raised("ValueError", "layers[1] is fc: each of its units sees the whole input"),
        ),
    ]
