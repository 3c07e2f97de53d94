"""The visible checks' hand-worked examples (provided): small inputs worked out by hand, with what
some classic mistakes return on them, and checks derived from the fixed cases (properties such as
``conv1d`` against ``np.convolve``). :mod:`cnnlab.checks` runs them first, simplest first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from . import conv, gradcheck, tasks
from .judge import GRAD_RTOL, CheckCase, Raised, call, problems


def hand_cases(task_id: str) -> list[CheckCase]:
    """Small examples worked out by hand, with what some known mistakes give on them."""
    a = np.array
    if task_id == "1.1":
        return [
            CheckCase("conv_output_size(5, 3)", (5, 3, 1, 0), {"M": 3}, {"size_no_plus_one": {"M": 2}}),
            CheckCase(
                "conv_output_size(32, 5, stride=1, pad=2)",
                (32, 5, 1, 2),
                {"M": 32},
                {"size_no_plus_one": {"M": 31}, "size_pad_once": {"M": 30}},
            ),
            CheckCase(
                "conv_output_size(6, 3, stride=2, pad=0): the last partial window is dropped",
                (6, 3, 2, 0),
                {"M": 2},
                {"size_ceil": {"M": 3}, "size_no_plus_one": {"M": 1}},
            ),
            CheckCase(
                "conv_output_size(7, 3, stride=2, pad=1)",
                (7, 3, 2, 1),
                {"M": 4},
                {"size_pad_once": {"M": 3}, "size_no_plus_one": {"M": 3}},
            ),
            CheckCase(
                "conv_output_size(3, 5, stride=1, pad=1): f just fits",
                (3, 5, 1, 1),
                {"M": 1},
                {"size_no_plus_one": {"M": 0}},
            ),
            *[
                CheckCase(
                    f"conv_output_size{rule.args}: {rule.rule}",
                    rule.args,
                    Raised("ValueError", rule.words),
                    words=rule.words,
                )
                for rule in tasks.ERROR_RULES["1.1"]
            ],
        ]
    if task_id == "1.2":
        x, w = a([1.0, 2.0, 3.0]), a([0.0, 1.0, 0.5])
        cases = [
            CheckCase(
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
                    CheckCase(
                        f"conv1d vs np.convolve: x {x.shape}, w {w.shape}, mode {mode!r}",
                        (x, w, mode),
                        {"h": np.convolve(x, w, mode)},
                        {"conv1d_correlation": {"h": np.convolve(x, w[::-1], mode)}},
                    )
                )
        return cases
    if task_id == "2.1":
        # out[i, j] = x[i, j] - x[i+1, j+1] + 0.5 = -3.5 everywhere; the flipped kernel gives +4.5.
        x = np.arange(9.0).reshape(1, 1, 3, 3)
        w = a([[[[1.0, 0.0], [0.0, -1.0]]]])
        return [
            CheckCase(
                "hand-worked: x = arange(9).reshape(1, 1, 3, 3), w = [[1, 0], [0, -1]], b = [0.5]",
                (x, w, a([0.5]), 1, 0),
                {"out": np.full((1, 1, 2, 2), -3.5)},
                {
                    "conv2d_flipped_kernel": {"out": np.full((1, 1, 2, 2), 4.5)},
                    "conv2d_no_bias": {"out": np.full((1, 1, 2, 2), -4.0)},
                },
            )
        ]
    if task_id == "3.1":
        x = a([[[[1.0, 3.0, 0.0], [2.0, 0.0, 5.0], [4.0, 1.0, 1.0]]]])
        return [
            CheckCase(
                "hand-worked: 3x3 input, size 2, stride 1 (overlapping windows)",
                (x, 2, 1),
                {"out": a([[[[3.0, 5.0], [4.0, 5.0]]]])},
            )
        ]
    if task_id == "3.2":
        ties = a([[[[1.0, 3.0], [3.0, 2.0]]]])
        overlap = a([[[[0.0, 5.0, 0.0], [0.0, 0.0, 0.0]]]])
        return [
            CheckCase(
                "tie rule: window [[1, 3], [3, 2]], dout = 1: the FIRST maximum (row-major) gets it",
                (a([[[[1.0]]]]), (ties, 2, 2)),
                {"dx": a([[[[0.0, 1.0], [0.0, 0.0]]]])},
                {
                    "maxpool_backward_split_ties": {"dx": a([[[[0.0, 0.5], [0.5, 0.0]]]])},
                    "maxpool_backward_all_ties": {"dx": a([[[[0.0, 1.0], [1.0, 0.0]]]])},
                    "maxpool_backward_last_tie": {"dx": a([[[[0.0, 0.0], [1.0, 0.0]]]])},
                },
            ),
            CheckCase(
                "overlap: x = [[0, 5, 0], [0, 0, 0]], size 2, stride 1, dout = [1, 2]: the 5 gets 1 + 2",
                (a([[[[1.0, 2.0]]]]), (overlap, 2, 1)),
                {"dx": a([[[[0.0, 3.0, 0.0], [0.0, 0.0, 0.0]]]])},
                {"maxpool_backward_assign_overlap": {"dx": a([[[[0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]]])}},
            ),
        ]
    if task_id == "4.1":
        x = a([[[[1.0, -2.0, 3.0], [-4.0, 5.0, -6.0]]]])
        zeros = {
            "w1": np.zeros((2, 1, 3, 3)),
            "b1": np.zeros(2),
            "w2": np.zeros((1, 2, 1, 3)),
            "b2": np.zeros(1),
        }
        return [
            CheckCase(
                "all weights and biases zero, lam = 0.5: F(x) = 0 so H(x) = 0.5 * x",
                (x, zeros, 0.5),
                {"out": 0.5 * x},
                {"residual_no_lam": {"out": x}, "residual_relu_after_sum": {"out": np.maximum(0.5 * x, 0)}},
            )
        ]
    if task_id == "5.1":
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
            CheckCase(
                "hand-worked: LeNet-5 on (1, 32, 32): [conv 5x5 -> relu -> pool 2x2] x 2 -> fc 120, 84, 10",
                ((1, 32, 32), lenet),
                {"shapes": shapes, "params": params},
                {
                    "shapes_conv_no_bias": with_params(l0=150, l3=2400),
                    "shapes_conv_no_depth": with_params(l3=416),
                    "shapes_fc_no_bias": with_params(l6=48000, l8=10080, l10=840),
                },
            ),
            CheckCase(
                "hand-worked (CS231n): 10 filters 5x5, stride 1, pad 2 on (3, 32, 32): 5*5*3 + 1 = 76 each",
                ((3, 32, 32), [("conv", 10, 5, 1, 2)]),
                {"shapes": [(10, 32, 32)], "params": [760]},
                {"shapes_conv_no_bias": {"shapes": [(10, 32, 32)], "params": [750]}},
            ),
            CheckCase(
                "a 7x7 filter on a (1, 4, 4) input padded by 1 does not fit",
                ((1, 4, 4), [("conv", 2, 7, 1, 1)]),
                Raised("ValueError", "filter size F=7 is larger than the padded input"),
            ),
        ]
    if task_id == "5.2":
        lenet = [("conv", 6, 5, 1, 0), ("relu",), ("pool", 2, 2), ("conv", 16, 5, 1, 0), ("pool", 2, 2)]
        return [
            CheckCase(
                "three 3x3 convolutions, stride 1, see as far as one 7x7: (7, 1)",
                ([("conv", 8, 3, 1, 1)] * 3,),
                {"size": 7, "jump": 1},
                {"rf_add_f": {"size": 10, "jump": 1}},
            ),
            CheckCase(
                "hand-worked: LeNet's features, r = 1 + 4 + 1 + 4*2 + 1*2 = 16, jump 1*1*2*1*2 = 4",
                (lenet,),
                {"size": 16, "jump": 4},
                {
                    "rf_no_jump": {"size": 11, "jump": 4},
                    "rf_pool_ignored": {"size": 9, "jump": 1},
                    "rf_size_times_stride": {"size": 28, "jump": 4},
                },
            ),
            CheckCase("no layers: one unit is one pixel: (1, 1)", ([],), {"size": 1, "jump": 1}),
            CheckCase(
                "a stack ending in fc has no receptive field",
                ([("conv", 4, 3, 1, 1), ("fc", 10)],),
                Raised("ValueError", "layers[1] is fc: each of its units sees the whole input"),
            ),
        ]
    return []


def gradcheck_conv2d() -> str | None:
    """conv2d_backward against finite differences of your conv2d_forward (run once 2.1 passes)."""
    rng = np.random.default_rng(7)
    x, w, b = rng.normal(size=(1, 2, 4, 3)), rng.normal(size=(2, 2, 2, 2)), rng.normal(size=2)
    stride, pad = 2, 1
    out, cache = conv.conv2d_forward(x, w, b, stride, pad)
    dout = rng.normal(size=out.shape)
    got, _ = call("2.2", conv.conv2d_backward, (dout, cache))
    if not isinstance(got, dict):
        return "; ".join(problems("2.2", got, {"dx": x}))
    numeric = {
        "dx": gradcheck.numerical_gradient(lambda v: conv.conv2d_forward(v, w, b, stride, pad)[0], x, dout),
        "dw": gradcheck.numerical_gradient(lambda v: conv.conv2d_forward(x, v, b, stride, pad)[0], w, dout),
        "db": gradcheck.numerical_gradient(lambda v: conv.conv2d_forward(x, w, v, stride, pad)[0], b, dout),
    }
    found = problems("2.2", got, numeric, GRAD_RTOL)
    return "; ".join(found) if found else None


def derived_cases(task_id: str, fixed: Sequence[CheckCase]) -> list[CheckCase]:
    """Cases derived from the fixed ones: residual_block_backward with lam changed to 3.

    dx = dx_F + lam * dout, and dx_F does not depend on lam, so the expected dx for lam = 3 follows
    from the stored one; the gradients of the weights do not change.
    """
    if task_id != "4.2":
        return []
    derived, new_lam = [], 3.0
    for case in fixed:
        dout, cache = case.args
        lam, expected = cache[0], case.expected
        if not isinstance(expected, dict):
            continue
        dx_f = expected["dx"] - lam * dout
        label = case.label.replace(f"lam {lam}", f"lam {new_lam}")
        derived.append(
            CheckCase(
                f"skip path, {label}",
                (dout, (new_lam, *cache[1:])),
                {**expected, "dx": dx_f + new_lam * dout},
                {
                    "residual_backward_skip_no_lam": {**expected, "dx": dx_f + dout},
                    "residual_backward_no_skip": {**expected, "dx": dx_f},
                },
            )
        )
    return derived
