"""Tasks 4.1 (residual_block_forward) and 4.2 (residual_block_backward), and the provided ReLU.

The block's convolutions are the provided ``cnnlab.fast`` ones, so these tests need only Task 4.x:
a student can pass them before finishing Tasks 2.1 and 2.2.
"""

from __future__ import annotations

import numpy as np
import oracles
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import EXACT, NUMERIC, rel

LAMS = [0.0, 0.5, 1.0, 2.0]


@pytest.fixture(scope="module")
def res(cn):
    return cn.residual


def same_conv(x, w, b):
    ph, pw = (w.shape[2] - 1) // 2, (w.shape[3] - 1) // 2
    return oracles.conv2d(np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw))), w, b)


def block(x, p, lam):
    """H(x) = conv(relu(conv(x, w1, b1)), w2, b2) + lam x, through scipy."""
    return same_conv(np.maximum(same_conv(x, p["w1"], p["b1"]), 0), p["w2"], p["b2"]) + lam * x


def make_params(rng, C, C1, f1=(3, 3), f2=(3, 3)):
    return {
        "w1": rng.normal(size=(C1, C, *f1)) * 0.5,
        "b1": rng.normal(size=C1),
        "w2": rng.normal(size=(C, C1, *f2)) * 0.5,
        "b2": rng.normal(size=C),
    }


@st.composite
def block_configs(draw):
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    C, C1 = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    f1 = (draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 3])))
    f2 = (draw(st.sampled_from([1, 3])), draw(st.sampled_from([1, 3])))
    x = rng.normal(size=(draw(st.integers(1, 2)), C, draw(st.integers(2, 6)), draw(st.integers(2, 6))))
    return x, make_params(rng, C, C1, f1, f2), draw(st.sampled_from(LAMS))


def test_relu(cn):
    x = np.array([[-1.0, 0.0, 2.0]])
    out, cache = cn.residual.relu_forward(x)
    np.testing.assert_array_equal(out, [[0.0, 0.0, 2.0]])
    np.testing.assert_array_equal(
        cn.residual.relu_backward(np.array([[5.0, 5.0, 5.0]]), cache), [[0, 0, 5.0]]
    )


@pytest.mark.task4_1
@settings(max_examples=30, deadline=None)
@given(cfg=block_configs())
def test_residual_forward_equals_scipy(res, cfg):
    x, params, lam = cfg
    x0 = x.copy()
    out, _ = res.residual_block_forward(x, params, lam)
    assert out.shape == x.shape
    assert rel(out, block(x, params, lam)) < EXACT
    np.testing.assert_array_equal(x, x0, err_msg="residual_block_forward modified x")


@pytest.mark.task4_1
def test_residual_forward_zero_branch_is_lam_times_identity(res):
    # With F = 0 (all weights and biases zero) the block is H(x) = lam x, by definition.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2, 2, 4, 5))
    params = {k: np.zeros_like(v) for k, v in make_params(rng, 2, 3).items()}
    for lam in LAMS:
        out, _ = res.residual_block_forward(x, params, lam)
        np.testing.assert_allclose(out, lam * x, atol=EXACT)


@pytest.mark.task4_1
def test_residual_forward_default_lam_is_one(res):
    rng = np.random.default_rng(1)
    x, params = rng.normal(size=(1, 2, 4, 4)), make_params(rng, 2, 2)
    assert rel(res.residual_block_forward(x, params)[0], block(x, params, 1.0)) < EXACT


def cache_by_hand(res, x, params, lam):
    """The documented cache, built from provided pieces only: (lam, conv1, relu, conv2)."""
    a, c1 = res.same_conv_forward(x, params["w1"], params["b1"])
    r, rc = res.relu_forward(a)
    _, c2 = res.same_conv_forward(r, params["w2"], params["b2"])
    return (lam, c1, rc, c2)


@pytest.mark.task4_2
@settings(max_examples=20, deadline=None)
@given(cfg=block_configs())
def test_residual_backward_equals_finite_differences(res, cfg):
    x, params, lam = cfg
    dout = np.random.default_rng(0).normal(size=x.shape)
    dx, grads = res.residual_block_backward(dout, cache_by_hand(res, x, params, lam))
    assert rel(dx, oracles.numeric_grad(lambda v: block(v, params, lam), x, dout)) < NUMERIC
    assert set(grads) == {"w1", "b1", "w2", "b2"}
    for name in grads:

        def f(v, name=name):
            return block(x, {**params, name: v}, lam)

        assert grads[name].shape == params[name].shape
        assert rel(grads[name], oracles.numeric_grad(f, params[name].copy(), dout)) < NUMERIC, name


@pytest.mark.task4_2
def test_residual_backward_skip_term_is_exactly_lam_dout(res):
    # dL/dx = dL/dH (dF/dx + lam): changing lam alone changes dx by exactly (lam' - lam) dout.
    rng = np.random.default_rng(2)
    x, params = rng.normal(size=(1, 2, 5, 4)), make_params(rng, 2, 3)
    dout = rng.normal(size=x.shape)
    dx0, _ = res.residual_block_backward(dout, cache_by_hand(res, x, params, 0.0))
    for lam in LAMS:
        dx, _ = res.residual_block_backward(dout, cache_by_hand(res, x, params, lam))
        np.testing.assert_allclose(dx - dx0, lam * dout, atol=1e-12)
