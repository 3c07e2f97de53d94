"""Hypothesis strategies shared by the tests."""

from __future__ import annotations

import numpy as np
from hypothesis import strategies as st


@st.composite
def conv_configs(draw):
    """Random conv layers, float64 ``(x, w, b, stride, pad)``: N, C, K in 1-3, H != W and FH != FW
    allowed (H, W up to 9; FH, FW 1-4), stride 1-3, pad 0-2, the filter always fitting."""
    N, C, K = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    stride, pad = draw(st.integers(1, 3)), draw(st.integers(0, 2))
    FH, FW = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    H = draw(st.integers(max(1, FH - 2 * pad), 9))
    W = draw(st.integers(max(1, FW - 2 * pad), 9))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return (
        rng.normal(size=(N, C, H, W)),
        rng.normal(size=(K, C, FH, FW)),
        rng.normal(size=K),
        stride,
        pad,
    )
