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

That is the idea, and :func:`im2col` / :func:`col2im` below compute exactly that. The layer
itself (stride 1, the common case) uses a cheaper form of the same product, the *shifted-rows*
trick. Lay the padded images end to end, channel by channel, as a (C, N*Hp*Wp) matrix ``xs``
(Hp, Wp: padded height and width). The window of the output pixel whose top-left input corner is at
flat position m holds, at filter offset (p, q), the value ``xs[c, m + p*Wp + q]``: row
``(c*FH + p)*FW + q`` of the column matrix is simply row c of ``xs`` *shifted* by ``p*Wp + q``. So
the column matrix is FH*FW shifted copies of contiguous rows, cheap to make. The product is
computed at every flat position of the rows that hold outputs (i < Ho), including the FW-1 columns
per row whose windows run off the right edge (j >= Wo): garbage, thrown away, (FW-1)/Wp of the work.
The backward pass runs the same trick in reverse. When K > C it unrolls nothing: for each filter
offset (p, q), ``dw[:, :, p, q] = g @ xs_shifted.T`` and col2im adds one shifted slice of
``w_rows.T @ g`` into dx. When K <= C, ``dw = g @ cols.T`` on the unrolled chunk, and dx is a
correlation of the zero-padded gradient with the flipped filters (dx is itself a convolution, a
"transposed convolution"), which unrolls the gradient instead and needs no col2im.

Three engineering choices make this fast in numpy, as they do in real libraries:

* **Chunks.** The column matrix is made and used a few MB at a time (``CHUNK_BYTES``), so it is
  still in the CPU cache when the matrix product reads it, instead of being written to memory and
  read back (it is about FH*FW times the size of x).
* **A workspace.** The big temporary arrays (the padded input, the chunk buffers, the gradient
  laid out flat) are kept between calls, per thread, and reused when the next call needs no more
  room: allocating and zeroing tens of MB on every call costs as much as a matrix product.
  :func:`clear_workspace` frees them; :func:`workspace_nbytes` says how much is held. Nothing that
  is returned lives in the workspace: ``out``, ``dx``, ``dw`` and ``db`` are new arrays.
* **Threads.** numpy's BLAS runs each matrix product on every core, but the copies around the
  products run on one. So a large layer (``MIN_PARALLEL_FLOPS``) splits its batch into runs of
  images, one per thread, and each thread computes its images' part of the layer, matrix products
  included, with a one-thread BLAS; the threads' shares of dw and db are added at the end.
  PyTorch's float64 CPU convolution spreads the images over its threads too.
  ``cnnlab/_internal/threads.py`` explains how (OpenBLAS only; any other BLAS keeps the layer serial);
  :func:`get_num_threads` / :func:`set_num_threads` and the ``CNNLAB_NUM_THREADS`` environment
  variable choose how many threads (default: as many as the BLAS).

The forward pass's cache is ``(x, w, b, stride, pad)``: the backward pass unrolls x again, chunk
by chunk, rather than keeping a column matrix FH*FW/stride**2 times the size of x alive in
between (with stride > 1, the layer falls back to whole-array :func:`im2col` and :func:`col2im`).
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view

from ._internal import threads as _threads
from ._internal.threads import get_num_threads, set_num_threads
from ._internal.validate import check_conv_args

Cache = tuple[Any, ...]

__all__ = [
    "CHUNK_BYTES",
    "MIN_PARALLEL_FLOPS",
    "clear_workspace",
    "col2im",
    "conv2d_backward",
    "conv2d_forward",
    "get_num_threads",
    "im2col",
    "set_num_threads",
    "workspace_nbytes",
]

# Size of one chunk of the column matrix, in bytes: a few MB, so that a chunk made by one step is
# still in the CPU's cache when the next step (a matrix product) reads it.
CHUNK_BYTES = 4 * 2**20

