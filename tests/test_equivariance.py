"""The provided shift and equivariance tools, and the facts notebook 03 teaches."""

from __future__ import annotations

import numpy as np
import oracles
import pytest


def test_shift2d_circular_is_roll(cn):
    x = np.arange(12.0).reshape(1, 3, 4)
    np.testing.assert_array_equal(cn.equivariance.shift2d(x, 1, -1), np.roll(x, (1, -1), axis=(1, 2)))


def test_shift2d_zero_fills_by_hand(cn):
    x = np.array([[1.0, 2.0], [3.0, 4.0]])
    np.testing.assert_array_equal(cn.equivariance.shift2d(x, 1, 0, "zero"), [[0, 0], [1, 2]])
    np.testing.assert_array_equal(cn.equivariance.shift2d(x, 0, -1, "zero"), [[2, 0], [4, 0]])
    np.testing.assert_array_equal(cn.equivariance.shift2d(x, 5, 0, "zero"), np.zeros((2, 2)))


def test_circular_convolution_is_exactly_equivariant(cn):
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(1, 2, 8, 9)), rng.normal(size=(3, 2, 3, 3))

    def f(v):  # circular padding: wrap the image, then a valid correlation
        return oracles.conv2d(np.pad(v, ((0, 0), (0, 0), (1, 1), (1, 1)), mode="wrap"), w, np.zeros(3))

    for dy, dx in [(0, 1), (2, 3), (-4, 5)]:
        assert cn.equivariance.equivariance_error(f, x, dy, dx) < 1e-14


def test_zero_padding_breaks_equivariance_only_at_the_border(cn):
    rng = np.random.default_rng(1)
    x, w = rng.normal(size=(1, 1, 10, 10)), rng.normal(size=(1, 1, 3, 3))

    def f(v):
        return oracles.conv2d(v, w, np.zeros(1), pad=1)

    assert cn.equivariance.equivariance_error(f, x, 1, 0, "zero") > 1e-3
    diff = f(cn.equivariance.shift2d(x, 1, 0, "zero")) - cn.equivariance.shift2d(f(x), 1, 0, "zero")
    assert np.abs(diff[..., 2:-1, :]).max() < 1e-12  # the interior agrees exactly


def test_invariance_error_of_global_pooling_is_zero_for_circular_shifts(cn):
    x = np.random.default_rng(2).normal(size=(1, 3, 6, 6))
    assert cn.equivariance.invariance_error(lambda v: v.mean(axis=(2, 3)), x, 2, 5) < 1e-14
    assert cn.equivariance.invariance_error(lambda v: v, x, 0, 1) > 0.5


def test_errors_on_zero_output(cn):
    with pytest.raises(ValueError, match="zero"):
        cn.equivariance.equivariance_error(lambda v: 0 * v, np.ones((2, 2)), 0, 1)


def test_blur_kernel_is_binomial_and_normalised(cn):
    np.testing.assert_allclose(cn.equivariance.blur_kernel(3), np.outer([1, 2, 1], [1, 2, 1]) / 16)
    blurred = cn.equivariance.blur2d(np.random.default_rng(3).normal(size=(1, 1, 5, 6)))
    assert blurred.shape == (1, 1, 5, 6)
    const = cn.equivariance.blur2d(np.full((1, 1, 4, 4), 2.0))
    np.testing.assert_allclose(const, 2.0)
