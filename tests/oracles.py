"""Independent references for the tests: none of this calls cnnlab.

Tolerances: float64 throughout; ``rel`` is a norm-wise relative error, ``|a-b| / (|a|+|b|)``.
Analytic results agree with these oracles to ~1e-14; centred finite differences to ~1e-9.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

EXACT = 1e-12  # two exact computations of the same quantity in float64
NUMERIC = 1e-7  # an analytic gradient against centred differences (h = 1e-5)


def rel(a, b) -> float:
    """Norm-wise relative error; 0 when both are zero."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    scale = np.linalg.norm(a) + np.linalg.norm(b)
    return 0.0 if scale == 0 else float(np.linalg.norm(a - b) / scale)


def conv2d(x, w, b, stride=1, pad=0):
    """Cross-correlation layer through scipy.signal.correlate, then subsampled by the stride."""
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    N, K = x.shape[0], w.shape[0]
    full = np.stack(
        [np.stack([signal.correlate(xp[n], w[k], mode="valid")[0] for k in range(K)]) for n in range(N)]
    )
    return full[:, :, ::stride, ::stride] + b[None, :, None, None]


def maxpool2d(x, size, stride):
    """Max pooling through sliding windows."""
    win = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))
    return win[:, :, ::stride, ::stride].max(axis=(4, 5))


def numeric_grad(f, x, dout, h=1e-5):
    """Centred differences of sum(f(x) * dout) with respect to x (x is restored)."""
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        x[i] = old + h
        plus = np.sum(f(x) * dout)
        x[i] = old - h
        minus = np.sum(f(x) * dout)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad
