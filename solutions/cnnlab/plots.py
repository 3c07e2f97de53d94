"""Every figure the notebooks draw (provided).

Each function builds a new matplotlib Figure with the object-oriented API and returns it; none
calls ``plt.show()``. In a notebook with ``%matplotlib inline`` the figure appears when the cell
ends; in a script call ``fig.savefig(...)`` or ``plt.show()`` yourself.

Arrays follow the package's conventions: images (H, W) or batches (N, C, H, W), filters
(K, C, FH, FW). Nothing here computes a task: the numbers to draw are passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

_FLOOR = 1e-18  # errors that are exactly 0 are drawn at this height on log axes


def _annotate(ax: Any, a: np.ndarray, fmt: str = "{:.2g}", fontsize: float = 8) -> None:
    """Write each entry of the 2-D array ``a`` on top of its cell of the last ``imshow`` of ``ax``.

    The text is white on dark cells and black on light ones.
    """
    im = ax.images[-1]
    for (i, j), v in np.ndenumerate(a):
        r, g, b, _ = im.cmap(im.norm(v))
        colour = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=fontsize, color=colour)


def _no_ticks(ax: Any) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


# ----------------------------------------------------------------------------------------------
# Notebook 01: convolution from its definition
# ----------------------------------------------------------------------------------------------


def plot_convolution_vs_correlation(x: np.ndarray, w: np.ndarray) -> Figure:
    """Signal, filter, flipped filter, and the full convolution and cross-correlation of the two.

    Args:
        x: 1-D signal, shape (L,).
        w: 1-D filter, shape (F,).

    The outputs are computed with ``np.convolve`` and ``np.correlate`` (mode "full", length
    L + F - 1), so the figure does not depend on your ``conv1d``.
    """
    x, w = np.asarray(x, dtype=float), np.asarray(w, dtype=float)
    conv_out = np.convolve(x, w, mode="full")
    corr_out = np.correlate(x, w, mode="full")
    fig, axes = plt.subplots(5, 1, figsize=(8, 9), sharex=True)
    rows = [
        (x, "signal $x[t]$", "C0"),
        (w, "filter $w[a]$", "C1"),
        (w[::-1], "flipped filter $w[-a]$ (what slides over $x$ in a convolution)", "C2"),
        (conv_out, r"convolution $h[t] = \sum_a x[t-a]\,w[a]$ (np.convolve, full)", "C3"),
        (corr_out, r"cross-correlation $c[t] = \sum_a x[t+a]\,w[a]$ (np.correlate, full)", "C4"),
    ]
    for ax, (values, title, colour) in zip(axes, rows, strict=True):
        ax.stem(np.arange(len(values)), values, linefmt=colour, markerfmt=colour + "o", basefmt="k-")
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("index")
    fig.tight_layout()
    return fig


def plot_filters_and_maps(
    image: np.ndarray, filters: Mapping[str, np.ndarray], maps: Mapping[str, np.ndarray]
) -> Figure:
    """An image, a few 2-D filters with their values, and the activation map each one produces.

    Args:
        image: shape (H, W).
        filters: name -> filter of shape (FH, FW).
        maps: name -> activation map of shape (Ho, Wo), same names as ``filters``.
    """
    names = list(filters)
    n = len(names)
    fig, axes = plt.subplots(2, n + 1, figsize=(3 * (n + 1), 6), squeeze=False)
    axes[0, 0].imshow(image, cmap="gray")
    axes[0, 0].set_title(f"input {image.shape[0]}x{image.shape[1]}")
    _no_ticks(axes[0, 0])
    axes[1, 0].axis("off")
    for col, name in enumerate(names, start=1):
        k = np.asarray(filters[name])
        lim = float(np.abs(k).max()) or 1.0
        axes[0, col].imshow(k, cmap="RdBu_r", vmin=-lim, vmax=lim)
        _annotate(axes[0, col], k, "{:.3g}", fontsize=9)
        axes[0, col].set_title(f"filter: {name}")
        _no_ticks(axes[0, col])
        m = np.asarray(maps[name])
        lim = float(np.abs(m).max()) or 1.0
        im = axes[1, col].imshow(m, cmap="RdBu_r", vmin=-lim, vmax=lim)
        axes[1, col].set_title(f"activation map {m.shape[0]}x{m.shape[1]}")
        _no_ticks(axes[1, col])
        fig.colorbar(im, ax=axes[1, col], fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


def plot_windows_1d(n: int, f: int, pad: int = 0, stride: int = 1, ax: Any = None) -> Figure:
    """The N input cells, P padding cells on each side, and every window position of a filter.

    Input cells are white and numbered, padding cells grey. Each window that fits is a blue bar
    below the strip. When S does not divide N - F + 2P, the window that would start next inside the
    input but runs past its end (and is dropped) is a dashed red bar. The title gives
    ``M = floor((N - F + 2P) / S) + 1``. Settings where the filter does not fit are drawn with a
    message instead of raising.

    Args:
        n, f, pad, stride: N, F, P, S.
        ax: an Axes to draw on; by default a new figure is created.

    Returns:
        the Figure holding ``ax``.
    """
    if ax is None:
        fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * (n + 2 * pad) + 1), 2.6))
    else:
        fig = ax.figure
    total = n + 2 * pad
    for c in range(total):
        inside = pad <= c < pad + n
        ax.add_patch(
            Rectangle((c, 0), 1, 1, facecolor="white" if inside else "0.8", edgecolor="black", linewidth=0.8)
        )
        ax.text(c + 0.5, 0.5, str(c - pad) if inside else "0", ha="center", va="center", fontsize=8)
    if f < 1 or stride < 1 or n < 1 or pad < 0:
        ax.set_title("N, F, S must be >= 1 and P >= 0", color="red")
        m, starts, dropped = 0, [], None
    elif f > total:
        ax.set_title(f"F={f} > N+2P={total}: the filter does not fit", color="red")
        m, starts, dropped = 0, [], None
    else:
        m = (total - f) // stride + 1
        starts = [k * stride for k in range(m)]
        exact = (total - f) % stride == 0
        # when S does not divide N - F + 2P, the next window starts inside the input but runs past it
        dropped = None if exact else m * stride
        note = "" if exact else f"  (S does not divide N-F+2P={total - f}: the rest is dropped)"
        formula = f"M = ({n} - {f} + 2*{pad})//{stride} + 1 = {m}"
        ax.set_title(f"N={n}, F={f}, P={pad}, S={stride}:  {formula}{note}")
    for k, s in enumerate(starts):
        y = -0.6 - 0.5 * k
        ax.add_patch(Rectangle((s, y), f, 0.35, facecolor="C0", alpha=0.6, edgecolor="C0"))
        ax.text(s - 0.2, y + 0.17, f"out[{k}]", ha="right", va="center", fontsize=7)
    depth = len(starts)
    if dropped is not None:
        y = -0.6 - 0.5 * depth
        ax.add_patch(
            Rectangle((dropped, y), f, 0.35, facecolor="none", edgecolor="red", linestyle="--", linewidth=1.2)
        )
        ax.text(dropped - 0.2, y + 0.17, "dropped", ha="right", va="center", fontsize=7, color="red")
        depth += 1
    ax.set_xlim(-2.5, max(total, (dropped or 0) + f) + 0.5)
    ax.set_ylim(-0.6 - 0.5 * max(depth, 1), 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    return fig


def plot_windows_grid(settings: Sequence[tuple[int, int, int, int]]) -> Figure:
    """:func:`plot_windows_1d` for several ``(N, F, P, S)`` settings, one row each."""
    heights = []
    for n, f, pad, stride in settings:
        total = n + 2 * pad
        m = (total - f) // stride + 1 if 1 <= f <= total and stride >= 1 else 0
        heights.append(1.3 + 0.5 * (m + 1) + 0.6)
    width = max(6.0, 0.45 * max(n + 2 * p for n, _, p, _ in settings) + 2)
    fig, axes = plt.subplots(
        len(settings), 1, figsize=(width, 0.55 * sum(heights) + 0.5), gridspec_kw={"height_ratios": heights}
    )
    axes = np.atleast_1d(axes)
    for ax, (n, f, pad, stride) in zip(axes, settings, strict=True):
        plot_windows_1d(n, f, pad, stride, ax=ax)
    fig.tight_layout()
    return fig


def _log_bars(
    values: Mapping[str, float],
    labels: list[str],
    ylim: tuple[float, float],
    ylabel: str,
    title: str,
    figsize: tuple[float, float],
) -> Figure:
    """One coloured bar per entry of ``values``, on a log scale, each bar labelled."""
    fig, ax = plt.subplots(figsize=figsize)
    bars = ax.bar(list(values), list(values.values()), color=[f"C{i}" for i in range(len(values))])
    ax.set_yscale("log")
    ax.bar_label(bars, labels=labels)
    ax.set_ylim(*ylim)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_param_counts(counts: Mapping[str, int], title: str = "parameters (weights + biases)") -> Figure:
    """Bar chart of parameter counts on a log scale, each bar labelled with its number."""
    labels = [f"{v:,}" for v in counts.values()]
    ylim = (1, max(counts.values()) * 20)
    return _log_bars(counts, labels, ylim, "number of parameters (log scale)", title, (7, 4))


def plot_images(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    cmap: str = "gray",
    ncols: int | None = None,
    symmetric: bool = False,
    colorbar: bool = False,
) -> Figure:
    """A grid of 2-D images (e.g. activation maps, shifted inputs), each with an optional title.

    Args:
        images: arrays of shape (H, W).
        titles: one per image.
        cmap: matplotlib colour map.
        ncols: images per row (default: all in one row, at most 6).
        symmetric: colour limits symmetric around 0 (for signed maps).
        colorbar: add a colour bar to each image.
    """
    n = len(images)
    ncols = ncols or min(n, 6)
    nrows = -(-n // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * ncols, 2.6 * nrows), squeeze=False)
    for k, ax in enumerate(axes.flat):
        if k >= n:
            ax.axis("off")
            continue
        img = np.asarray(images[k])
        kwargs = {}
        if symmetric:
            lim = float(np.abs(img).max()) or 1.0
            kwargs = {"vmin": -lim, "vmax": lim}
        im = ax.imshow(img, cmap=cmap, **kwargs)
        if titles is not None:
            ax.set_title(titles[k], fontsize=9)
        _no_ticks(ax)
        if colorbar:
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# Notebook 02: the convolution layer
# ----------------------------------------------------------------------------------------------


def plot_im2col(
    x: np.ndarray, cols: np.ndarray, fh: int, fw: int, stride: int = 1, pad: int = 0, highlight: int = 1
) -> Figure:
    """One small input and its im2col matrix, with one window and its column highlighted.

    Args:
        x: input of shape (1, C, H, W); best with distinct small integer values.
        cols: ``fast.im2col(x, fh, fw, stride, pad)``, shape (C*fh*fw, Ho*Wo).
        fh, fw, stride, pad: the window that was unrolled.
        highlight: index of the window (column) to outline in red.
    """
    _, C, H, W = x.shape
    Ho = (H + 2 * pad - fh) // stride + 1
    Wo = (W + 2 * pad - fw) // stride + 1
    xp = np.pad(x[0], ((0, 0), (pad, pad), (pad, pad)))
    fig, axes = plt.subplots(
        1,
        C + 1,
        figsize=(3.2 * C + 0.5 * cols.shape[1] + 1, 4.2),
        gridspec_kw={"width_ratios": [1] * C + [2.5]},
    )
    i, j = divmod(highlight, Wo)
    for c in range(C):
        ax = axes[c]
        ax.imshow(xp[c], cmap="Blues")
        _annotate(ax, xp[c], "{:g}", fontsize=9)
        ax.add_patch(
            Rectangle((j * stride - 0.5, i * stride - 0.5), fw, fh, fill=False, edgecolor="red", lw=2.5)
        )
        ax.set_title(f"input, channel {c}" + (f" (padded by {pad})" if pad else ""))
        _no_ticks(ax)
    ax = axes[C]
    ax.imshow(cols, cmap="Blues", aspect="auto")
    _annotate(ax, cols, "{:g}", fontsize=8)
    ax.add_patch(
        Rectangle((highlight - 0.5, -0.5), 1, cols.shape[0], fill=False, edgecolor="red", linewidth=2.5)
    )
    ax.set_title(f"im2col: {cols.shape[0]} rows (C*FH*FW) x {cols.shape[1]} columns (one per window)")
    ax.set_xlabel(f"window (i, j) -> column i*Wo + j, Ho={Ho}, Wo={Wo}")
    ax.set_ylabel("(c, p, q) in filter order")
    ax.set_xticks(range(cols.shape[1]))
    ax.set_yticks(range(cols.shape[0]))
    fig.tight_layout()
    return fig


def plot_timings(seconds: Mapping[str, float], title: str = "time per forward pass") -> Figure:
    """Bar chart of run times (log scale), each bar labelled in milliseconds."""
    labels = [f"{1e3 * v:.2f} ms" for v in seconds.values()]
    ylim = (min(seconds.values()) / 3, max(seconds.values()) * 5)
    return _log_bars(seconds, labels, ylim, "seconds (log scale)", title, (6, 3.5))


# ----------------------------------------------------------------------------------------------
# Notebook 03: equivariance and pooling
# ----------------------------------------------------------------------------------------------


_EQUIVARIANCE_TITLE = r"$|f(\mathrm{shift}\,x) - \mathrm{shift}\,f(x)|$"


def plot_error_map(err: np.ndarray, title: str = _EQUIVARIANCE_TITLE) -> Figure:
    """A 2-D map of absolute errors (H, W), with a colour bar."""
    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = ax.imshow(err, cmap="magma")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=10)
    _no_ticks(ax)
    fig.tight_layout()
    return fig


def plot_error_vs_shift(
    shifts: Sequence[int],
    errors: Mapping[str, Sequence[float]],
    ylabel: str = "relative error",
    title: str = "",
    logy: bool = True,
) -> Figure:
    """One line per method: an error against the shift size. Exact zeros are drawn at 1e-18."""
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, (name, values) in enumerate(errors.items()):
        v = np.asarray(values, dtype=float)
        if logy:
            v = np.maximum(v, _FLOOR)
        ax.plot(shifts, v, marker="o", color=f"C{k}", label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("shift (pixels)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(list(shifts))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    return fig


def plot_matrices(
    matrices: Mapping[str, np.ndarray], fmt: str = "{:g}", block: int | None = None, cmap: str = "Blues"
) -> Figure:
    """Small 2-D arrays side by side with their values written in; ``block`` draws window borders.

    Useful to follow a pooling example by hand: input, output, and the gradient routed back.
    """
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    for ax, (name, a) in zip(axes[0], matrices.items(), strict=True):
        a = np.asarray(a, dtype=float)
        ax.imshow(a, cmap=cmap)
        _annotate(ax, a, fmt, fontsize=10)
        if block and a.shape[0] % block == 0 and a.shape[0] > block:
            for t in range(block, a.shape[0], block):
                ax.axhline(t - 0.5, color="red", linewidth=2)
            for t in range(block, a.shape[1], block):
                ax.axvline(t - 0.5, color="red", linewidth=2)
        ax.set_title(name, fontsize=10)
        _no_ticks(ax)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# Notebook 04: residual networks and gradients
# ----------------------------------------------------------------------------------------------


def plot_grad_norm_vs_depth(
    depths: Sequence[int],
    norms: Mapping[float, Sequence[float]],
    predicted: Mapping[float, Sequence[float]] | None = None,
) -> Figure:
    """``||dL/dx0||`` against depth on a log scale, one line per skip weight lam, ``lam**L`` dashed black.

    Args:
        depths: the depths L measured.
        norms: lam -> measured norms, one per depth (lam = 0 is the plain stack).
        predicted: lam -> predicted norms ``lam**L``; zero predictions (lam = 0) are not drawn.
    """
    fig, ax = plt.subplots(figsize=(7, 4.5))
    size = 5 if len(depths) <= 15 else 3
    labelled = False
    for k, (lam, values) in enumerate(norms.items()):
        label = "plain stack (lam = 0)" if lam == 0 else f"residual, lam = {lam:g}"
        values = np.maximum(np.asarray(values, dtype=float), 1e-300)  # 0 cannot be drawn on a log scale
        ax.plot(depths, values, marker="o", markersize=size, color=f"C{k}", label=label)
        if predicted is not None and lam != 0:
            label = None if labelled else r"prediction $\lambda^L$"
            ax.plot(depths, predicted[lam], linestyle="--", color="black", linewidth=1, label=label, zorder=3)
            labelled = True
    ax.set_yscale("log")
    ax.set_xlabel("depth L (number of blocks)")
    ax.set_ylabel(r"$\|\partial L / \partial x_0\|$ (log scale)")
    ax.set_title("gradient at the input of a stack of blocks $H(x) = F(x) + \\lambda x$")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# Notebook 05: a small CNN
# ----------------------------------------------------------------------------------------------


def plot_shapes(x: np.ndarray, y: np.ndarray, class_names: Sequence[str], per_class: int = 6) -> Figure:
    """The first ``per_class`` images of each class of a labelled data set, one row per class.

    Args:
        x: images, shape (N, 1, H, W).
        y: labels, shape (N,).
        class_names: name of each label.
    """
    k = len(class_names)
    fig, axes = plt.subplots(k, per_class, figsize=(1.6 * per_class, 1.7 * k), squeeze=False)
    for label, name in enumerate(class_names):
        idx = np.flatnonzero(y == label)[:per_class]
        for col in range(per_class):
            ax = axes[label, col]
            _no_ticks(ax)
            if col < len(idx):
                ax.imshow(x[idx[col], 0], cmap="gray")
            if col == 0:
                ax.set_ylabel(name)
    fig.tight_layout()
    return fig


def plot_training_curves(histories: Mapping[str, Any]) -> Figure:
    """Loss and accuracy per epoch, train (solid) and validation (dashed), for one or more runs.

    Args:
        histories: run name -> an object with lists ``train_loss``, ``val_loss``, ``train_acc``,
            ``val_acc`` (e.g. :class:`cnnlab.model.History`); entry 0 is before training.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for k, (name, h) in enumerate(histories.items()):
        epochs = np.arange(len(h.train_loss))
        ax_loss.plot(epochs, h.train_loss, color=f"C{k}", marker="o", label=f"{name}: train")
        ax_loss.plot(epochs, h.val_loss, color=f"C{k}", ls="--", marker="s", label=f"{name}: validation")
        ax_acc.plot(epochs, h.train_acc, color=f"C{k}", marker="o", label=f"{name}: train")
        ax_acc.plot(epochs, h.val_acc, color=f"C{k}", ls="--", marker="s", label=f"{name}: validation")
    ax_loss.set_title("softmax loss")
    ax_acc.set_title("accuracy")
    ax_acc.set_ylim(0, 1.02)
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch (0 = before training)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def plot_gradient_norms(norms: Mapping[str, Mapping[str, float]]) -> Figure:
    """Grouped bars: the gradient norm of each layer (input side first), one colour per model.

    Args:
        norms: model name -> (layer name -> gradient norm), e.g. from
            :func:`cnnlab.model.gradient_norms`; every model must have the same layers.
    """
    models = list(norms)
    layers = list(next(iter(norms.values())))
    width = 0.8 / len(models)
    fig, ax = plt.subplots(figsize=(7.5, 4))
    pos = np.arange(len(layers))
    for k, name in enumerate(models):
        values = [norms[name][layer] for layer in layers]
        ax.bar(pos + (k - (len(models) - 1) / 2) * width, values, width, label=name, color=f"C{k}")
    ax.set_xticks(pos, layers)
    ax.set_yscale("log")
    ax.set_xlabel("layer (input side first)")
    ax.set_ylabel("gradient norm (log scale)")
    ax.set_title("how much gradient reaches each layer at initialisation")
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def plot_filters(w: np.ndarray, title: str = "filters") -> Figure:
    """The first input channel of each filter of ``w`` (K, C, FH, FW), one small image per filter."""
    K = w.shape[0]
    fig, axes = plt.subplots(1, K, figsize=(1.4 * K, 1.8), squeeze=False)
    for k, ax in enumerate(axes[0]):
        lim = float(np.abs(w[k, 0]).max()) or 1.0
        ax.imshow(w[k, 0], cmap="RdBu_r", vmin=-lim, vmax=lim)
        ax.set_title(f"{k}", fontsize=8)
        _no_ticks(ax)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------------------------
