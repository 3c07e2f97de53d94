"""Tasks 1.1 (conv_output_size), 1.2 (conv1d), 1.3 (conv_matrix); the provided correlate1d and pad2d."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from oracles import EXACT, rel

MODES = ["full", "same", "valid"]


@pytest.mark.task1_1
@pytest.mark.parametrize(
    ("n", "f", "stride", "pad", "m"),
    [
        (32, 5, 1, 0, 28),  # CS231n: 32x32 input, 5x5 filter
        (32, 5, 1, 2, 32),  # P = (F-1)/2 keeps the size
        (7, 3, 2, 0, 3),  # (7-3)/2 + 1
        (7, 3, 3, 0, 2),  # S does not divide N-F: the last partial window is dropped
        (5, 5, 1, 0, 1),  # the filter covers the input once
        (1, 3, 1, 1, 1),  # only the padding makes it fit
        (224, 11, 4, 2, 55),  # AlexNet's first layer
    ],
)
def test_conv_output_size_hand_worked(cn, n, f, stride, pad, m):
    assert cn.conv.conv_output_size(n, f, stride, pad) == m


@pytest.mark.task1_1
@settings(max_examples=200, deadline=None)
@given(n=st.integers(1, 40), f=st.integers(1, 12), stride=st.integers(1, 5), pad=st.integers(0, 4))
def test_conv_output_size_counts_windows(cn, n, f, stride, pad):
    if n + 2 * pad < f:
        with pytest.raises(ValueError, match="f"):
            cn.conv.conv_output_size(n, f, stride, pad)
        return
    starts = range(0, n + 2 * pad - f + 1, stride)  # every window that fits, counted one by one
    assert cn.conv.conv_output_size(n, f, stride, pad) == len(starts)


@pytest.mark.task1_1
def test_conv_output_size_defaults(cn):
    assert cn.conv.conv_output_size(10, 3) == 8


@pytest.mark.task1_2
def test_conv1d_hand_worked(cn):
    # h[t] = sum_a x[t-a] w[a] for x = [1, 2, 3], w = [0, 1, 0.5], by hand:
    # h[0] = 0, h[1] = 1, h[2] = 2 + 0.5, h[3] = 3 + 1, h[4] = 1.5
    out = cn.conv.conv1d(np.array([1.0, 2.0, 3.0]), np.array([0.0, 1.0, 0.5]))
    np.testing.assert_allclose(out, [0.0, 1.0, 2.5, 4.0, 1.5], rtol=0, atol=EXACT)


@pytest.mark.task1_2
@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=60, deadline=None)
@given(L=st.integers(1, 12), F=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_conv1d_equals_np_convolve(cn, mode, L, F, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=L), rng.normal(size=F)
    out = cn.conv.conv1d(x, w, mode)
    expected = np.convolve(x, w, mode)
    assert out.shape == expected.shape, f"mode={mode}: shape {out.shape}, np.convolve gives {expected.shape}"
    assert rel(out, expected) < EXACT


@pytest.mark.task1_2
def test_conv1d_is_commutative(cn):
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=9), rng.normal(size=4)
    assert rel(cn.conv.conv1d(x, w), cn.conv.conv1d(w, x)) < EXACT


@pytest.mark.task1_2
def test_conv1d_default_mode_is_full(cn):
    x, w = np.arange(5.0), np.array([1.0, -1.0])
    assert cn.conv.conv1d(x, w).shape == (6,)


@pytest.mark.task1_2
def test_conv1d_does_not_mutate(cn):
    x, w = np.arange(5.0), np.array([1.0, -1.0, 2.0])
    x0, w0 = x.copy(), w.copy()
    cn.conv.conv1d(x, w, "same")
    np.testing.assert_array_equal(x, x0)
    np.testing.assert_array_equal(w, w0)


@pytest.mark.task1_2  # correlate1d is provided, built on the student's conv1d
@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=60, deadline=None)
@given(L=st.integers(1, 10), F=st.integers(1, 10), seed=st.integers(0, 2**32 - 1))
def test_correlate1d_equals_np_correlate(cn, mode, L, F, seed):
    rng = np.random.default_rng(seed)
    x, w = rng.normal(size=L), rng.normal(size=F)
    assert rel(cn.conv.correlate1d(x, w, mode), np.correlate(x, w, mode)) < EXACT


@pytest.mark.task1_2
def test_correlation_is_not_commutative(cn):
    x, w = np.array([1.0, 2.0, 3.0]), np.array([1.0, 0.0, -1.0])
    # by hand, c[t] = sum_a x[t+a] w[a] over every overlap: swapping the arguments reverses the
    # result, so correlation is not commutative (convolution is).
    np.testing.assert_allclose(cn.conv.correlate1d(x, w, "full"), [-1, -2, -2, 2, 3], atol=EXACT)
    np.testing.assert_allclose(cn.conv.correlate1d(w, x, "full"), [3, 2, -2, -2, -1], atol=EXACT)


def _unit_vector_matrix(w, n, mode):
    """The oracle: column j is np.convolve of the unit vector e_j with w."""
    return np.column_stack([np.convolve(np.eye(n)[j], w, mode) for j in range(n)])


@pytest.mark.task1_3
def test_conv_matrix_hand_worked(cn):
    # column j is w = [1, 2, 3] put down from row j: a banded 5 x 3 matrix, by hand
    expected = [[1, 0, 0], [2, 1, 0], [3, 2, 1], [0, 3, 2], [0, 0, 3]]
    T = cn.conv.conv_matrix(np.array([1.0, 2.0, 3.0]), 3)
    assert T.dtype == np.float64
    np.testing.assert_array_equal(T, expected)


@pytest.mark.task1_3
@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=60, deadline=None)
@given(n=st.integers(1, 12), F=st.integers(1, 12), seed=st.integers(0, 2**32 - 1))
def test_conv_matrix_equals_np_convolve_on_unit_vectors(cn, mode, n, F, seed):
    w = np.random.default_rng(seed).normal(size=F)
    T = cn.conv.conv_matrix(w, n, mode)
    expected = _unit_vector_matrix(w, n, mode)
    assert T.shape == expected.shape, f"mode={mode}: shape {T.shape}, expected {expected.shape}"
    assert T.dtype == np.float64
    assert rel(T, expected) < EXACT


@pytest.mark.task1_3
@pytest.mark.parametrize("mode", MODES)
@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 10), F=st.integers(1, 10), seed=st.integers(0, 2**32 - 1))
def test_conv_matrix_times_x_is_the_convolution(cn, mode, n, F, seed):
    rng = np.random.default_rng(seed)
    w, x = rng.normal(size=F), rng.normal(size=n)
    assert rel(cn.conv.conv_matrix(w, n, mode) @ x, np.convolve(x, w, mode)) < EXACT


@pytest.mark.task1_3
@pytest.mark.parametrize(("n", "F"), [(1, 1), (6, 3), (3, 6), (8, 8)])
def test_conv_matrix_full_is_scipys_toeplitz_matrix(cn, n, F):
    from scipy.linalg import toeplitz

    w = np.random.default_rng(n * 100 + F).normal(size=F)
    expected = toeplitz(np.r_[w, np.zeros(n - 1)], np.r_[w[0], np.zeros(n - 1)])
    np.testing.assert_array_equal(cn.conv.conv_matrix(w, n, "full"), expected)


@pytest.mark.task1_3
def test_conv_matrix_default_mode_is_full_and_inputs_stay(cn):
    w = np.array([1.0, -1.0, 2.0])
    w0 = w.copy()
    assert cn.conv.conv_matrix(w, 4).shape == (6, 4)
    np.testing.assert_array_equal(w, w0)


@pytest.mark.task1_3
def test_conv_matrix_transpose_is_the_flipped_full_convolution(cn):
    """The backward pass: for the valid matrix T of w, T.T is the full matrix of w flipped."""
    w = np.array([0.5, -1.0, 2.0])
    T = cn.conv.conv_matrix(w, 7, "valid")
    np.testing.assert_allclose(T.T, _unit_vector_matrix(w[::-1], T.shape[0], "full"), rtol=0, atol=EXACT)


def test_pad2d_pads_only_spatial_axes(cn):
    x = np.arange(2 * 3 * 4 * 5, dtype=float).reshape(2, 3, 4, 5)
    x0 = x.copy()
    out = cn.conv.pad2d(x, 2, value=-1.0)
    assert out.shape == (2, 3, 8, 9)
    np.testing.assert_array_equal(out[:, :, 2:6, 2:7], x)
    border = np.ones(out.shape, bool)
    border[:, :, 2:6, 2:7] = False
    assert np.all(out[border] == -1.0)
    np.testing.assert_array_equal(x, x0)
    assert cn.conv.pad2d(x, 0) is not x
