"""The provided gradient checker, on functions whose gradients are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest


def test_numerical_gradient_of_a_polynomial(cn):
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    dout = np.array([[1.0, 2.0], [3.0, 4.0]])
    # L = sum(x^3 * dout): dL/dx = 3 x^2 dout
    grad = cn.gradcheck.numerical_gradient(lambda v: v**3, x, dout)
    np.testing.assert_allclose(grad, 3 * x**2 * dout, rtol=1e-8)
    np.testing.assert_array_equal(x, [[1.0, -2.0], [0.5, 3.0]])  # restored


def test_numerical_gradient_needs_float64(cn):
    with pytest.raises(ValueError, match="float64"):
        cn.gradcheck.numerical_gradient(lambda v: v, np.ones(2, dtype=np.float32), np.ones(2))


def test_rel_error_by_hand(cn):
    assert cn.gradcheck.rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert cn.gradcheck.rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    assert cn.gradcheck.rel_error(np.zeros(2), np.zeros(2)) == 0.0
    with pytest.raises(ValueError, match="shape"):
        cn.gradcheck.rel_error(np.zeros(2), np.zeros(3))
