"""Argument checks of the provided code (provided, not a task).

They live here, not in a student's file, so that what a student edits (``conv.py``, ``pool.py``,
``residual.py``) can never change how the provided code (``fast.py``, ``pool.py``'s helpers, the
residual block's convolutions) checks its arguments. ``cnnlab.conv`` re-exports them.
"""

from __future__ import annotations

import numpy as np

__all__ = ["check_conv_args", "check_int"]


def check_int(name: str, value: object, minimum: int) -> int:
    """``value`` as an int, or ``ValueError`` naming ``name`` and the rule ``name >= minimum``."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name} must be an integer, got {value!r}")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {name}={value}")
    return int(value)


def check_conv_args(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int, pad: int) -> tuple[int, int]:
    """Validate the arguments of a 2-D convolution layer and return the output size (Ho, Wo).

    Raises ``ValueError`` naming the argument and the rule: 4-D ``x`` and ``w``, matching channels,
    ``b`` of shape (K,), ``stride >= 1``, ``pad >= 0``, and a filter no larger than the padded input.
    """
    if not isinstance(x, np.ndarray) or x.ndim != 4:
        raise ValueError(f"x must be a 4-D array (N, C, H, W), got shape {np.shape(x)}")
    if not isinstance(w, np.ndarray) or w.ndim != 4:
        raise ValueError(f"w must be a 4-D array (K, C, FH, FW), got shape {np.shape(w)}")
    if w.shape[1] != x.shape[1]:
        raise ValueError(
            f"w has C={w.shape[1]} channels but x has C={x.shape[1]}: filters span the full depth"
        )
    if np.shape(b) != (w.shape[0],):
        raise ValueError(f"b must have shape (K,) = ({w.shape[0]},), got shape {np.shape(b)}")
    stride = check_int("stride", stride, 1)
    pad = check_int("pad", pad, 0)
    (H, W), (FH, FW) = x.shape[2:], w.shape[2:]
    if FH > H + 2 * pad:
        raise ValueError(
            f"filter height FH={FH} is larger than the padded input height H+2*pad={H + 2 * pad}"
        )
    if FW > W + 2 * pad:
        raise ValueError(f"filter width FW={FW} is larger than the padded input width W+2*pad={W + 2 * pad}")
    return (H + 2 * pad - FH) // stride + 1, (W + 2 * pad - FW) // stride + 1
