"""The hidden cases of every task: argument sets drawn from a seeded generator (float64 throughout).

:func:`task_inputs` draws one task's cases with the generator the task table names (``Task.inputs``):
fixed shape configurations chosen so that every known mistake in :mod:`autograder.mistakes` shows
(non-square images and filters, stride 1-3, pad 0-2, a batch of one, overlapping pools, ties in max
pooling, lam in {0, 0.5, 1, 2}, hand-made and random layer stacks), with random values, plus one fully
random configuration. A backward task's cases carry the cache of the *reference* forward pass.
``visible=True`` gives the few tiny cases of ``cnnlab/_internal/check_cases.json``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import Any

import numpy as np

from autograder.reference import load_reference, reference

VISIBLE_SEED = 20260101  # the visible cases never change unless this does


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


#: Cases drawn per student (from the course secret) in the tasks whose other cases are written here:
#: more than the written ones, so that reading this file does not give the answers.
RANDOM_CASES = 8


def _inputs_1_1(rng: np.random.Generator, visible: bool) -> list[Case]:
    if visible:
        fixed = [(7, 3, 2, 1), (6, 3, 2, 0), (4, 5, 1, 1)]
    else:  # a few edge cases everyone gets, and more drawn for each student (RANDOM_CASES)
        fixed = [(5, 3, 1, 0), (10, 4, 3, 2), (1, 1, 1, 0), (2, 5, 1, 0)]
        for _ in range(RANDOM_CASES):
            pad = int(rng.integers(0, 3))
            n = int(rng.integers(1, 40))
            fixed.append((n, int(rng.integers(1, n + 2 * pad + 1)), int(rng.integers(1, 5)), pad))
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
        fixed += [_random_stack(rng, with_fc=i % 2 == 0) for i in range(RANDOM_CASES)]
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
        fixed += [_random_stack(rng, with_fc=False)[1] for _ in range(RANDOM_CASES)]
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
    cases. The task table names the generator (``Task.inputs``), and, for a task on another task's kind
    of inputs, how its arguments follow from each drawn case (``Task.view``); a backward task
    (``Task.forward``) gets a cache made by the *reference* forward pass, so a student's backward is
    graded on its own.
    """
    ref = load_reference()
    task = ref.tasks.TASKS[task_id]
    forward = getattr(getattr(ref, task.module), task.forward) if task.forward else None
    drawn = _GENERATORS[task.inputs](ref, rng, visible, forward)
    if task.view is None:
        return drawn
    # a task on another task's kind of inputs (e.g. a filter, a length and a mode from conv1d's cases)
    viewed = (task.view(case.args) for case in drawn)
    return [Case(reference().verdicts.describe_args(task_id, args), args) for args in viewed]


def task_rng(task_id: str, seed: int) -> np.random.Generator:
    """The generator of one task's cases: the seed combined with the task ID (``"X.Y"`` -> X, Y)."""
    major, minor = (int(p) for p in task_id.split("."))
    return np.random.default_rng([int(seed) % 2**63, major, minor])
