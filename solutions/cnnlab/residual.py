"""ReLU and the residual block ``H(x) = F(x) + lam * x``.

The residual branch is ``F(x) = conv(relu(conv(x, w1, b1)), w2, b2)`` with stride 1 and "same"
zero padding, so F(x) has the shape of x and the two can be added. There is no activation after
the sum, so the gradient through the block is exactly

    dL/dx = dL/dH (dF/dx + lam)

the skip path carries ``lam * dL/dH`` back unchanged, however small dF/dx becomes: with lam = 1,
a stack of blocks cannot make the gradient vanish (He et al. 2016, "Identity Mappings in Deep
Residual Networks", Section 3, eqs. 7-8).
"""

from __future__ import annotations

from typing import Any

import numpy as np

# The convolutions inside the block are the provided im2col ones, so Tasks 4.x stand on their own:
# a student can build residual blocks before (or without) finishing Tasks 2.1 and 2.2.
from .fast import conv2d_backward, conv2d_forward

Cache = tuple[Any, ...]
Params = dict[str, np.ndarray]


def relu_forward(x: np.ndarray) -> tuple[np.ndarray, Cache]:
    """ReLU, ``max(x, 0)`` elementwise. x any shape -> out same shape; cache ``(x,)``."""
    x = np.asarray(x)
    return np.maximum(x, 0), (x,)


def relu_backward(dout: np.ndarray, cache: Cache) -> np.ndarray:
    """Backward of :func:`relu_forward`: dout where x > 0, else 0 (the subgradient 0 at x = 0)."""
    (x,) = cache
    return dout * (x > 0)


def same_padding(w: np.ndarray) -> tuple[int, int]:
    """Zero padding ``((FH - 1) // 2, (FW - 1) // 2)`` that keeps H and W for a stride-1 conv.

    Raises ``ValueError`` unless both filter sizes are odd (only then is "same" padding symmetric).
    """
    FH, FW = w.shape[2:]
    if FH % 2 == 0 or FW % 2 == 0:
        raise ValueError(f"'same' padding needs odd filter sizes, got FH={FH}, FW={FW}")
    return (FH - 1) // 2, (FW - 1) // 2


def same_conv_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Stride-1 convolution with "same" zero padding: x (N, C, H, W), w (K, C, FH, FW) odd sizes,
    b (K,) -> out (N, K, H, W). Built on the provided :func:`cnnlab.fast.conv2d_forward`.

    cache: ``(conv_cache, ph, pw)``, ``conv_cache`` as :func:`cnnlab.fast.conv2d_forward` returns it.
    """
    ph, pw = same_padding(w)
    xp = np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    out, conv_cache = conv2d_forward(xp, w, b, 1, 0)
    return out, (conv_cache, ph, pw)


def same_conv_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`same_conv_forward`: returns (dx, dw, db) with dx cropped to (N, C, H, W)."""
    conv_cache, ph, pw = cache
    dxp, dw, db = conv2d_backward(dout, conv_cache)
    H, W = dxp.shape[2] - 2 * ph, dxp.shape[3] - 2 * pw
    return dxp[:, :, ph : ph + H, pw : pw + W], dw, db


def check_residual_args(x: np.ndarray, params: Params) -> None:
    """Validate a residual block's input and parameters; ``ValueError`` naming what is wrong."""
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(f"x must be a 4-D array (N, C, H, W), got shape {np.shape(x)}")
    missing = {"w1", "b1", "w2", "b2"} - set(params)
    if missing:
        raise ValueError(f"params is missing {sorted(missing)}; it needs 'w1', 'b1', 'w2', 'b2'")
    w1, w2 = params["w1"], params["w2"]
    C = x.shape[1]
    if w1.ndim != 4 or w1.shape[1] != C:
        raise ValueError(f"params['w1'] must have shape (C1, C={C}, FH, FW), got {w1.shape}")
    if w2.ndim != 4 or w2.shape[0] != C or w2.shape[1] != w1.shape[0]:
        raise ValueError(
            f"params['w2'] must have shape (C={C}, C1={w1.shape[0]}, FH, FW) so that F(x) has the "
            f"channels of x for the skip connection, got {w2.shape}"
        )
    same_padding(w1)
    same_padding(w2)


def residual_block_forward(x: np.ndarray, params: Params, lam: float = 1.0) -> tuple[np.ndarray, Cache]:
    """Forward pass of a residual block, ``H(x) = F(x) + lam * x``.

    ``F(x) = conv(relu(conv(x, w1, b1)), w2, b2)``, each conv with stride 1 and "same" padding
    (use :func:`same_conv_forward`), and no activation after the sum.

    Args:
        x: input, shape (N, C, H, W).
        params: ``{"w1": (C1, C, FH, FW), "b1": (C1,), "w2": (C, C1, FH2, FW2), "b2": (C,)}``,
            odd filter sizes.
        lam: weight of the skip connection (lam = 0 gives a plain two-layer block).

    Returns:
        out: H(x), shape (N, C, H, W).
        cache: ``(lam, conv1_cache, relu_cache, conv2_cache)`` for :func:`residual_block_backward`.

    Raises:
        ValueError: (written for you: :func:`check_residual_args`, above the TODO) with a message that
            contains "x must be a 4-D array", "params is missing [...]", "params['w1'] must have shape
            (C1, C=<C>", "params['w2'] must have shape (C=<C>, C1=<C1>" or "'same' padding needs odd
            filter sizes".
    """
    check_residual_args(x, params)
    ### BEGIN SOLUTION
    a, conv1_cache = same_conv_forward(x, params["w1"], params["b1"])
    r, relu_cache = relu_forward(a)
    f, conv2_cache = same_conv_forward(r, params["w2"], params["b2"])
    out = f + lam * x
    return out, (lam, conv1_cache, relu_cache, conv2_cache)
    ### END SOLUTION


def residual_block_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, Params]:
    """Backward pass of :func:`residual_block_forward`.

    Args:
        dout: dL/dH, shape (N, C, H, W).
        cache: from the forward pass.

    Returns:
        dx: dL/dx = dL/dH (dF/dx + lam), shape (N, C, H, W): the gradient through F plus
            ``lam * dout`` through the skip connection;
        grads: ``{"w1", "b1", "w2", "b2"}``, each shaped like its parameter.
    """
    ### BEGIN SOLUTION
    lam, conv1_cache, relu_cache, conv2_cache = cache
    dr, dw2, db2 = same_conv_backward(dout, conv2_cache)
    da = relu_backward(dr, relu_cache)
    dx_f, dw1, db1 = same_conv_backward(da, conv1_cache)
    dx = dx_f + lam * dout
    return dx, {"w1": dw1, "b1": db1, "w2": dw2, "b2": db2}
    ### END SOLUTION
