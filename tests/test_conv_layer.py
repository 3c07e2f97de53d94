"""Tasks 2.1 (conv2d_forward) and 2.2 (conv2d_backward), against scipy and finite differences."""

from __future__ import annotations

import numpy as np
import oracles
import pytest
from hypothesis import given, settings
from oracles import EXACT, NUMERIC, rel
from strategies import conv_configs


@pytest.mark.task2_1
def test_conv2d_forward_hand_worked(cn):
    # One 3x3 image, one 2x2 filter, no padding: each output is a sum over a 2x2 window.
    x = np.arange(9.0).reshape(1, 1, 3, 3)  # [[0,1,2],[3,4,5],[6,7,8]]
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])  # top-left minus bottom-right
    out, _ = cn.conv.conv2d_forward(x, w, np.array([0.5]))
    np.testing.assert_allclose(out, [[[[0 - 4 + 0.5, 1 - 5 + 0.5], [3 - 7 + 0.5, 4 - 8 + 0.5]]]], atol=EXACT)


@pytest.mark.task2_1
def test_conv2d_forward_stride_and_padding_by_hand(cn):
    x = np.ones((1, 1, 3, 3))
    w = np.ones((1, 1, 3, 3))
    out, _ = cn.conv.conv2d_forward(x, w, np.zeros(1), stride=2, pad=1)
    # windows centred on the corners of the image see 2x2 ones
    np.testing.assert_allclose(out, [[[[4.0, 4.0], [4.0, 4.0]]]], atol=EXACT)


@pytest.mark.task2_1
@settings(max_examples=40, deadline=None)
@given(cfg=conv_configs())
def test_conv2d_forward_equals_scipy(cn, cfg):
    x, w, b, stride, pad = cfg
    x0 = x.copy()
    out, _ = cn.conv.conv2d_forward(x, w, b, stride, pad)
    expected = oracles.conv2d(x, w, b, stride, pad)
    assert out.shape == expected.shape
    assert rel(out, expected) < EXACT
    np.testing.assert_array_equal(x, x0, err_msg="conv2d_forward modified x")


@pytest.mark.task2_1
def test_conv2d_forward_cache_holds_the_inputs(cn):
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(1, 2, 5, 4)), rng.normal(size=(3, 2, 3, 1)), rng.normal(size=3)
    _, cache = cn.conv.conv2d_forward(x, w, b, 2, 1)
    cx, cw, cb, stride, pad = cache
    np.testing.assert_array_equal(cx, x)
    np.testing.assert_array_equal(cw, w)
    np.testing.assert_array_equal(cb, b)
    assert (stride, pad) == (2, 1)


@pytest.mark.task2_2
def test_conv2d_backward_hand_worked(cn):
    # out = sum of a 1x1 conv with weight 3: dx = 3 * dout, dw = sum(x * dout), db = sum(dout)
    x = np.array([[[[1.0, 2.0], [3.0, 4.0]]]])
    w = np.array([[[[3.0]]]])
    dout = np.array([[[[1.0, -1.0], [0.5, 2.0]]]])
    dx, dw, db = cn.conv.conv2d_backward(dout, (x, w, np.zeros(1), 1, 0))
    np.testing.assert_allclose(dx, 3 * dout, atol=EXACT)
    np.testing.assert_allclose(dw, [[[[1 - 2 + 1.5 + 8]]]], atol=EXACT)
    np.testing.assert_allclose(db, [2.5], atol=EXACT)


@pytest.mark.task2_2
@settings(max_examples=25, deadline=None)
@given(cfg=conv_configs())
def test_conv2d_backward_equals_finite_differences(cn, cfg):
    x, w, b, stride, pad = cfg
    out = oracles.conv2d(x, w, b, stride, pad)
    dout = np.random.default_rng(0).normal(size=out.shape)
    # the cache layout is part of the API: (x, w, b, stride, pad)
    dx, dw, db = cn.conv.conv2d_backward(dout, (x.copy(), w.copy(), b.copy(), stride, pad))
    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert rel(dx, oracles.numeric_grad(lambda v: oracles.conv2d(v, w, b, stride, pad), x, dout)) < NUMERIC
    assert rel(dw, oracles.numeric_grad(lambda v: oracles.conv2d(x, v, b, stride, pad), w, dout)) < NUMERIC
    assert rel(db, oracles.numeric_grad(lambda v: oracles.conv2d(x, w, v, stride, pad), b, dout)) < NUMERIC


@pytest.mark.task2_2
def test_conv2d_backward_is_a_full_convolution_with_the_flipped_filter(cn):
    # stride 1, no padding, one channel: dx = full 2-D convolution of dout with w (= correlation
    # with the flipped filter), a property that must hold; scipy computes it independently.
    from scipy import signal

    rng = np.random.default_rng(3)
    x, w = rng.normal(size=(1, 1, 6, 5)), rng.normal(size=(1, 1, 3, 2))
    dout = rng.normal(size=(1, 1, 4, 4))
    dx, _, _ = cn.conv.conv2d_backward(dout, (x, w, np.zeros(1), 1, 0))
    assert rel(dx[0, 0], signal.convolve2d(dout[0, 0], w[0, 0], mode="full")) < EXACT
