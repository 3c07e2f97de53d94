"""Max and average pooling over the spatial axes of (N, C, H, W) arrays.

A pooling window of ``size`` x ``size`` moves with step ``stride`` (default: ``size``, so windows
tile the image without overlap). The output size along an axis of length n is
``(n - size) // stride + 1`` (no padding; a last partial window is dropped, as in PyTorch).
Pooling acts on each channel separately, so C is unchanged.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._internal.validate import check_int as _check_int

Cache = tuple[Any, ...]


def pool_output_shape(x: np.ndarray, size: int, stride: int | None) -> tuple[int, int, int]:
    """Validate pooling arguments; return ``(stride, Ho, Wo)``.

    Raises ``ValueError`` naming the argument: ``x`` must be 4-D (N, C, H, W), ``size >= 1``,
    ``stride >= 1`` (``None`` means ``stride = size``), and the window must fit in H and W.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(f"x must be a 4-D array (N, C, H, W), got shape {np.shape(x)}")
    size = _check_int("size", size, 1)
    stride = size if stride is None else _check_int("stride", stride, 1)
    H, W = x.shape[2:]
    if size > H or size > W:
        raise ValueError(f"pool size={size} is larger than the input H={H} or W={W}")
    return stride, (H - size) // stride + 1, (W - size) // stride + 1


def maxpool2d_forward(x: np.ndarray, size: int = 2, stride: int | None = None) -> tuple[np.ndarray, Cache]:
    """Max pooling: ``out[n, c, i, j] = max of x[n, c, i*stride : i*stride+size, j*stride : j*stride+size]``.

    Args:
        x: input, shape (N, C, H, W).
        size: side of the square pooling window.
        stride: step between windows; ``None`` means ``size`` (non-overlapping windows).

    Returns:
        out: shape (N, C, Ho, Wo), Ho = (H - size) // stride + 1, Wo = (W - size) // stride + 1.
        cache: ``(x, size, stride)`` for :func:`maxpool2d_backward` (stride already resolved to an int).

    Raises:
        ValueError: (written for you: :func:`pool_output_shape`, above the TODO) with a message that
            contains "x must be a 4-D array", "size must be >= 1", "stride must be >= 1" or
            "pool size=<size> is larger than the input".

    Equal to ``torch.nn.functional.max_pool2d(x, size, stride)``. ``x`` is never modified.
    """
    stride, Ho, Wo = pool_output_shape(x, size, stride)
    ### BEGIN SOLUTION
    N, C, _, _ = x.shape
    out = np.empty((N, C, Ho, Wo), dtype=x.dtype)
    for i in range(Ho):
        for j in range(Wo):
            window = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size]
            out[:, :, i, j] = window.max(axis=(2, 3))
    return out, (x, size, stride)
    ### END SOLUTION


def maxpool2d_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Backward pass of :func:`maxpool2d_forward`.

    Args:
        dout: upstream gradient, shape (N, C, Ho, Wo).
        cache: ``(x, size, stride)`` from the forward pass.

    Returns:
        dx: shape (N, C, H, W). Each window's gradient ``dout[n, c, i, j]`` goes to one element
        only: the *first* maximal element of the window in row-major order (PyTorch's rule when
        several elements tie for the maximum). Where windows overlap (stride < size) an element
        can be the maximum of several windows, and its gradients add up.
    """
    ### BEGIN SOLUTION
    x, size, stride = cache
    N, C, _, _ = x.shape
    _, _, Ho, Wo = dout.shape
    dx = np.zeros_like(x, dtype=np.result_type(x, dout))
    n_idx, c_idx = np.meshgrid(np.arange(N), np.arange(C), indexing="ij")
    for i in range(Ho):
        for j in range(Wo):
            window = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size]
            # argmax of the flattened window returns the first maximum in row-major order
            first = window.reshape(N, C, -1).argmax(axis=2)
            p, q = np.unravel_index(first, (size, size))
            # np.add.at would also do; each (n, c) pair appears once per window, so += is safe here
            dx[n_idx, c_idx, i * stride + p, j * stride + q] += dout[:, :, i, j]
    return dx
    ### END SOLUTION


def avgpool2d_forward(x: np.ndarray, size: int = 2, stride: int | None = None) -> tuple[np.ndarray, Cache]:
    """Average pooling: the mean of each ``size`` x ``size`` window.

    Shapes and cache as in :func:`maxpool2d_forward`: out (N, C, Ho, Wo), cache ``(x.shape, size,
    stride)``. Equal to ``torch.nn.functional.avg_pool2d(x, size, stride)``.
    """
    stride, Ho, Wo = pool_output_shape(x, size, stride)
    windows = np.lib.stride_tricks.sliding_window_view(x, (size, size), axis=(2, 3))
    out = windows[:, :, ::stride, ::stride].mean(axis=(4, 5))
    return out, (x.shape, size, stride)


def avgpool2d_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Backward pass of :func:`avgpool2d_forward`: each window spreads ``dout / size**2`` evenly.

    Returns dx of shape (N, C, H, W); overlapping windows add up.
    """
    shape, size, stride = cache
    _, _, Ho, Wo = dout.shape
    dx = np.zeros(shape, dtype=dout.dtype)
    share = dout / (size * size)
    for p in range(size):
        for q in range(size):
            dx[:, :, p : p + stride * Ho : stride, q : q + stride * Wo : stride] += share
    return dx


def global_avgpool_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Global average pooling: the mean over H and W. x (N, C, H, W) -> out (N, C); cache x.shape."""
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(f"x must be a 4-D array (N, C, H, W), got shape {np.shape(x)}")
    return x.mean(axis=(2, 3)), x.shape


def global_avgpool_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Backward of :func:`global_avgpool_forward`: dout (N, C) -> dx (N, C, H, W)."""
    N, C, H, W = cache
    return np.broadcast_to(dout[:, :, None, None] / (H * W), (N, C, H, W)).copy()