# Notebook 05: conv-pool stacks
# ----------------------------------------------------------------------------------------------


def plot_receptive_fields(
    image: np.ndarray, fields: Sequence[tuple[str, int, int]], centre: tuple[int, int] | None = None
) -> Figure:
    """One panel per depth: ``image`` (H, W) with the r x r window one unit sees (solid) and the
    window of its right-hand neighbour, ``j`` pixels further (dashed).

    Args:
        image: the input, shape (H, W).
        fields: ``(label, r, j)`` per depth, e.g. from ``network.receptive_field`` of each prefix.
        centre: the input pixel (row, column) the windows are drawn around (default: the middle).
            Where a unit's window starts exactly depends on the padding; its size does not.
    """
    H, W = image.shape
    cy, cx = centre if centre is not None else (H // 2, W // 2)
    n = len(fields)
    fig, axes = plt.subplots(1, n, figsize=(2.5 * n, 2.9), squeeze=False)
    for ax, (label, r, j) in zip(axes[0], fields, strict=True):
        ax.imshow(image, cmap="gray_r")
        top, left = cy - (r - 1) // 2 - 0.5, cx - (r - 1) // 2 - 0.5
        ax.add_patch(Rectangle((left, top), r, r, fill=False, edgecolor="C3", linewidth=2))
        ax.add_patch(Rectangle((left + j, top), r, r, fill=False, edgecolor="C0", linewidth=1.5, ls="--"))
        ax.set_xlim(-0.5 - 3, W - 0.5 + 3)
        ax.set_ylim(H - 0.5 + 3, -0.5 - 3)
        ax.set_title(f"{label}\nr = {r}, jump = {j}", fontsize=9)
        _no_ticks(ax)
    fig.tight_layout()
    return fig


def plot_feature_change(changes: Mapping[str, Sequence[float]], stages: Sequence[str]) -> Figure:
    """Grouped bars: the relative change of the features after each stage when the input is shifted.

    Args:
        changes: shift label (e.g. "1 px") -> one relative change per stage.
        stages: the stage names, input side first.
    """
    labels = list(changes)
    width = 0.8 / len(labels)
    fig, ax = plt.subplots(figsize=(7.5, 3.8))
    pos = np.arange(len(stages))
    for k, label in enumerate(labels):
        bars = ax.bar(pos + (k - (len(labels) - 1) / 2) * width, changes[label], width, label=label)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(pos, stages)
    ax.set_ylabel(r"$\|f(\mathrm{shift}\,x) - f(x)\| \,/\, \|f(x)\|$")
    ax.set_title("how much the features change when the digit moves (mean over test digits)")
    ax.legend(title="shift", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    return fig


def plot_norms_vs_depth(norms: Mapping[str, Mapping[str, float]]) -> Figure:
    """Gradient norm of each layer against its depth (input side first), one line per model, log y."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for k, (name, values) in enumerate(norms.items()):
        ax.plot(list(values), list(values.values()), "o-", color=f"C{k}", label=name)
    ax.set_yscale("log")
    ax.set_xlabel("layer (input side first)")
    ax.set_ylabel("gradient norm (log scale)")
    ax.set_title("gradient norm against depth, at initialisation")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig
