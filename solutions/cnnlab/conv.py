"""Convolution from its definition, and the convolution layer.

Conventions (as in CS231n's ``layers.py``):

* images are NCHW: ``x`` has shape (N, C, H, W) — N images, C channels, height H, width W;
* a layer of K filters has weights ``w`` of shape (K, C, FH, FW) and biases ``b`` of shape (K,);
* every ``*_forward`` returns ``(out, cache)`` and every ``*_backward`` takes ``(dout, cache)``.

The output size along one axis, for input size n, filter size f, stride s and zero padding p, is

    M = floor((n + 2p - f) / s) + 1

as PyTorch computes it: when s does not divide n + 2p - f the last partial window is dropped.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._internal.validate import check_conv_args
from ._internal.validate import check_int as _check_int

Cache = tuple[Any, ...]

_MODES = ("full", "same", "valid")


def conv_output_size(n: int, f: int, stride: int = 1, pad: int = 0) -> int:
    """Output length of a convolution along one axis: ``floor((n + 2*pad - f) / stride) + 1``.

    Args:
        n: input length (N in the course notes), >= 1.
        f: filter length (F), >= 1.
        stride: step between windows (S), >= 1.
        pad: zeros added at each end (P), >= 0.

    Returns:
        M, the number of windows of length f that fit in the padded input of length n + 2*pad
        when they start at 0, stride, 2*stride, ... A last partial window is dropped.

    Raises:
        ValueError: with a message that contains the words in quotes, when

            * n, f, stride or pad is not an integer: "n must be an integer" (with that argument's
              name: "f must be an integer", ...);
            * n < 1: "n must be >= 1"; f < 1: "f must be >= 1";
            * stride < 1: "stride must be >= 1"; pad < 0: "pad must be >= 0";
            * the filter does not fit in the padded input, f > n + 2*pad: "f=<f> is larger than the
              padded input", e.g. "f=5 is larger than the padded input".

        The helper ``_check_int`` above does the integer and range rules for you, e.g.
        ``n = _check_int("n", n, 1)``; the visible check and ``pytest -m task1_1`` test every rule.
    """
    ### BEGIN SOLUTION
    n = _check_int("n", n, 1)
    f = _check_int("f", f, 1)
    stride = _check_int("stride", stride, 1)
    pad = _check_int("pad", pad, 0)
    if n + 2 * pad < f:
        raise ValueError(
            f"filter size f={f} is larger than the padded input n + 2*pad = {n} + 2*{pad} = {n + 2 * pad}"
        )
    return (n + 2 * pad - f) // stride + 1
    ### END SOLUTION


def _check_1d(x: np.ndarray, w: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x)
    w = np.asarray(w)
    if x.ndim != 1 or x.size == 0:
        raise ValueError(f"x must be a non-empty 1-D array, got shape {x.shape}")
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"w must be a non-empty 1-D array, got shape {w.shape}")
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got mode={mode!r}")
    return x, w


def conv1d(x: np.ndarray, w: np.ndarray, mode: str = "full") -> np.ndarray:
    """True 1-D convolution, by its definition ``h[t] = sum_a x[t - a] w[a]``.

    Terms with ``t - a`` outside ``0 .. len(x)-1`` are zero. Equal to ``np.convolve(x, w, mode)``.

    Args:
        x: signal, shape (L,).
        w: filter, shape (F,).
        mode: which part of the full result to return, as in ``np.convolve``:

            * ``"full"``: every t where the signals overlap, shape (L + F - 1,);
            * ``"same"``: shape (max(L, F),), centred on the full result;
            * ``"valid"``: only where one signal lies entirely inside the other,
              shape (max(L, F) - min(L, F) + 1,).

    Returns:
        h with the shape given by ``mode``.

    Raises:
        ValueError: (the argument checks are written for you, above the TODO) with a message that
            contains "x must be a non-empty 1-D array", "w must be a non-empty 1-D array" or
            "mode must be one of ('full', 'same', 'valid')".
    """
    x, w = _check_1d(x, w, mode)
    ### BEGIN SOLUTION
    L, F = len(x), len(w)
    full = np.zeros(L + F - 1, dtype=np.result_type(x, w))
    for t in range(L + F - 1):
        for a in range(F):
            if 0 <= t - a < L:
                full[t] += x[t - a] * w[a]
    if mode == "full":
        return full
    if mode == "same":
        size = max(L, F)
        start = (L + F - 1 - size) // 2
        return full[start : start + size]
    size = max(L, F) - min(L, F) + 1
    start = min(L, F) - 1
    return full[start : start + size]
    ### END SOLUTION


def correlate1d(x: np.ndarray, w: np.ndarray, mode: str = "valid") -> np.ndarray:
    """1-D cross-correlation ``c[t] = sum_a x[t + a] w[a]``: what deep-learning "conv" layers compute.

    Cross-correlation is convolution with the filter flipped, ``correlate1d(x, w) ==
    conv1d(x, w[::-1])``. Equal to ``np.correlate(x, w, mode)``; shapes as in :func:`conv1d`.
    """
    x, w = _check_1d(x, w, mode)
    if len(w) > len(x):
        # np.correlate swaps the roles of a filter longer than the signal and reverses the
        # result; that only moves the window "same" mode keeps, and we follow it.
        return conv1d(w, x[::-1], mode)[::-1]
    return conv1d(x, w[::-1], mode)


def _check_matrix_args(w: np.ndarray, n: int, mode: str) -> tuple[np.ndarray, int]:
    w = np.asarray(w)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"w must be a non-empty 1-D array, got shape {w.shape}")
    n = _check_int("n", n, 1)
    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got mode={mode!r}")
    return w, n


def conv_matrix(w: np.ndarray, n: int, mode: str = "full") -> np.ndarray:
    """The matrix ``T`` of the convolution with ``w``: ``T @ x == conv1d(x, w, mode)`` for every ``x``
    of length ``n``.

    Column ``j`` of ``T`` is ``conv1d(e_j, w, mode)`` for the unit vector ``e_j``: the filter ``w`` put
    down at row ``j`` of the full result, so every row holds the same ``F`` numbers, shifted by one
    from the row above (a banded, Toeplitz matrix; all other entries are zero). ``mode`` keeps the rows
    of the full result that ``conv1d`` keeps.

    Args:
        w: filter, shape (F,).
        n: length of the signals ``x`` the matrix applies to, an int >= 1.
        mode: ``"full"``, ``"same"`` or ``"valid"``, as in :func:`conv1d`.

    Returns:
        T: float64 array of shape (m, n), with m the length of ``conv1d(x, w, mode)`` for ``len(x) == n``:
        n + F - 1 (full), max(n, F) (same), max(n, F) - min(n, F) + 1 (valid).

    Raises:
        ValueError: (the argument checks are written for you, above the TODO) with a message that
            contains "w must be a non-empty 1-D array", "n must be an integer", "n must be >= 1" or
            "mode must be one of ('full', 'same', 'valid')".
    """
    w, n = _check_matrix_args(w, n, mode)
    ### BEGIN SOLUTION
    F = len(w)
    full = np.zeros((n + F - 1, n))
    for j in range(n):
        full[j : j + F, j] = w
    if mode == "same":
        size = max(n, F)
        start = (n + F - 1 - size) // 2
    elif mode == "valid":
        size = max(n, F) - min(n, F) + 1
        start = min(n, F) - 1
    else:
        size, start = n + F - 1, 0
    return full[start : start + size]
    ### END SOLUTION


def pad2d(x: np.ndarray, pad: int, value: float = 0.0) -> np.ndarray:
    """Pad the two spatial axes of ``x`` (N, C, H, W) with ``pad`` entries of ``value`` on each side.

    Returns a new array of shape (N, C, H + 2*pad, W + 2*pad); the batch and channel axes are
    never padded and ``x`` is never modified.
    """
    x = np.asarray(x)
    if x.ndim != 4:
        raise ValueError(f"x must have 4 axes (N, C, H, W), got shape {x.shape}")
    pad = _check_int("pad", pad, 0)
    return np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)), mode="constant", constant_values=value)


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, Cache]:
    """Forward pass of a convolution layer (cross-correlation, as deep-learning layers compute it).

    ``out[n, k, i, j] = b[k] + sum_{c, p, q} xp[n, c, i*stride + p, j*stride + q] * w[k, c, p, q]``
    where ``xp`` is ``x`` zero-padded by ``pad`` on both spatial axes. Each filter spans the full
    depth C; K filters give K activation maps. Equal to ``torch.nn.functional.conv2d(x, w, b,
    stride, pad)``.

    Args:
        x: input, shape (N, C, H, W).
        w: filters, shape (K, C, FH, FW); FH and FW may differ.
        b: biases, shape (K,).
        stride: step between windows, >= 1.
        pad: zeros added on each side of H and W, >= 0.

    Returns:
        out: shape (N, K, Ho, Wo) with Ho = (H + 2*pad - FH) // stride + 1 and
            Wo = (W + 2*pad - FW) // stride + 1.
        cache: ``(x, w, b, stride, pad)`` for :func:`conv2d_backward`.

    Raises:
        ValueError: (written for you: :func:`check_conv_args`, above the TODO) with a message that
            contains "x must be a 4-D array", "w must be a 4-D array", "w has C=<C of w> channels but
            x has C=<C of x>", "b must have shape (K,)", "stride must be >= 1", "pad must be >= 0",
            "filter height FH=<FH> is larger" or "filter width FW=<FW> is larger" (than the padded input).

    ``x`` is never modified.
    """
    Ho, Wo = check_conv_args(x, w, b, stride, pad)
    ### BEGIN SOLUTION
    N, _, _, _ = x.shape
    K, _, FH, FW = w.shape
    xp = pad2d(x, pad)
    out = np.empty((N, K, Ho, Wo), dtype=np.result_type(x, w, b))
    for i in range(Ho):
        for j in range(Wo):
            window = xp[:, :, i * stride : i * stride + FH, j * stride : j * stride + FW]
            # (N, C, FH, FW) x (K, C, FH, FW) -> (N, K)
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    cache = (x, w, b, stride, pad)
    return out, cache
    ### END SOLUTION


def conv2d_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv2d_forward`.

    Args:
        dout: upstream gradient dL/dout, shape (N, K, Ho, Wo).
        cache: ``(x, w, b, stride, pad)`` from the forward pass.

    Returns:
        dx: dL/dx, shape (N, C, H, W) (the padding's gradient is cropped away);
        dw: dL/dw, shape (K, C, FH, FW);
        db: dL/db, shape (K,).

    Each output entry used one window of the padded input, so its gradient flows back to that
    window: ``dxp[window(i, j)] += sum_k dout[:, k, i, j] w[k]`` and
    ``dw[k] += sum_n dout[n, k, i, j] xp[n, window(i, j)]``. Seen as a whole, dx is a *full*
    convolution of dout with the flipped filters, and dw a correlation of x with dout.
    """
    ### BEGIN SOLUTION
    x, w, b, stride, pad = cache
    _, _, FH, FW = w.shape
    _, _, Ho, Wo = dout.shape
    xp = pad2d(x, pad)
    dxp = np.zeros_like(xp, dtype=np.result_type(xp, w, dout))
    dw = np.zeros_like(w, dtype=np.result_type(xp, w, dout))
    db = dout.sum(axis=(0, 2, 3))
    for i in range(Ho):
        for j in range(Wo):
            rows = slice(i * stride, i * stride + FH)
            cols = slice(j * stride, j * stride + FW)
            g = dout[:, :, i, j]  # (N, K)
            # (N, K) x (K, C, FH, FW) -> (N, C, FH, FW); += because windows overlap
            dxp[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))
            # (N, K) x (N, C, FH, FW) -> (K, C, FH, FW)
            dw += np.tensordot(g, xp[:, :, rows, cols], axes=([0], [0]))
    H, W = x.shape[2:]
    dx = dxp[:, :, pad : pad + H, pad : pad + W]
    return dx, dw, db
    ### END SOLUTION
