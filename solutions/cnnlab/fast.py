"""A fast convolution layer: im2col plus one matrix product (provided, not a task).

The loops in ``conv.py`` say what a convolution layer computes; this module computes the same numbers
the way real libraries do. Every window of the padded input is copied into one column of a matrix
(*im2col*), and then all K filters meet all windows in a single matrix product, which numpy hands to
its BLAS library.

Conventions (as in CS231n's ``fast_layers.py``):

* images are NCHW: ``x`` has shape (N, C, H, W); a layer of K filters has weights ``w`` of shape
  (K, C, FH, FW) (FH and FW may differ) and biases ``b`` of shape (K,);
* with stride S and zero padding P the output has shape (N, K, Ho, Wo) with

      Ho = (H + 2P - FH) // S + 1        Wo = (W + 2P - FW) // S + 1

  (PyTorch's rule: a last partial window is dropped);
* the layer is a cross-correlation (filters are not flipped), exactly
  ``torch.nn.functional.conv2d(x, w, b, stride, pad)``;
* ``conv2d_forward`` returns ``(out, cache)`` and ``conv2d_backward`` takes ``(dout, cache)``, with the
  same signatures and results as ``cnnlab.conv.conv2d_forward`` / ``conv2d_backward``.

The column matrix has shape (C*FH*FW, N*Ho*Wo): row ``(c*FH + p)*FW + q`` matches entry ``[c, p, q]``
of a filter, the same order as ``w.reshape(K, -1)``, and column ``(n*Ho + i)*Wo + j`` is the window
under output pixel (i, j) of image n. So the whole layer is

    out = w.reshape(K, C*FH*FW) @ cols + b        # (K, N*Ho*Wo), then arranged as (N, K, Ho, Wo)

and, with ``dout`` arranged as a (K, N*Ho*Wo) matrix ``g`` in the same column order, its backward pass
is two more matrix products, ``dw = g @ cols.T`` and ``dcols = w.reshape(K, -1).T @ g``, followed by
*col2im*, which adds every column of ``dcols`` back onto the window it came from.

The forward pass's cache is ``(x, w, b, stride, pad, cols)``: it keeps the column matrix, about
FH*FW/stride**2 times the size of x, so that the backward pass need not build it again.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .conv import check_conv_args

Cache = tuple[Any, ...]

__all__ = ["col2im", "conv2d_backward", "conv2d_forward", "im2col"]


def _out_size(n: int, f: int, stride: int, pad: int) -> int:
    """Output length along one axis: ``(n + 2*pad - f) // stride + 1``."""
    return (n + 2 * pad - f) // stride + 1


def _pad(x: np.ndarray, pad: int, dtype: np.dtype) -> np.ndarray:
    """``x`` (N, C, H, W) zero-padded by ``pad`` on both spatial axes, as a new array of ``dtype``."""
    N, C, H, W = x.shape
    xp = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=dtype)
    xp[:, :, pad : pad + H, pad : pad + W] = x
    return xp


def _im2col(x: np.ndarray, fh: int, fw: int, stride: int, pad: int, dtype: np.dtype) -> np.ndarray:
    """:func:`im2col` without the argument checks."""
    N, C, _, _ = x.shape
    xp = _pad(x, pad, dtype) if pad > 0 else x
    # A view, no copy: windows[n, c, i, j] is the (fh, fw) patch of xp whose top-left corner is
    # (i*stride, j*stride). Slicing with ::stride keeps exactly Ho rows and Wo columns of windows.
    windows = sliding_window_view(xp, (fh, fw), axis=(2, 3))[:, :, ::stride, ::stride]
    _, _, Ho, Wo, _, _ = windows.shape
    # (N, C, Ho, Wo, fh, fw) -> (C, fh, fw, N, Ho, Wo), copied once into a contiguous array.
    cols = np.ascontiguousarray(windows.transpose(1, 4, 5, 0, 2, 3), dtype=dtype)
    return cols.reshape(C * fh * fw, N * Ho * Wo)


