"""Numerical gradients and relative errors, for checking backward passes (provided)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


def numerical_gradient(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dout: np.ndarray, h: float = 1e-5
) -> np.ndarray:
    """Centred-difference gradient of ``L(x) = sum(f(x) * dout)`` with respect to ``x``.

    ``dL/dx[i] ~ (L(x + h e_i) - L(x - h e_i)) / (2h)``, an O(h^2) approximation. ``x`` is
    perturbed in place and restored, so pass float64 arrays; ``f`` may return any shape matching
    ``dout``. Returns an array shaped like ``x``.
    """
    x = np.asarray(x)
    if x.dtype != np.float64:
        raise ValueError(f"x must be float64 for finite differences, got dtype {x.dtype}")
    grad = np.zeros_like(x)
    it = np.nditer(x, flags=["multi_index"], op_flags=[["readwrite"]])
    for _ in it:
        i = it.multi_index
        old = x[i]
        x[i] = old + h
        plus = np.sum(f(x) * dout)
        x[i] = old - h
        minus = np.sum(f(x) * dout)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """CS231n's relative error ``max |a - b| / max(1e-8, |a| + |b|)``, elementwise, then the max.

    Around 1e-7 or below for a correct backward pass checked with :func:`numerical_gradient` in float64;
    1e-2 or more means a bug.
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        raise ValueError(f"a and b must have the same shape, got {a.shape} and {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))
