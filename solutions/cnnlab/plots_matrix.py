"""The figures of convolution seen as a matrix (provided): notebook 01's dense and banded matrices,
notebook 05's effective receptive field.

As in :mod:`cnnlab.plots`, each function builds a new matplotlib Figure, describes it (alt text and a
one-line summary of its numbers, shown with it in a notebook: :func:`cnnlab.plots.describe`) and
returns it, and computes no task: the numbers to draw are passed in. Colour maps are perceptually
uniform (cividis for signed weights, viridis for magnitudes).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from . import plots


def zero_fraction(a: np.ndarray) -> float:
    """The fraction of the entries of ``a`` that are exactly zero."""
    a = np.asarray(a)
    return float(np.mean(a == 0)) if a.size else 0.0


def _matrix_panel(ax: Any, name: str, a: np.ndarray, params: int | None) -> None:
    """One matrix as an image on a symmetric scale (cividis: zero in the middle of the map)."""
    limit = float(np.max(np.abs(a))) or 1.0
    ax.imshow(a, cmap="cividis", vmin=-limit, vmax=limit, interpolation="nearest")
    rows, cols = a.shape
    lines = [name, f"shape {rows} x {cols}, {zero_fraction(a):.0%} zeros"]
    if params is not None:
        lines.append(f"{params:,} parameters")
    ax.set_title("\n".join(lines), fontsize=9)
    ax.set_xlabel("input index j")
    ax.set_ylabel("output index i")


def plot_weight_matrices(
    matrices: Mapping[str, np.ndarray], params: Mapping[str, int] | None = None
) -> Figure:
    """Weight matrices side by side (e.g. a fully connected layer's dense matrix and a convolution's
    banded one), each titled with its shape, its fraction of zeros and, if given, its parameter count.

    Args:
        matrices: name -> 2-D array (outputs x inputs).
        params: name -> the number of free parameters behind that matrix (n x m for a dense layer,
            F for a convolution: the same F numbers on every row).
    """
    params = params or {}
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.9), squeeze=False)
    texts = []
    for ax, (name, a) in zip(axes[0], matrices.items(), strict=True):
        a = np.asarray(a, dtype=float)
        _matrix_panel(ax, name, a, params.get(name))
        count = f", {params[name]:,} parameters" if name in params else ""
        texts.append(f"{name}: {a.shape[0]} x {a.shape[1]}, {zero_fraction(a):.0%} zeros{count}")
    alt = (
        f"{n} weight matrices drawn as images, outputs down and inputs across: "
        + "; ".join(texts)
        + ". A banded matrix has its nonzero entries on a diagonal band."
    )
    return plots._finish(fig, alt, "; ".join(texts))


def plot_border_error(errors: Mapping[str, np.ndarray]) -> Figure:
    """``|T @ shift(x) - shift(T @ x)|`` per output index, one line per kind of convolution matrix:
    zero everywhere for a circular convolution, nonzero only near the borders with zero padding."""
    fig, ax = plt.subplots(figsize=(7, 2.8))
    for i, (name, err) in enumerate(errors.items()):
        err = np.asarray(err, dtype=float)
        ax.plot(np.arange(err.size), err, marker="os^"[i % 3], linestyle="-", label=name)
    ax.set_xlabel("output index i")
    ax.set_ylabel("|T shift(x) - shift(T x)|")
    ax.set_title("Does the matrix commute with a shift by one?", fontsize=10)
    ax.legend(fontsize=9)
    texts = []
    for name, err in errors.items():
        err = np.asarray(err, dtype=float)
        nonzero = np.flatnonzero(err > 1e-12)
        where = f"nonzero at outputs {nonzero.tolist()}" if nonzero.size else "zero everywhere"
        texts.append(f"{name}: max {float(err.max()) if err.size else 0.0:.3g}, {where}")
    alt = "Line plot of the shift error per output index, one line per matrix: " + "; ".join(texts)
    return plots._finish(fig, alt, "; ".join(texts))


def plot_effective_receptive_field(
    grad: np.ndarray, size: int, centre: tuple[float, float], title: str = ""
) -> Figure:
    """The effective receptive field: ``|d unit / d input|`` as an image, with the theoretical r x r
    receptive field (``network.receptive_field``) drawn around ``centre``.

    Args:
        grad: the gradient of one output unit with respect to the input, shape (H, W).
        size: the side r of the theoretical receptive field.
        centre: the input pixel (row, column) at the middle of that field.
    """
    grad = np.abs(np.asarray(grad, dtype=float))
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.8))
    shown = grad / (grad.max() or 1.0)
    im = axes[0].imshow(shown, cmap="viridis", interpolation="nearest")
    fig.colorbar(im, ax=axes[0], fraction=0.046, pad=0.04, label="|gradient| / max")
    cy, cx = centre
    top, left = cy - (size - 1) / 2 - 0.5, cx - (size - 1) / 2 - 0.5
    axes[0].add_patch(Rectangle((left, top), size, size, fill=False, edgecolor="C0", linewidth=2, ls="--"))
    axes[0].set_title((title + "\n" if title else "") + f"dashed: receptive field r = {size}", fontsize=9)
    axes[0].set_xticks([])
    axes[0].set_yticks([])
    row = shown[int(round(cy))]
    axes[1].bar(np.arange(row.size), row, color="C3")
    axes[1].axvspan(left, left + size, color="C0", alpha=0.15, label=f"receptive field (r = {size})")
    axes[1].set_xlabel("input column (the centre row)")
    axes[1].set_ylabel("|gradient| / max")
    axes[1].legend(fontsize=8)
    inside = float(
        shown[
            max(0, int(np.floor(top + 0.5))) : int(np.floor(top + 0.5)) + size,
            max(0, int(np.floor(left + 0.5))) : int(np.floor(left + 0.5)) + size,
        ].sum()
    )
    share = inside / (float(shown.sum()) or 1.0)
    summary = (
        f"receptive field r = {size} around ({cy:g}, {cx:g}); {share:.0%} of the gradient lies inside it; "
        f"{int((grad > 0).sum())} of {grad.size} input pixels have a nonzero gradient"
    )
    alt = (
        f"Effective receptive field: an image of |gradient| of one output unit over the {grad.shape[0]} x "
        f"{grad.shape[1]} input, brightest near the centre, with the theoretical {size} x {size} field "
        "dashed around it; beside it, a bar chart of the centre row. " + summary
    )
    return plots._finish(fig, alt, summary)
