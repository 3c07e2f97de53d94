"""Shift equivariance and invariance, measured.

A map f is *equivariant* to shifts when shifting the input shifts the output the same way,
``f(shift(x)) = shift(f(x))``, and *invariant* when the output does not move at all,
``f(shift(x)) = f(x)``. Convolution is equivariant (exactly so with circular padding); pooling
buys some invariance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

_SHIFT_MODES = ("circular", "zero")


def shift2d(x: np.ndarray, dy: int, dx: int, mode: str = "circular") -> np.ndarray:
    """Shift the last two axes of ``x`` by ``dy`` rows (down) and ``dx`` columns (right).

    ``mode="circular"`` wraps what leaves one side around to the other (``np.roll``);
    ``mode="zero"`` drops it and fills the vacated rows and columns with zeros.
    Works for any array with at least two axes; returns a new array of the same shape.
    """
    x = np.asarray(x)
    if x.ndim < 2:
        raise ValueError(f"x must have at least 2 axes (..., H, W), got shape {x.shape}")
    if mode not in _SHIFT_MODES:
        raise ValueError(f"mode must be one of {_SHIFT_MODES}, got mode={mode!r}")
    if mode == "circular":
        return np.roll(x, (dy, dx), axis=(-2, -1))
    H, W = x.shape[-2:]
    out = np.zeros_like(x)
    if abs(dy) >= H or abs(dx) >= W:
        return out
    src_r = slice(max(-dy, 0), H - max(dy, 0))
    dst_r = slice(max(dy, 0), H - max(-dy, 0))
    src_c = slice(max(-dx, 0), W - max(dx, 0))
    dst_c = slice(max(dx, 0), W - max(-dx, 0))
    out[..., dst_r, dst_c] = x[..., src_r, src_c]
    return out


def _relative(num: np.ndarray, den: np.ndarray) -> float:
    scale = float(np.linalg.norm(den))
    if scale == 0.0:
        raise ValueError("f(x) is zero everywhere: the relative error is undefined")
    return float(np.linalg.norm(num)) / scale


def equivariance_error(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dy: int, dx: int, mode: str = "circular"
) -> float:
    """``norm(f(shift(x)) - shift(f(x))) / norm(f(x))``: 0 for a shift-equivariant f.

    The same ``shift2d(., dy, dx, mode)`` is applied to the input and to the output, so f must
    keep the spatial size (stride 1, "same" padding) for the comparison to mean anything.
    """
    fx = f(x)
    return _relative(f(shift2d(x, dy, dx, mode)) - shift2d(fx, dy, dx, mode), fx)


def invariance_error(
    f: Callable[[np.ndarray], np.ndarray], x: np.ndarray, dy: int, dx: int, mode: str = "circular"
) -> float:
    """``norm(f(shift(x)) - f(x)) / norm(f(x))``: 0 for a shift-invariant f."""
    fx = f(x)
    return _relative(f(shift2d(x, dy, dx, mode)) - fx, fx)


def blur_kernel(size: int = 3) -> np.ndarray:
    """A normalised binomial low-pass filter of shape (size, size), e.g. [1, 2, 1]^T [1, 2, 1] / 16.

    Blurring before subsampling is the anti-aliasing of Zhang (2019), "Making Convolutional
    Networks Shift-Invariant Again".
    """
    if size < 1:
        raise ValueError(f"size must be >= 1, got size={size}")
    row = np.array([1.0])
    for _ in range(size - 1):
        row = np.convolve(row, [1.0, 1.0])
    k = np.outer(row, row)
    return k / k.sum()


def blur2d(x: np.ndarray, size: int = 3, mode: str = "circular") -> np.ndarray:
    """Blur each channel of ``x`` (N, C, H, W) with :func:`blur_kernel`, keeping the shape.

    ``mode="circular"`` wraps at the border (keeps exact shift equivariance); ``"zero"`` pads zeros.
    """
    x = np.asarray(x, dtype=float)
    if x.ndim != 4:
        raise ValueError(f"x must be a 4-D array (N, C, H, W), got shape {x.shape}")
    k = blur_kernel(size)
    r = size // 2
    out = np.zeros_like(x)
    for p in range(size):
        for q in range(size):
            out += k[p, q] * shift2d(x, r - p, r - q, mode)
    return out
