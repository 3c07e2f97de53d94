"""Tasks 3.1 (maxpool2d_forward) and 3.2 (maxpool2d_backward), and the provided average pooling."""

from __future__ import annotations

import numpy as np
import oracles
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import EXACT, NUMERIC, rel


@st.composite
def pool_configs(draw, ties: bool = False):
    """Random inputs with H != W, size 1-3, stride 1-3 (overlapping when stride < size)."""
    size, stride = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    N, C = draw(st.integers(1, 2)), draw(st.integers(1, 3))
    H, W = draw(st.integers(size, 8)), draw(st.integers(size, 8))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(0, 3, size=(N, C, H, W)).astype(float) if ties else rng.normal(size=(N, C, H, W))
    return x, size, stride


def first_max_gradient(x, dout, size, stride):
    """dx by the rule: each window's gradient goes to its first maximum in row-major order."""
    dx = np.zeros_like(x)
    N, C, Ho, Wo = dout.shape
    for n, c, i, j in np.ndindex(N, C, Ho, Wo):
        win = x[n, c, i * stride : i * stride + size, j * stride : j * stride + size]
        p, q = divmod(int(np.argmax(win)), size)  # np.argmax: first occurrence, row-major
        dx[n, c, i * stride + p, j * stride + q] += dout[n, c, i, j]
    return dx


@pytest.mark.task3_1
def test_maxpool_forward_hand_worked(cn):
    x = np.array([[[[1.0, 3.0, 2.0, 0.0], [4.0, 2.0, 1.0, 5.0], [0.0, 0.0, 7.0, 1.0], [1.0, 2.0, 3.0, 4.0]]]])
    out, _ = cn.pool.maxpool2d_forward(x)  # size 2, stride defaults to 2
    np.testing.assert_array_equal(out, [[[[4.0, 5.0], [2.0, 7.0]]]])


@pytest.mark.task3_1
@settings(max_examples=50, deadline=None)
@given(cfg=pool_configs())
def test_maxpool_forward_equals_sliding_windows(cn, cfg):
    x, size, stride = cfg
    x0 = x.copy()
    out, cache = cn.pool.maxpool2d_forward(x, size, stride)
    np.testing.assert_array_equal(out, oracles.maxpool2d(x, size, stride))
    np.testing.assert_array_equal(x, x0, err_msg="maxpool2d_forward modified x")
    assert cache[1:] == (size, stride)


@pytest.mark.task3_1
def test_maxpool_forward_overlapping_windows_shape(cn):
    out, cache = cn.pool.maxpool2d_forward(np.zeros((1, 1, 7, 6)), size=3, stride=2)
    assert out.shape == (1, 1, 3, 2)
    assert cache[2] == 2


@pytest.mark.task3_2
def test_maxpool_backward_tie_goes_to_first_maximum(cn):
    # A 2x2 window of equal values: PyTorch sends the whole gradient to the top-left element.
    x = np.full((1, 1, 2, 2), 7.0)
    dx = cn.pool.maxpool2d_backward(np.array([[[[5.0]]]]), (x, 2, 2))
    np.testing.assert_array_equal(dx, [[[[5.0, 0.0], [0.0, 0.0]]]])
    # ... and with the tie in the second row, to the first of them in row-major order
    x = np.array([[[[0.0, 1.0], [3.0, 3.0]]]])
    dx = cn.pool.maxpool2d_backward(np.array([[[[2.0]]]]), (x, 2, 2))
    np.testing.assert_array_equal(dx, [[[[0.0, 0.0], [2.0, 0.0]]]])


@pytest.mark.task3_2
def test_maxpool_backward_overlapping_windows_accumulate(cn):
    # size 3, stride 1 on a 1x4 row: the 9 is the maximum of both windows, so it gets 1 + 10
    x = np.array([[[[0.0, 0.0, 9.0, 0.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0]]]])
    dx = cn.pool.maxpool2d_backward(np.array([[[[1.0, 10.0]]]]), (x, 3, 1))
    assert dx[0, 0, 0, 2] == 11.0
    assert dx.sum() == 11.0


@pytest.mark.task3_2
@settings(max_examples=50, deadline=None)
@given(cfg=pool_configs(ties=True))
def test_maxpool_backward_with_ties_follows_first_max_rule(cn, cfg):
    x, size, stride = cfg
    out = oracles.maxpool2d(x, size, stride)
    dout = np.random.default_rng(0).normal(size=out.shape)
    dx = cn.pool.maxpool2d_backward(dout, (x, size, stride))
    assert rel(dx, first_max_gradient(x, dout, size, stride)) < EXACT


@pytest.mark.task3_2
@settings(max_examples=25, deadline=None)
@given(cfg=pool_configs())
def test_maxpool_backward_equals_finite_differences(cn, cfg):
    x, size, stride = cfg  # continuous values: no ties, so the max is differentiable
    out = oracles.maxpool2d(x, size, stride)
    dout = np.random.default_rng(1).normal(size=out.shape)
    dx = cn.pool.maxpool2d_backward(dout, (x.copy(), size, stride))
    assert rel(dx, oracles.numeric_grad(lambda v: oracles.maxpool2d(v, size, stride), x, dout)) < NUMERIC


@settings(max_examples=30, deadline=None)
@given(cfg=pool_configs())
def test_avgpool_forward_and_backward(cn, cfg):
    x, size, stride = cfg
    win = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))[:, :, ::stride, ::stride]
    expected = win.sum(axis=(4, 5)) / size**2
    out, cache = cn.pool.avgpool2d_forward(x, size, stride)
    assert rel(out, expected) < EXACT
    dout = np.random.default_rng(2).normal(size=out.shape)
    num = oracles.numeric_grad(
        lambda v: np.lib.stride_tricks.sliding_window_view(v, (size, size), axis=(2, 3))[
            :, :, ::stride, ::stride
        ].mean(axis=(4, 5)),
        x.copy(),
        dout,
    )
    assert rel(cn.pool.avgpool2d_backward(dout, cache), num) < NUMERIC


def test_global_avgpool(cn):
    x = np.arange(2 * 3 * 2 * 2, dtype=float).reshape(2, 3, 2, 2)
    out, cache = cn.pool.global_avgpool_forward(x)
    np.testing.assert_allclose(out, x.reshape(2, 3, 4).mean(axis=2))
    dx = cn.pool.global_avgpool_backward(np.ones((2, 3)), cache)
    np.testing.assert_allclose(dx, np.full(x.shape, 0.25))