def im2col(x: np.ndarray, fh: int, fw: int, stride: int = 1, pad: int = 0) -> np.ndarray:
    """Unroll every (fh, fw) window of the zero-padded input into one column of a matrix.

    Args:
        x: input, shape (N, C, H, W). Not modified.
        fh, fw: window (filter) height and width, >= 1.
        stride: step between windows, >= 1.
        pad: zeros added on each side of H and W, >= 0.

    Returns:
        cols, shape (C*fh*fw, N*Ho*Wo) with Ho = (H + 2*pad - fh) // stride + 1 and
        Wo = (W + 2*pad - fw) // stride + 1, a new C-contiguous array of x's dtype::

            cols[(c*fh + p)*fw + q, (n*Ho + i)*Wo + j] == xp[n, c, i*stride + p, j*stride + q]

        where xp is x zero-padded by ``pad``. Column ``(n*Ho + i)*Wo + j`` is the window under output
        pixel (i, j) of image n, flattened in (c, p, q) order like one filter ``w[k].ravel()``, so
        ``w.reshape(K, -1) @ cols`` computes every output of a convolution layer at once. An input
        pixel appears in up to fh*fw columns: cols is about fh*fw/stride**2 times larger than x.

    Raises:
        ValueError: naming the argument, as for :func:`conv2d_forward`.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(f"x must be a 4-D array (N, C, H, W), got shape {np.shape(x)}")
    for name, size in (("fh", fh), ("fw", fw)):
        if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {name}={size!r}")
    # Same rules as the layer (stride >= 1, pad >= 0, window no larger than the padded input).
    w_like = np.broadcast_to(np.zeros((), dtype=x.dtype), (1, x.shape[1], fh, fw))
    check_conv_args(x, w_like, np.zeros(1), stride, pad)
    return _im2col(x, int(fh), int(fw), int(stride), int(pad), x.dtype)


def col2im(
    cols: np.ndarray, x_shape: tuple[int, int, int, int], fh: int, fw: int, stride: int = 1, pad: int = 0
) -> np.ndarray:
    """The adjoint of :func:`im2col`: add every column back onto the window it was copied from.

    Args:
        cols: shape (C*fh*fw, N*Ho*Wo), laid out as :func:`im2col` returns it.
        x_shape: (N, C, H, W), the shape of the input that was unrolled.
        fh, fw, stride, pad: as given to :func:`im2col`.

    Returns:
        dx, shape (N, C, H, W): ``dx[n, c, y, x]`` is the sum of all the entries of ``cols`` that
        ``im2col`` copied from ``x[n, c, y, x]`` (entries that came from the zero padding are dropped).
        This is exactly how a gradient flows back through im2col, since windows overlap.

    The loop runs over the fh*fw offsets (p, q) of a window, never over pixels: for each offset, one
    strided slice of the padded image (every ``stride``-th pixel, starting at (p, q)) receives the
    cols entries of that offset for all windows at once.
    """
    N, C, H, W = x_shape
    Ho, Wo = _out_size(H, fh, stride, pad), _out_size(W, fw, stride, pad)
    cols = cols.reshape(C, fh, fw, N, Ho, Wo)
    dxp = np.zeros((N, C, H + 2 * pad, W + 2 * pad), dtype=cols.dtype)
    dxp_cn = dxp.transpose(1, 0, 2, 3)  # a (C, N, H+2P, W+2P) view, to match the order of cols
    for p in range(fh):
        for q in range(fw):
            dxp_cn[:, :, p : p + stride * Ho : stride, q : q + stride * Wo : stride] += cols[:, p, q]
    return dxp[:, :, pad : pad + H, pad : pad + W]


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, Cache]:
    """Forward pass of a convolution layer, by im2col and one matrix product.

    ``out[n, k, i, j] = b[k] + sum_{c, p, q} xp[n, c, i*stride + p, j*stride + q] * w[k, c, p, q]``
    with ``xp`` the input zero-padded by ``pad``; equal to ``torch.nn.functional.conv2d(x, w, b,
    stride, pad)`` and to ``cnnlab.conv.conv2d_forward``.

    Args:
        x: input, shape (N, C, H, W). Not modified.
        w: filters, shape (K, C, FH, FW); FH and FW may differ.
        b: biases, shape (K,).
        stride: step between windows, >= 1.
        pad: zeros added on each side of H and W, >= 0.

    Returns:
        out: shape (N, K, Ho, Wo) with Ho = (H + 2*pad - FH) // stride + 1 and
            Wo = (W + 2*pad - FW) // stride + 1; dtype ``np.result_type(x, w, b)`` (float32 stays
            float32).
        cache: ``(x, w, b, stride, pad, cols)`` for :func:`conv2d_backward`, where ``cols`` is the
            (C*FH*FW, N*Ho*Wo) column matrix of :func:`im2col`. Keeping it saves the backward pass
            from unrolling x again, at the price of holding about FH*FW/stride**2 copies of x in
            memory until the cache is dropped.

    Raises:
        ValueError: naming the argument and the rule, when x or w is not 4-D, their channels differ,
            b is not (K,), stride < 1, pad < 0, or the filter is larger than the padded input.
    """
    Ho, Wo = check_conv_args(x, w, b, stride, pad)
    N, C, _, _ = x.shape
    K, _, FH, FW = w.shape
    dtype = np.result_type(x, w, b)

    cols = _im2col(x, FH, FW, int(stride), int(pad), dtype)  # (C*FH*FW, N*Ho*Wo)
    w_rows = w.reshape(K, C * FH * FW).astype(dtype, copy=False)
    # The product w_rows @ cols, taken one image at a time: the (C*FH*FW, Ho*Wo) block of image n is
    # a strided view of cols (no copy), and matmul writes each (K, Ho*Wo) result straight into
    # out[n], so out comes out in (N, K, Ho*Wo) order with no transpose afterwards.
    out = np.matmul(w_rows, cols.reshape(C * FH * FW, N, Ho * Wo).transpose(1, 0, 2))
    out += b.reshape(1, K, 1)
    cache = (x, w, b, int(stride), int(pad), cols)
    return out.reshape(N, K, Ho, Wo), cache


def conv2d_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv2d_forward`: two matrix products and a col2im.

    With ``out = w_rows @ cols + b`` (``w_rows = w.reshape(K, -1)``, ``dout`` arranged as a
    (K, N*Ho*Wo) matrix ``g``), the chain rule for a matrix product gives ``dw_rows = g @ cols.T`` and
    ``dcols = w_rows.T @ g``; :func:`col2im` then adds each column of ``dcols`` back onto its window.

    Args:
        dout: upstream gradient dL/dout, shape (N, K, Ho, Wo).
        cache: ``(x, w, b, stride, pad, cols)`` from :func:`conv2d_forward` (cols is reused, not
            recomputed). The cache is not modified, so backward may be called more than once.

    Returns:
        dx: dL/dx, shape (N, C, H, W) (the padding's gradient is cropped away);
        dw: dL/dw, shape (K, C, FH, FW);
        db: dL/db, shape (K,).

    Raises:
        ValueError: when dout does not have the shape of the forward pass's out.
    """
    x, w, _, stride, pad, cols = cache
    N, _, H, W = x.shape
    K, C, FH, FW = w.shape
    out_shape = (N, K, _out_size(H, FH, stride, pad), _out_size(W, FW, stride, pad))
    if np.shape(dout) != out_shape:
        raise ValueError(
            f"dout must have the shape of out, (N, K, Ho, Wo) = {out_shape}, got {np.shape(dout)}"
        )
    dtype = np.result_type(dout, cols)

    db = dout.sum(axis=(0, 2, 3))
    # (N, K, Ho, Wo) -> (K, N*Ho*Wo), the column order of cols (a small copy: dout is not unrolled).
    g = dout.transpose(1, 0, 2, 3).reshape(K, -1).astype(dtype, copy=False)
    # dw = g @ cols.T, computed as (cols @ g.T).T: the same product, in the orientation that
    # OpenBLAS spreads better over its threads (the (K, C*FH*FW) result is small either way).
    dw = (cols @ g.T).T.reshape(K, C, FH, FW)
    dcols = w.reshape(K, C * FH * FW).T.astype(dtype, copy=False) @ g  # (C*FH*FW, N*Ho*Wo)
    dx = col2im(dcols, x.shape, FH, FW, stride, pad)
    return dx, dw, db
