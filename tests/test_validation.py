"""Every validation rule raises ValueError naming the argument and the rule."""

from __future__ import annotations

import numpy as np
import pytest

X = np.zeros((2, 3, 5, 6))
W = np.zeros((4, 3, 3, 3))
B = np.zeros(4)


@pytest.mark.task1_1
@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((0, 3), r"n must be >= 1"),
        ((5, 0), r"f must be >= 1"),
        ((5, 3, 0), r"stride must be >= 1"),
        ((5, 3, 1, -1), r"pad must be >= 0"),
        ((2, 5, 1, 1), r"f=5 is larger than the padded input"),
        ((5.0, 3), r"n must be an integer"),
    ],
)
def test_conv_output_size_rules(cn, args, match):
    with pytest.raises(ValueError, match=match):
        cn.conv.conv_output_size(*args)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: c.conv.conv1d(np.zeros((2, 2)), np.ones(2)), r"x must be a non-empty 1-D array"),
        (lambda c: c.conv.conv1d(np.zeros(3), np.ones(0)), r"w must be a non-empty 1-D array"),
        (lambda c: c.conv.conv1d(np.zeros(3), np.ones(2), "circular"), r"mode must be one of"),
        (lambda c: c.conv.correlate1d(np.zeros(3), np.ones(2), "wrap"), r"mode must be one of"),
        (lambda c: c.conv.pad2d(np.zeros((3, 3)), 1), r"x must have 4 axes"),
        (lambda c: c.conv.pad2d(X, -1), r"pad must be >= 0"),
        (lambda c: c.conv.conv2d_forward(X[0], W, B), r"x must be a 4-D array"),
        (lambda c: c.conv.conv2d_forward(X, W[0], B), r"w must be a 4-D array"),
        (lambda c: c.conv.conv2d_forward(X, W[:, :2], B), r"w has C=2 channels but x has C=3"),
        (lambda c: c.conv.conv2d_forward(X, W, B[:3]), r"b must have shape \(K,\) = \(4,\)"),
        (lambda c: c.conv.conv2d_forward(X, W, B, stride=0), r"stride must be >= 1"),
        (lambda c: c.conv.conv2d_forward(X, W, B, pad=-1), r"pad must be >= 0"),
        (lambda c: c.conv.conv2d_forward(X, np.zeros((4, 3, 6, 1)), B), r"filter height FH=6 is larger"),
        (
            lambda c: c.conv.conv2d_forward(X, np.zeros((4, 3, 1, 9)), B, pad=1),
            r"filter width FW=9 is larger",
        ),
        (lambda c: c.pool.maxpool2d_forward(X[0]), r"x must be a 4-D array"),
        (lambda c: c.pool.maxpool2d_forward(X, size=0), r"size must be >= 1"),
        (lambda c: c.pool.maxpool2d_forward(X, 2, stride=0), r"stride must be >= 1"),
        (lambda c: c.pool.maxpool2d_forward(X, size=6), r"pool size=6 is larger than the input"),
        (lambda c: c.pool.avgpool2d_forward(X, size=6), r"pool size=6 is larger than the input"),
        (lambda c: c.residual.residual_block_forward(X[0], {}), r"x must be a 4-D array"),
        (
            lambda c: c.residual.residual_block_forward(X, {"w1": W}),
            r"params is missing \['b1', 'b2', 'w2'\]",
        ),
        (
            lambda c: c.residual.residual_block_forward(X, _params(w1=np.zeros((2, 4, 3, 3)))),
            r"params\['w1'\] must have shape \(C1, C=3",
        ),
        (
            lambda c: c.residual.residual_block_forward(X, _params(w2=np.zeros((4, 2, 3, 3)))),
            r"params\['w2'\] must have shape \(C=3, C1=2",
        ),
        (
            lambda c: c.residual.residual_block_forward(X, _params(w1=np.zeros((2, 3, 2, 3)))),
            r"'same' padding needs odd filter sizes, got FH=2",
        ),
        (lambda c: c.equivariance.shift2d(np.zeros(3), 1, 1), r"x must have at least 2 axes"),
        (lambda c: c.equivariance.shift2d(X, 1, 1, "reflect"), r"mode must be one of"),
        (lambda c: c.equivariance.blur_kernel(0), r"size must be >= 1"),
    ],
)
def test_provided_validation_rules(cn, call, match):
    with pytest.raises(ValueError, match=match):
        call(cn)


def _params(**override):
    p = {
        "w1": np.zeros((2, 3, 3, 3)),
        "b1": np.zeros(2),
        "w2": np.zeros((3, 2, 3, 3)),
        "b2": np.zeros(3),
    }
    return {**p, **override}