# A call splits its batch over up to get_num_threads() threads, each with at least this many
# floating-point operations of matrix product (2*K*C*FH*FW*Ho*Wo per image, about a millisecond):
# smaller shares cost more in handing them over than the threads win.
MIN_PARALLEL_FLOPS = 40_000_000


# ---------------------------------------------------------------------------------------------------
# The workspace: temporary arrays kept between calls


class _Workspace(threading.local):
    """Per-thread named scratch buffers, grown on demand and reused by later calls.

    The views they hand out must not escape the call that asked for them.
    """

    def __init__(self) -> None:
        self.buffers: dict[tuple[str, np.dtype], np.ndarray] = {}
        self.keys: dict[tuple[str, np.dtype], object] = {}

    def get(self, name: str, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        """A view of shape ``shape`` on buffer ``name``, contents undefined."""
        slot = (name, np.dtype(dtype))
        size = int(np.prod(shape))
        buf = self.buffers.get(slot)
        if buf is None or buf.size < size:
            buf = self.buffers[slot] = np.empty(size, dtype=dtype)
        self.keys.pop(slot, None)  # the caller may write anywhere
        return buf[:size].reshape(shape)

    def zeros_around(self, name: str, shape: tuple[int, ...], dtype: np.dtype, key: object) -> np.ndarray:
        """A view on buffer ``name``, zero wherever the last caller with the same ``key`` did not write.

        For a caller that writes the same entries on every call (the inside of a zero border, say)
        and names that layout ``key``: the buffer is cleared only when the key changes, not on every
        call. The key is recorded once the clearing is complete, so an interrupted call leaves the
        next one to clear again.
        """
        slot = (name, np.dtype(dtype))
        size = int(np.prod(shape))
        kept = self.keys.get(slot) == key and self.buffers[slot].size >= size
        view = self.get(name, shape, dtype)
        if not kept:
            view.fill(0)
        self.keys[slot] = key
        return view


_workspace = _Workspace()


def _clear_own(_: object = None) -> None:
    _workspace.buffers.clear()
    _workspace.keys.clear()


def _own_nbytes(_: object = None) -> int:
    return sum(buf.nbytes for buf in _workspace.buffers.values())


def clear_workspace() -> None:
    """Free the temporary arrays kept between calls by this thread and by the layer's worker
    threads (they are remade when needed)."""
    _clear_own()
    _threads.on_each_worker(_clear_own)


def workspace_nbytes() -> int:
    """Bytes of temporary arrays kept between calls by this thread and the layer's worker threads."""
    return _own_nbytes() + sum(_threads.on_each_worker(_own_nbytes))


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


# ---------------------------------------------------------------------------------------------------
# Stride 1: the shifted-rows trick, chunk by chunk


class _Flat:
    """Geometry of the flat layout for a stride-1 layer (see the module docstring).

    The padded batch is a (C, T) matrix with T = N*Hp*Wp: flat position ``m = (n*Hp + y)*Wp + x``
    holds padded pixel (y, x) of image n. ``reach`` is how far past its top-left corner a window
    reaches, ``(FH-1)*Wp + FW-1``: a window at m reads positions m ... m + reach. Output pixel
    (i, j) of image n is computed at flat position ``(n*Hp + i)*Wp + j``; the other positions of
    the (K, T) result (i >= Ho or j >= Wo) are windows that run off the image, and are ignored.
    """

    def __init__(self, x_shape: tuple[int, ...], w_shape: tuple[int, ...], pad: int) -> None:
        self.N, self.C, self.H, self.W = x_shape
        self.K, _, self.FH, self.FW = w_shape
        self.pad = pad
        self.Hp, self.Wp = self.H + 2 * pad, self.W + 2 * pad
        self.Ho, self.Wo = self.Hp - self.FH + 1, self.Wp - self.FW + 1
        self.T = self.N * self.Hp * self.Wp
        self.reach = (self.FH - 1) * self.Wp + self.FW - 1
        self.key = (tuple(x_shape), tuple(w_shape), pad)

    def grid(self, flat: np.ndarray) -> np.ndarray:
        """A (rows, N, Hp, Wp) view of the first T columns of a (rows, >= T) flat matrix."""
        return flat[:, : self.T].reshape(-1, self.N, self.Hp, self.Wp)

    def chunks(self, rows: int, itemsize: int, first: int, length: int) -> list[tuple[int, int]]:
        """Flat ranges ``(m0, m1)`` that cover positions first ... first+length-1 of every image.

        A range holds about CHUNK_BYTES of a column matrix with ``rows`` rows of ``itemsize``
        bytes. Small images go several to a range (which then also covers the positions between
        them); a large image is split into several ranges. Positions outside every range (such as
        the rows of windows that run off the bottom of an image) are not computed at all.
        """
        size = max(64, CHUNK_BYTES // (rows * itemsize))
        image = self.Hp * self.Wp
        per = max(1, size // image)  # whole images per range
        ranges = []
        for n0 in range(0, self.N, per):
            start, stop = n0 * image + first, (min(n0 + per, self.N) - 1) * image + first + length
            step = stop - start if per > 1 else size
            ranges += [(m0, min(m0 + step, stop)) for m0 in range(start, stop, step)]
        return ranges


def _padded_flat(x: np.ndarray, g: _Flat, dtype: np.dtype) -> np.ndarray:
    """x zero-padded and laid out flat: a (C, T + reach) workspace view (the tail is zeros)."""
    xs = _workspace.zeros_around("x", (g.C, g.T + g.reach), dtype, key=g.key)
    g.grid(xs)[:, :, g.pad : g.pad + g.H, g.pad : g.pad + g.W] = x.transpose(1, 0, 2, 3)
    return xs


def _shifted_rows(src: np.ndarray, m0: int, n: int, g: _Flat, buf: np.ndarray, sign: int = 1) -> np.ndarray:
    """The chunk of a column matrix at flat positions m0 ... m0+n-1, copied into ``buf``.

    Returns a (R*FH*FW, n) matrix whose row ``(r*FH + p)*FW + q`` is ``src[r, m0 + sign*(p*Wp + q)
    + j]`` for j in range(n): each row is a contiguous slice of ``src`` (R rows), shifted. The
    strided view below expresses all R*FH*FW shifted slices at once, with no copy; ``np.copyto``
    then makes the one copy that the matrix product needs.
    """
    rows = src.shape[0]
    s_row, s_col = src.strides
    shifted = as_strided(
        src[:, m0:],
        shape=(rows, g.FH, g.FW, n),
        strides=(s_row, sign * g.Wp * s_col, sign * s_col, s_col),
        writeable=False,
    )
    out = buf[..., :n]
    np.copyto(out, shifted)
    return out.reshape(rows * g.FH * g.FW, n)


def _forward_stride1(x: np.ndarray, w: np.ndarray, b: np.ndarray, pad: int, out: np.ndarray) -> None:
    dtype = out.dtype
    g = _Flat(x.shape, w.shape, pad)
    xs = _padded_flat(x, g, dtype)
    w_rows = w.reshape(g.K, -1).astype(dtype, copy=False)
    rows = g.C * g.FH * g.FW
    out_flat = _workspace.get("out", (g.K, g.T), dtype)
    # Output pixel (i, j) is at flat position (n*Hp + i)*Wp + j: only rows i < Ho are computed.
    chunks = g.chunks(rows, xs.itemsize, 0, g.Ho * g.Wp)
    buf = _workspace.get("cols", (g.C, g.FH, g.FW, max(m1 - m0 for m0, m1 in chunks)), dtype)
    for m0, m1 in chunks:
        np.matmul(w_rows, _shifted_rows(xs, m0, m1 - m0, g, buf), out=out_flat[:, m0:m1])
    valid = g.grid(out_flat)[:, :, : g.Ho, : g.Wo].transpose(1, 0, 2, 3)
    np.add(valid, b.reshape(1, g.K, 1, 1), out=out)


def _backward_stride1(
    dout: np.ndarray, x: np.ndarray, w: np.ndarray, pad: int, dx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Writes dL/dx into ``dx``; returns (dw, db)."""
    dtype = dx.dtype
    g = _Flat(x.shape, w.shape, pad)
    K, C, FH, FW, reach = g.K, g.C, g.FH, g.FW, g.reach
    xs = _padded_flat(x, g, dtype)
    # dout laid out flat like the forward's result, zero at the ignored positions, after ``reach``
    # leading zeros (room for the flipped windows of the transposed convolution below).
    gs = _workspace.zeros_around("dout", (K, reach + g.T), dtype, key=g.key)
    grad = gs[:, reach:]  # (K, T)
    g.grid(grad)[:, :, : g.Ho, : g.Wo] = dout.transpose(1, 0, 2, 3)

    dw = np.zeros((K, C, FH, FW), dtype=dtype)
    dw_rows = dw.reshape(K, C * FH * FW)  # a view: the same numbers, one row per filter
    chunks = g.chunks(C * FH * FW, xs.itemsize, 0, g.Ho * g.Wp)  # the output positions
    size = max(m1 - m0 for m0, m1 in chunks)
    if K > C:
        # For each filter offset (p, q), one shifted slice of xs meets the gradient
        # (dw[:, :, p, q] = grad @ xs_shifted.T) and one shifted slice of dx receives its share of
        # dcols = w_rows.T @ grad (col2im in the flat layout). So nothing is unrolled, except with
        # few channels, where FH*FW products with (K, C) results cost more than one copy of the chunk.
        unroll = C < 8
        w_rows_t = w.reshape(K, C * FH * FW).T.astype(dtype, copy=False)
        dcols_buf = _workspace.get("dcols", (C, FH, FW, size), dtype)
        buf = _workspace.get("cols", (C, FH, FW, size), dtype) if unroll else None
        dxs = _workspace.get("dx", (C, g.T + reach), dtype)
        dxs.fill(0)
        for m0, m1 in chunks:
            n = m1 - m0
            g_chunk = grad[:, m0:m1]
            dcols = dcols_buf[..., :n]
            np.matmul(w_rows_t, g_chunk, out=dcols.reshape(C * FH * FW, n))
            if unroll:
                dw_rows += g_chunk @ _shifted_rows(xs, m0, n, g, buf).T
            for p in range(FH):
                for q in range(FW):
                    shift = m0 + p * g.Wp + q
                    if not unroll:
                        dw[:, :, p, q] += g_chunk @ xs[:, shift : shift + n].T
                    dxs[:, shift : shift + n] += dcols[:, p, q]
    else:
        # dw from x unrolled chunk by chunk (C*FH*FW rows); dx as a correlation of the zero-padded
        # gradient with the flipped filters, channels swapped (a "transposed convolution"):
        # dxs[c, m] = sum_{k,p,q} w[k, c, p, q] * grad[k, m - p*Wp - q], which unrolls the gradient
        # (K*FH*FW rows, no more than C*FH*FW) and writes dx directly, with no col2im.
        buf = _workspace.get("cols", (C, FH, FW, size), dtype)
        for m0, m1 in chunks:
            dw_rows += grad[:, m0:m1] @ _shifted_rows(xs, m0, m1 - m0, g, buf).T
        w_flip = np.ascontiguousarray(w.transpose(1, 0, 2, 3).reshape(C, K * FH * FW), dtype=dtype)
        # the input positions: rows pad ... pad+H-1 of every padded image
        chunks = g.chunks(K * FH * FW, xs.itemsize, pad * g.Wp, g.H * g.Wp)
        gbuf = _workspace.get("dout_cols", (K, FH, FW, max(m1 - m0 for m0, m1 in chunks)), dtype)
        dxs = _workspace.get("dx", (C, g.T), dtype)
        for m0, m1 in chunks:
            # row (k, p, q) of the unrolled gradient is gs[k, reach + m - p*Wp - q]: shifted backwards
            flipped = _shifted_rows(gs, reach + m0, m1 - m0, g, gbuf, sign=-1)
            np.matmul(w_flip, flipped, out=dxs[:, m0:m1])
    np.copyto(dx, g.grid(dxs)[:, :, pad : pad + g.H, pad : pad + g.W].transpose(1, 0, 2, 3))
    return dw, grad.sum(axis=1)  # grad is zero off the outputs: its row sums are db


def _forward_im2col(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int, out: np.ndarray
) -> None:
    N, K, Ho, Wo = out.shape
    _, C, FH, FW = w.shape
    cols = _im2col(x, FH, FW, stride, pad, out.dtype)  # (C*FH*FW, N*Ho*Wo)
    w_rows = w.reshape(K, C * FH * FW).astype(out.dtype, copy=False)
    # The product w_rows @ cols, taken one image at a time: the (C*FH*FW, Ho*Wo) block of image n is
    # a strided view of cols (no copy), and matmul writes each (K, Ho*Wo) result straight into
    # out[n], so out comes out in (N, K, Ho*Wo) order with no transpose afterwards.
    out_rows = out.reshape(N, K, Ho * Wo)
    np.matmul(w_rows, cols.reshape(C * FH * FW, N, Ho * Wo).transpose(1, 0, 2), out=out_rows)
    out_rows += b.reshape(1, K, 1)


def _backward_im2col(
    dout: np.ndarray, x: np.ndarray, w: np.ndarray, stride: int, pad: int, dx: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Writes dL/dx into ``dx``; returns (dw, db)."""
    dtype = dx.dtype
    K, C, FH, FW = w.shape
    db = dout.sum(axis=(0, 2, 3)).astype(dtype, copy=False)
    cols = _im2col(x, FH, FW, stride, pad, dtype)  # (C*FH*FW, N*Ho*Wo), made again
    # (N, K, Ho, Wo) -> (K, N*Ho*Wo), the column order of cols (a small copy: dout is not unrolled).
    g = dout.transpose(1, 0, 2, 3).reshape(K, -1).astype(dtype, copy=False)
    # dw = g @ cols.T, computed as (cols @ g.T).T: the same product, in the orientation that
    # OpenBLAS spreads better over its threads (the (K, C*FH*FW) result is small either way).
    dw = (cols @ g.T).T.reshape(K, C, FH, FW)
    dcols = w.reshape(K, C * FH * FW).T.astype(dtype, copy=False) @ g  # (C*FH*FW, N*Ho*Wo)
    dx[...] = col2im(dcols, x.shape, FH, FW, stride, pad)
    return dw, db


def _batch_parts(N: int, flops: int) -> list[slice]:
    """The batch split into runs of images, one per thread, as even as can be (see MIN_PARALLEL_FLOPS)."""
    most = min(N, flops // MIN_PARALLEL_FLOPS)
    parts = max(1, min(most, get_num_threads())) if most > 1 else 1  # small: never looks for the BLAS
    bounds = [N * i // parts for i in range(parts + 1)]
    return [slice(lo, hi) for lo, hi in zip(bounds[:-1], bounds[1:], strict=True)]


# ---------------------------------------------------------------------------------------------------
# The layer


def conv2d_forward(
    x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1, pad: int = 0
) -> tuple[np.ndarray, Cache]:
    """Forward pass of a convolution layer, by unrolled windows and matrix products.

    ``out[n, k, i, j] = b[k] + sum_{c, p, q} xp[n, c, i*stride + p, j*stride + q] * w[k, c, p, q]``
    with ``xp`` the input zero-padded by ``pad``; equal to ``torch.nn.functional.conv2d(x, w, b,
    stride, pad)`` and to ``cnnlab.conv.conv2d_forward``. With stride 1 it uses the shifted-rows
    trick chunk by chunk (module docstring); otherwise ``w.reshape(K, -1) @ im2col(x)``.

    Args:
        x: input, shape (N, C, H, W). Not modified.
        w: filters, shape (K, C, FH, FW); FH and FW may differ.
        b: biases, shape (K,).
        stride: step between windows, >= 1.
        pad: zeros added on each side of H and W, >= 0.

    Returns:
        out: shape (N, K, Ho, Wo) with Ho = (H + 2*pad - FH) // stride + 1 and
            Wo = (W + 2*pad - FW) // stride + 1, a new array; dtype ``np.result_type(x, w, b)``
            (float32 stays float32).
        cache: ``(x, w, b, stride, pad)`` for :func:`conv2d_backward`, which unrolls x again rather
            than keeping a column matrix about FH*FW/stride**2 times the size of x alive in between.

    Raises:
        ValueError: naming the argument and the rule, when x or w is not 4-D, their channels differ,
            b is not (K,), stride < 1, pad < 0, or the filter is larger than the padded input.
    """
    Ho, Wo = check_conv_args(x, w, b, stride, pad)
    stride, pad = int(stride), int(pad)
    N, C, _, _ = x.shape
    K, _, FH, FW = w.shape
    out = np.empty((N, K, Ho, Wo), dtype=np.result_type(x, w, b))

    def forward(part: slice) -> None:
        if stride == 1:
            _forward_stride1(x[part], w, b, pad, out[part])
        else:
            _forward_im2col(x[part], w, b, stride, pad, out[part])

    _threads.parallel_map(forward, _batch_parts(N, 2 * K * C * FH * FW * N * Ho * Wo))
    return out, (x, w, b, stride, pad)


def conv2d_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward pass of :func:`conv2d_forward`: matrix products, and col2im or its equivalent.

    With ``out = w_rows @ cols + b`` (``w_rows = w.reshape(K, -1)``, ``dout`` arranged as a
    (K, N*Ho*Wo) matrix ``g``), the chain rule for a matrix product gives ``dw_rows = g @ cols.T`` and
    ``dcols = w_rows.T @ g``; :func:`col2im` then adds each column of ``dcols`` back onto its window.
    With stride 1 and K <= C, dx is computed instead as the correlation of the zero-padded dout with
    the flipped filters (channels swapped), the same numbers by a cheaper route.

    Args:
        dout: upstream gradient dL/dout, shape (N, K, Ho, Wo).
        cache: ``(x, w, b, stride, pad)`` from :func:`conv2d_forward`. The cache is not modified,
            so backward may be called more than once.

    Returns:
        dx: dL/dx, shape (N, C, H, W) (the padding's gradient is cropped away);
        dw: dL/dw, shape (K, C, FH, FW);
        db: dL/db, shape (K,).
        All three are new arrays.

    Raises:
        ValueError: when dout does not have the shape of the forward pass's out.
    """
    x, w, b, stride, pad = cache
    N, _, H, W = x.shape
    K, C, FH, FW = w.shape
    out_shape = (N, K, _out_size(H, FH, stride, pad), _out_size(W, FW, stride, pad))
    if np.shape(dout) != out_shape:
        raise ValueError(
            f"dout must have the shape of out, (N, K, Ho, Wo) = {out_shape}, got {np.shape(dout)}"
        )
    dx = np.empty(x.shape, dtype=np.result_type(dout, x, w, b))

    def backward(part: slice) -> tuple[np.ndarray, np.ndarray]:
        if stride == 1:
            return _backward_stride1(dout[part], x[part], w, pad, dx[part])
        return _backward_im2col(dout[part], x[part], w, stride, pad, dx[part])

    flops = 2 * K * C * FH * FW * N * out_shape[2] * out_shape[3]  # of one matrix product
    parts = _threads.parallel_map(backward, _batch_parts(N, flops))
    dw, db = parts[0]
    for dw_part, db_part in parts[1:]:  # each thread's images' share of the sums
        dw += dw_part
        db += db_part
    return dx, dw, db
