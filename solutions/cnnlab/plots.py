"""Every figure the notebooks draw (provided), each with a text alternative.

Each function builds a new matplotlib Figure with the object-oriented API and returns it; none
calls ``plt.show()``. Every figure carries a :class:`FigureText`: ``alt``, a sentence saying what the
figure shows (for screen readers, in place of the picture), and ``summary``, one line with the
numbers it shows (read it with :func:`figure_text`).

In a notebook (an IPython kernel with the inline backend) each function also shows its figure at
once, through :func:`show`: the PNG with its ``alt`` in the output's metadata (``image/png`` ->
``alt``) and as the ``alt`` of an HTML ``<img>`` (what JupyterLab and the book display), followed by
the summary printed under it. Set ``plots.AUTO_DISPLAY = False`` to get the figure only (then call
:func:`show` yourself, or ``fig.savefig(...)``). In a script nothing is shown.

Colours: the colour-blind-safe cycle :data:`SAFE_COLOURS` (matplotlib's ``petroff10`` when the
installed matplotlib has it, else Okabe-Ito), perceptually uniform colour maps (viridis, cividis;
grey for photographs), and lines or bars that differ also in marker, line style or hatch, never in
colour alone.

Arrays follow the package's conventions: images (H, W) or batches (N, C, H, W), filters
(K, C, FH, FW). Nothing here computes a task: the numbers to draw are passed in.
"""

from __future__ import annotations

import base64
import html
import io
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
from matplotlib import patheffects
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

_FLOOR = 1e-18  # errors that are exactly 0 are drawn at this height on log axes

# Okabe & Ito (2008), "Color Universal Design": distinguishable with every common colour-vision
# deficiency. Used when matplotlib is older than 3.10 (no petroff10 style).
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")


def _safe_colours() -> tuple[str, ...]:
    style = matplotlib.style.library.get("petroff10")
    if style is not None and "axes.prop_cycle" in style:
        return tuple(style["axes.prop_cycle"].by_key()["color"])
    return OKABE_ITO


SAFE_COLOURS: tuple[str, ...] = _safe_colours()
"""The colour cycle of every figure here: petroff10 (matplotlib >= 3.10) or Okabe-Ito."""

SEQUENTIAL_CMAP = "viridis"  # magnitudes (errors, values)
SIGNED_CMAP = "cividis"  # signed values, drawn with limits symmetric around 0
PHOTO_CMAP = "gray"  # photographs and digits, as they are
SAFE_CMAPS = frozenset({"viridis", "cividis", "gray", "gray_r", "Greys", "Greys_r"})
"""The colour maps these figures use: perceptually uniform, readable with any colour vision."""

_MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
_LINESTYLES = ("-", "--", "-.", ":")
_HATCHES = ("", "//", "..", "xx", "\\\\", "++")

AUTO_DISPLAY = True
"""Show each figure, with its alt text and summary, as soon as it is made (notebooks only)."""


def colour(k: int) -> str:
    """The ``k``-th colour of :data:`SAFE_COLOURS` (cycling)."""
    return SAFE_COLOURS[k % len(SAFE_COLOURS)]


def _marker(k: int) -> str:
    return _MARKERS[k % len(_MARKERS)]


def _linestyle(k: int) -> str:
    return _LINESTYLES[k % len(_LINESTYLES)]


def _hatch(k: int) -> str:
    return _HATCHES[k % len(_HATCHES)]


# ----------------------------------------------------------------------------------------------
# Text alternatives: alt text and a one-line summary, attached to the figure and shown with it
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class FigureText:
    """What a figure says in words.

    Attributes:
        alt: what the figure shows, for a reader who cannot see it (the ``alt`` of its image).
        summary: one line with the numbers it shows, printed under the figure.
    """

    alt: str
    summary: str


_TEXT_ATTR = "_cnnlab_text"


def figure_text(fig: Figure) -> FigureText | None:
    """The :class:`FigureText` attached to ``fig`` by :func:`describe`, or None."""
    return getattr(fig, _TEXT_ATTR, None)


def _one_line(text: str) -> str:
    return re.sub(r"\s+", " ", str(text)).strip()


def describe(fig: Figure, alt: str, summary: str) -> Figure:
    """Attach ``alt`` and ``summary`` to ``fig`` (each made one line) and return ``fig``.

    For a figure drawn in a notebook: ``plots.show(plots.describe(fig, "...", "..."))``.
    """
    alt, summary = _one_line(alt), _one_line(summary)
    if not alt or not summary:
        raise ValueError("describe: alt and summary must be non-empty text")
    setattr(fig, _TEXT_ATTR, FigureText(alt, summary))
    return fig


def _fmt(v: float, digits: int = 3) -> str:
    return f"{float(v):.{digits}g}"


def _values(a: Any, digits: int = 3, limit: int = 16) -> str:
    """``[v0, v1, ...]`` with at most ``limit`` values (then ``, ...`` and the count)."""
    flat = np.asarray(a, dtype=float).ravel()
    shown = ", ".join(_fmt(v, digits) for v in flat[:limit])
    more = f", ... ({flat.size} values)" if flat.size > limit else ""
    return f"[{shown}{more}]"


def _matrix(a: Any, digits: int = 3) -> str:
    """A small 2-D array row by row: ``[[1, 2], [3, 4]]``."""
    a = np.asarray(a, dtype=float)
    if a.ndim != 2 or a.size > 64:
        return _values(a, digits)
    return "[" + ", ".join(_values(row, digits, limit=a.shape[1]) for row in a) + "]"


def _names(names: Any) -> str:
    """The names in a list: separated by commas, or by semicolons when a name holds a comma."""
    names = [str(n) for n in names]
    return ("; " if any("," in n for n in names) else ", ").join(names)


def _shape(a: np.ndarray) -> str:
    return "x".join(str(s) for s in np.shape(a))


def _range(a: Any) -> str:
    a = np.asarray(a, dtype=float)
    return f"{_fmt(a.min())} to {_fmt(a.max())}"


def _in_notebook() -> bool:
    """Whether figures go to a notebook: an IPython kernel with matplotlib's inline backend."""
    ipython = sys.modules.get("IPython")
    if ipython is None:
        return False
    shell = ipython.get_ipython()
    if shell is None or getattr(shell, "kernel", None) is None:
        return False
    return "inline" in matplotlib.get_backend().lower()


def figure_png(fig: Figure) -> bytes:
    """``fig`` as PNG bytes, cropped to what is drawn (as the inline backend draws it)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", bbox_inches="tight", facecolor="white")  # readable on dark themes
    return buf.getvalue()


def figure_bundle(fig: Figure) -> tuple[dict[str, str], dict[str, dict[str, str]]]:
    """The display data and metadata of ``fig`` with its alt text.

    Returns ``(data, metadata)``: ``data`` has ``image/png`` (base64), ``text/html`` (an ``<img>``
    of the same PNG with the alt text: JupyterLab 4 and the book show this one, and JupyterLab's
    image renderer ignores metadata) and ``text/plain`` (the alt text); ``metadata['image/png']``
    has ``alt``.
    """
    text = figure_text(fig)
    if text is None:
        raise ValueError("figure_bundle: the figure has no alt text; call plots.describe(fig, alt, summary)")
    png = base64.b64encode(figure_png(fig)).decode("ascii")
    alt = html.escape(text.alt, quote=True)
    data = {
        "image/png": png,
        "text/html": f'<img class="cnnlab-figure" alt="{alt}" src="data:image/png;base64,{png}">',
        "text/plain": f"Figure: {text.alt}",
    }
    return data, {"image/png": {"alt": text.alt}}


def show(fig: Figure) -> Figure:
    """Show ``fig`` in the notebook with its alt text, then print its one-line summary under it.

    The figure is closed in pyplot afterwards, so that the inline backend does not draw it a second
    time at the end of the cell. Outside a notebook nothing is shown. Returns ``fig``.
    """
    text = figure_text(fig)
    if text is None:
        raise ValueError("show: the figure has no alt text; call plots.describe(fig, alt, summary) first")
    if not _in_notebook():
        return fig
    from IPython.display import display

    data, metadata = figure_bundle(fig)
    display(data, raw=True, metadata=metadata)
    print(text.summary, flush=True)
    plt.close(fig)
    return fig


def _finish(fig: Figure, alt: str, summary: str) -> Figure:
    """Lay out, describe and (in a notebook, unless ``AUTO_DISPLAY`` is off) show ``fig``."""
    describe(fig, alt, summary)
    if AUTO_DISPLAY and _in_notebook():
        show(fig)
    return fig


def _annotate(ax: Any, a: np.ndarray, fmt: str = "{:.2g}", fontsize: float = 8) -> None:
    """Write each entry of the 2-D array ``a`` on top of its cell of the last ``imshow`` of ``ax``.

    The text is white on dark cells and black on light ones.
    """
    im = ax.images[-1]
    for (i, j), v in np.ndenumerate(a):
        r, g, b, _ = im.cmap(im.norm(v))
        ink = "white" if 0.299 * r + 0.587 * g + 0.114 * b < 0.5 else "black"
        ax.text(j, i, fmt.format(v), ha="center", va="center", fontsize=fontsize, color=ink)


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
        (x, "signal $x[t]$"),
        (w, "filter $w[a]$"),
        (w[::-1], "flipped filter $w[-a]$ (what slides over $x$ in a convolution)"),
        (conv_out, r"convolution $h[t] = \sum_a x[t-a]\,w[a]$ (np.convolve, full)"),
        (corr_out, r"cross-correlation $c[t] = \sum_a x[t+a]\,w[a]$ (np.correlate, full)"),
    ]
    for k, (ax, (values, title)) in enumerate(zip(axes, rows, strict=True)):
        ax.stem(
            np.arange(len(values)), values, linefmt=colour(k), markerfmt=_marker(k), basefmt="k-"
        ).markerline.set_color(colour(k))
        ax.set_title(title, fontsize=10, loc="left")
        ax.grid(alpha=0.3)
    axes[-1].set_xlabel("index")
    fig.tight_layout()
    alt = (
        f"Five stem plots stacked over one index axis: the signal x ({len(x)} values), the filter w "
        f"({len(w)} values), the flipped filter w reversed, the full convolution of x and w and the full "
        f"cross-correlation of x and w ({len(conv_out)} values each). The convolution slides the "
        "flipped filter over x, the cross-correlation the filter as it is."
    )
    summary = (
        f"x = {_values(x)}; w = {_values(w)}; convolution = {_values(conv_out)}; "
        f"cross-correlation = {_values(corr_out)}"
    )
    return _finish(fig, alt, summary)


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
    axes[0, 0].imshow(image, cmap=PHOTO_CMAP)
    axes[0, 0].set_title(f"input {image.shape[0]}x{image.shape[1]}")
    _no_ticks(axes[0, 0])
    axes[1, 0].axis("off")
    for col, name in enumerate(names, start=1):
        k = np.asarray(filters[name])
        lim = float(np.abs(k).max()) or 1.0
        axes[0, col].imshow(k, cmap=SIGNED_CMAP, vmin=-lim, vmax=lim)
        _annotate(axes[0, col], k, "{:.3g}", fontsize=9)
        axes[0, col].set_title(f"filter: {name}")
        _no_ticks(axes[0, col])
        m = np.asarray(maps[name])
        lim = float(np.abs(m).max()) or 1.0
        im = axes[1, col].imshow(m, cmap=SIGNED_CMAP, vmin=-lim, vmax=lim)
        axes[1, col].set_title(f"activation map {m.shape[0]}x{m.shape[1]}")
        _no_ticks(axes[1, col])
        fig.colorbar(im, ax=axes[1, col], fraction=0.046, pad=0.04)
    fig.tight_layout()
    alt = (
        f"The {_shape(image)} input image in grey; then, for each of {n} filters ({_names(names)}), "
        "the filter's values written on a colour grid and, below it, the activation map it produces "
        "on the image, coloured from dark blue (most negative) through grey (0) to yellow (most "
        "positive), with a colour bar. Strong responses lie along the edges each filter detects."
    )
    parts = [
        f"{name} {_matrix(filters[name])}: map {_shape(maps[name])}, values {_range(maps[name])}, "
        f"mean |value| {_fmt(np.abs(maps[name]).mean())}"
        for name in names
    ]
    return _finish(fig, alt, "; ".join(parts))


def _draw_windows_1d(ax: Any, n: int, f: int, pad: int, stride: int) -> tuple[str, str]:
    """Draw :func:`plot_windows_1d` on ``ax``; returns its (alt, summary) for this setting."""
    total = n + 2 * pad
    for c in range(total):
        inside = pad <= c < pad + n
        ax.add_patch(
            Rectangle((c, 0), 1, 1, facecolor="white" if inside else "0.8", edgecolor="black", linewidth=0.8)
        )
        ax.text(c + 0.5, 0.5, str(c - pad) if inside else "0", ha="center", va="center", fontsize=8)
    setting = f"N={n}, F={f}, P={pad}, S={stride}"
    if f < 1 or stride < 1 or n < 1 or pad < 0:
        problem = "N, F, S must be >= 1 and P >= 0"
        ax.set_title(problem, color=colour(2))
        m, starts, dropped = 0, [], None
    elif f > total:
        problem = f"F={f} > N+2P={total}: the filter does not fit"
        ax.set_title(problem, color=colour(2))
        m, starts, dropped = 0, [], None
    else:
        problem = ""
        m = (total - f) // stride + 1
        starts = [k * stride for k in range(m)]
        exact = (total - f) % stride == 0
        # when S does not divide N - F + 2P, the next window starts inside the input but runs past it
        dropped = None if exact else m * stride
        note = "" if exact else f"  (S does not divide N-F+2P={total - f}: the rest is dropped)"
        formula = f"M = ({n} - {f} + 2*{pad})//{stride} + 1 = {m}"
        ax.set_title(f"{setting}:  {formula}{note}")
    for k, s in enumerate(starts):
        y = -0.6 - 0.5 * k
        ax.add_patch(Rectangle((s, y), f, 0.35, facecolor=colour(0), alpha=0.6, edgecolor=colour(0)))
        ax.text(s - 0.2, y + 0.17, f"out[{k}]", ha="right", va="center", fontsize=7)
    depth = len(starts)
    if dropped is not None:
        y = -0.6 - 0.5 * depth
        ax.add_patch(
            Rectangle(
                (dropped, y), f, 0.35, facecolor="none", edgecolor=colour(2), linestyle="--", linewidth=1.2
            )
        )
        ax.text(dropped - 0.2, y + 0.17, "dropped", ha="right", va="center", fontsize=7, color=colour(2))
        depth += 1
    ax.set_xlim(-2.5, max(total, (dropped or 0) + f) + 0.5)
    ax.set_ylim(-0.6 - 0.5 * max(depth, 1), 1.3)
    ax.set_aspect("equal")
    ax.axis("off")
    if problem:
        return (
            f"{setting}: a strip of {max(total, 0)} cells and no windows, with the message: {problem}.",
            f"{setting}: {problem}",
        )
    cells = f"a strip of {n} input cells numbered 0 to {n - 1}" + (
        f" with {pad} grey zero-padding cells on each side" if pad else ""
    )
    alt = (
        f"{setting}: {cells}; below it {m} bars, out[0] to out[{m - 1}], each covering the {f} cells of "
        f"one window, each starting {stride} cell{'s' if stride > 1 else ''} after the one before"
        + (
            ", and a dashed bar labelled dropped for the next window, which runs past the end"
            if dropped
            else ""
        )
        + "."
    )
    first = ", ".join(str(s - pad) for s in starts)
    summary = f"{setting}: M = {m} outputs, windows start at input index {first}" + (
        f"; the window at {dropped - pad} is dropped" if dropped is not None else ""
    )
    return alt, summary


def plot_windows_1d(n: int, f: int, pad: int = 0, stride: int = 1, ax: Any = None) -> Figure:
    """The N input cells, P padding cells on each side, and every window position of a filter.

    Input cells are white and numbered, padding cells grey. Each window that fits is a filled bar
    below the strip, labelled ``out[k]``. When S does not divide N - F + 2P, the window that would
    start next inside the input but runs past its end (and is dropped) is a dashed bar labelled
    "dropped". The title gives ``M = floor((N - F + 2P) / S) + 1``. Settings where the filter does
    not fit are drawn with a message instead of raising.

    Args:
        n, f, pad, stride: N, F, P, S.
        ax: an Axes to draw on; by default a new figure is created (and described and, in a
            notebook, shown). On a given Axes the figure is left to its owner.

    Returns:
        the Figure holding ``ax``.
    """
    if ax is not None:
        _draw_windows_1d(ax, n, f, pad, stride)
        return ax.figure
    fig, ax = plt.subplots(figsize=(max(6.0, 0.45 * (n + 2 * pad) + 1), 2.6))
    alt, summary = _draw_windows_1d(ax, n, f, pad, stride)
    return _finish(fig, "Sliding windows along one axis. " + alt, summary)


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
    texts = [
        _draw_windows_1d(ax, n, f, pad, stride)
        for ax, (n, f, pad, stride) in zip(axes, settings, strict=True)
    ]
    fig.tight_layout()
    alt = f"Sliding windows along one axis, {len(settings)} settings, one row each. " + " ".join(
        f"Row {i}: {a}" for i, (a, _) in enumerate(texts, start=1)
    )
    return _finish(fig, alt, "; ".join(s for _, s in texts))


def _log_bars(
    values: Mapping[str, float],
    labels: list[str],
    ylim: tuple[float, float],
    ylabel: str,
    title: str,
    figsize: tuple[float, float],
) -> Figure:
    """One bar per entry of ``values``, on a log scale, each bar named below and labelled on top."""
    fig, ax = plt.subplots(figsize=figsize)
    bars = ax.bar(list(values), list(values.values()), color=[colour(i) for i in range(len(values))])
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
    fig = _log_bars(counts, labels, ylim, "number of parameters (log scale)", title, (7, 4))
    alt = (
        f"Bar chart titled {title!r}, log scale: the number of parameters of {len(counts)} layers "
        f"({_names(counts)}), each bar labelled with its count."
    )
    summary = "parameters: " + "; ".join(f"{k} {v:,}" for k, v in counts.items())
    return _finish(fig, alt, summary)


def plot_images(
    images: Sequence[np.ndarray],
    titles: Sequence[str] | None = None,
    cmap: str = PHOTO_CMAP,
    ncols: int | None = None,
    symmetric: bool = False,
    colorbar: bool = False,
) -> Figure:
    """A grid of 2-D images (e.g. activation maps, shifted inputs), each with an optional title.

    Args:
        images: arrays of shape (H, W).
        titles: one per image.
        cmap: matplotlib colour map; one of :data:`SAFE_CMAPS` (grey for photos, cividis for signed
            maps, viridis for magnitudes).
        ncols: images per row (default: all in one row, at most 6).
        symmetric: colour limits symmetric around 0 (for signed maps).
        colorbar: add a colour bar to each image.
    """
    if cmap not in SAFE_CMAPS:
        raise ValueError(
            f"plot_images: cmap must be one of {sorted(SAFE_CMAPS)} (colour-blind safe), got {cmap!r}"
        )
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
    names = [str(t) for t in titles] if titles is not None else [f"image {k}" for k in range(n)]
    scale = {"cividis": "dark blue to yellow", "viridis": "dark purple to yellow", "gray_r": "white to black"}
    shading = scale.get(cmap, "black to white")
    alt = (
        f"{n} images in {nrows} row{'s' if nrows > 1 else ''} of up to {ncols}, shaded {shading} from "
        f"the lowest to the highest value{' with 0 in the middle' if symmetric else ''}: {_names(names)}."
    )
    summary = "; ".join(
        f"{name}: {_shape(img)}, values {_range(img)}" for name, img in zip(names, images, strict=True)
    )
    return _finish(fig, alt, summary)


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
        highlight: index of the window (column) to outline with a thick frame.
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
    frame = colour(2)
    for c in range(C):
        ax = axes[c]
        ax.imshow(xp[c], cmap=SEQUENTIAL_CMAP)
        _annotate(ax, xp[c], "{:g}", fontsize=9)
        ax.add_patch(
            Rectangle(
                (j * stride - 0.5, i * stride - 0.5), fw, fh, fill=False, edgecolor=frame, lw=3, ls="--"
            )
        )
        ax.set_title(f"input, channel {c}" + (f" (padded by {pad})" if pad else ""))
        _no_ticks(ax)
    ax = axes[C]
    ax.imshow(cols, cmap=SEQUENTIAL_CMAP, aspect="auto")
    _annotate(ax, cols, "{:g}", fontsize=8)
    ax.add_patch(
        Rectangle(
            (highlight - 0.5, -0.5), 1, cols.shape[0], fill=False, edgecolor=frame, linewidth=3, ls="--"
        )
    )
    ax.set_title(f"im2col: {cols.shape[0]} rows (C*FH*FW) x {cols.shape[1]} columns (one per window)")
    ax.set_xlabel(f"window (i, j) -> column i*Wo + j, Ho={Ho}, Wo={Wo}")
    ax.set_ylabel("(c, p, q) in filter order")
    ax.set_xticks(range(cols.shape[1]))
    ax.set_yticks(range(cols.shape[0]))
    fig.tight_layout()
    alt = (
        f"Left: the {C}-channel {H + 2 * pad}x{W + 2 * pad} input with its values written in, one "
        f"{fh}x{fw} window framed by a thick dashed line. Right: the im2col matrix, {cols.shape[0]} rows "
        f"by {cols.shape[1]} columns, one column per window; the column of the framed window (column "
        f"{highlight}) is framed too and holds the same values, read channel by channel, row by row."
    )
    window = cols[:, highlight]
    summary = (
        f"input {_shape(x)}, {fh}x{fw} windows, stride {stride}, pad {pad} -> im2col {_shape(cols)}; "
        f"window {highlight} (row {i}, column {j}) = column {highlight} = {_values(window)}"
    )
    return _finish(fig, alt, summary)


def plot_timings(seconds: Mapping[str, float], title: str = "time per forward pass") -> Figure:
    """Bar chart of run times (log scale), each bar labelled in milliseconds."""
    labels = [f"{1e3 * v:.2f} ms" for v in seconds.values()]
    ylim = (min(seconds.values()) / 3, max(seconds.values()) * 5)
    fig = _log_bars(seconds, labels, ylim, "seconds (log scale)", title, (6, 3.5))
    alt = (
        f"Bar chart titled {title!r}, log scale: the run time of {len(seconds)} variants "
        f"({_names(seconds)}), each bar labelled in milliseconds."
    )
    summary = "time: " + "; ".join(f"{k} {1e3 * v:.2f} ms" for k, v in seconds.items())
    return _finish(fig, alt, summary)


# ----------------------------------------------------------------------------------------------
# Notebook 03: equivariance and pooling
# ----------------------------------------------------------------------------------------------


_EQUIVARIANCE_TITLE = r"$|f(\mathrm{shift}\,x) - \mathrm{shift}\,f(x)|$"


def _plain(title: str) -> str:
    """A matplotlib title in words: TeX markup dropped."""
    text = re.sub(r"\\mathrm\{(\w+)\}", r"\1", title)
    text = re.sub(r"\\[,;!]", " ", text)  # TeX spaces
    text = re.sub(r"\\(?=[a-zA-Z])|[$]", "", text)
    return _one_line(text.replace("{", "").replace("}", ""))


def plot_error_map(err: np.ndarray, title: str = _EQUIVARIANCE_TITLE) -> Figure:
    """A 2-D map of absolute errors (H, W), with a colour bar."""
    err = np.asarray(err, dtype=float)
    fig, ax = plt.subplots(figsize=(4.6, 4))
    im = ax.imshow(err, cmap=SEQUENTIAL_CMAP)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_title(title, fontsize=10)
    _no_ticks(ax)
    fig.tight_layout()
    big = err > 1e-9 * max(float(err.max()), 1e-300)
    rows, cols = np.nonzero(big)
    where = (
        f"rows {rows.min()} to {rows.max()}, columns {cols.min()} to {cols.max()}" if rows.size else "nowhere"
    )
    alt = (
        f"A {_shape(err)} map of absolute errors titled {_plain(title)!r}, dark purple for 0 to yellow "
        f"for the largest error, with a colour bar."
    )
    r, c = np.unravel_index(int(np.argmax(err)), err.shape)
    summary = (
        f"largest error {_fmt(err.max())} at row {r}, column {c}; {int(big.sum())} of {err.size} pixels "
        f"have an error above 1e-9 of it ({where}); mean error {_fmt(err.mean())}"
    )
    return _finish(fig, alt, summary)


def plot_error_vs_shift(
    shifts: Sequence[int],
    errors: Mapping[str, Sequence[float]],
    ylabel: str = "relative error",
    title: str = "",
    logy: bool = True,
) -> Figure:
    """One line per method: an error against the shift size. Exact zeros are drawn at 1e-18.

    Each line has its own colour, marker and line style.
    """
    fig, ax = plt.subplots(figsize=(6.5, 4))
    for k, (name, values) in enumerate(errors.items()):
        v = np.asarray(values, dtype=float)
        if logy:
            v = np.maximum(v, _FLOOR)
        ax.plot(shifts, v, marker=_marker(k), ls=_linestyle(k), color=colour(k), label=name)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel("shift (pixels)")
    ax.set_ylabel(ylabel)
    ax.set_xticks(list(shifts))
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9)
    fig.tight_layout()
    shifts = list(shifts)
    alt = (
        f"Line plot{' titled ' + repr(title) if title else ''}: the {ylabel} (vertical"
        f"{', log scale' if logy else ''}) against the shift from {shifts[0]} to {shifts[-1]} pixels, one "
        f"line per method, each with its own marker and line style: {_names(errors)}."
    )
    summary = f"{ylabel} at shifts {_names(shifts)}: " + "; ".join(
        f"{name} {_values(v, 2)}" for name, v in errors.items()
    )
    return _finish(fig, alt, summary)


def plot_matrices(
    matrices: Mapping[str, np.ndarray],
    fmt: str = "{:g}",
    block: int | None = None,
    cmap: str = SEQUENTIAL_CMAP,
) -> Figure:
    """Small 2-D arrays side by side with their values written in; ``block`` draws window borders.

    Useful to follow a pooling example by hand: input, output, and the gradient routed back.
    """
    if cmap not in SAFE_CMAPS:
        raise ValueError(f"plot_matrices: cmap must be one of {sorted(SAFE_CMAPS)}, got {cmap!r}")
    n = len(matrices)
    fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.4), squeeze=False)
    bordered = []
    halo = [patheffects.withStroke(linewidth=4, foreground="white")]  # black lines seen on dark cells
    for ax, (name, a) in zip(axes[0], matrices.items(), strict=True):
        a = np.asarray(a, dtype=float)
        ax.imshow(a, cmap=cmap)
        _annotate(ax, a, fmt, fontsize=10)
        if block and a.shape[0] % block == 0 and a.shape[0] > block:
            bordered.append(name)
            for t in range(block, a.shape[0], block):
                ax.axhline(t - 0.5, color="black", linewidth=2, path_effects=halo)
            for t in range(block, a.shape[1], block):
                ax.axvline(t - 0.5, color="black", linewidth=2, path_effects=halo)
        ax.set_title(name, fontsize=10)
        _no_ticks(ax)
    fig.tight_layout()
    alt = (
        f"{n} small {'matrices' if n > 1 else 'matrix'} side by side, each value written in its cell: "
        f"{_names(matrices)}"
        + (f"; thick lines split {_names(bordered)} into {block}x{block} windows." if bordered else ".")
    )
    summary = "; ".join(f"{name} = {_matrix(a)}" for name, a in matrices.items())
    return _finish(fig, alt, summary)


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
        ax.plot(depths, values, marker=_marker(k), markersize=size, color=colour(k), label=label)
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
    depths = list(depths)
    lams = ", ".join(f"{lam:g}" for lam in norms)
    alt = (
        f"Line plot, log scale: the norm of the gradient at the input of a stack of residual blocks "
        f"against its depth L from {depths[0]} to {depths[-1]}, one line per skip weight lambda "
        f"({lams}), each with its own marker"
        + (", and the prediction lambda to the power L as thin dashed black lines" if predicted else "")
        + ". The prediction shrinks with depth below lambda = 1, grows above it and stays level at 1."
    )
    summary = f"gradient norm at depth {depths[0]} -> {depths[-1]}: " + "; ".join(
        f"lam {lam:g}: {_fmt(v[0])} -> {_fmt(v[-1])}" for lam, v in norms.items()
    )
    return _finish(fig, alt, summary)


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
                ax.imshow(x[idx[col], 0], cmap=PHOTO_CMAP)
            if col == 0:
                ax.set_ylabel(name)
    fig.tight_layout()
    counts = np.bincount(np.asarray(y, dtype=int), minlength=k)
    alt = (
        f"A grid of grey {x.shape[2]}x{x.shape[3]} images, one row per class ({_names(class_names)}), "
        f"up to {per_class} examples each, the class name at the left of its row."
    )
    summary = f"{len(y)} images: " + ", ".join(f"{name} {counts[i]}" for i, name in enumerate(class_names))
    return _finish(fig, alt, summary)


def plot_training_curves(histories: Mapping[str, Any]) -> Figure:
    """Loss and accuracy per epoch, train (solid, circles) and validation (dashed, squares), per run.

    Args:
        histories: run name -> an object with lists ``train_loss``, ``val_loss``, ``train_acc``,
            ``val_acc`` (e.g. :class:`cnnlab.model.History`); entry 0 is before training.
    """
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    for k, (name, h) in enumerate(histories.items()):
        epochs = np.arange(len(h.train_loss))
        c, mk = colour(k), ("o", "s") if k % 2 == 0 else ("^", "D")
        ax_loss.plot(epochs, h.train_loss, color=c, marker=mk[0], label=f"{name}: train")
        ax_loss.plot(epochs, h.val_loss, color=c, ls="--", marker=mk[1], label=f"{name}: validation")
        ax_acc.plot(epochs, h.train_acc, color=c, marker=mk[0], label=f"{name}: train")
        ax_acc.plot(epochs, h.val_acc, color=c, ls="--", marker=mk[1], label=f"{name}: validation")
    ax_loss.set_title("softmax loss")
    ax_acc.set_title("accuracy")
    ax_acc.set_ylim(0, 1.02)
    for ax in (ax_loss, ax_acc):
        ax.set_xlabel("epoch (0 = before training)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    epochs = max(len(h.train_loss) for h in histories.values()) - 1
    alt = (
        f"Two line plots against the epoch, 0 (before training) to {epochs}: the softmax loss (left) "
        f"and the accuracy (right), for {len(histories)} run{'s' if len(histories) > 1 else ''} "
        f"({_names(histories)}); training as solid lines, validation as dashed lines with other markers."
    )
    parts = [
        f"{name}: train loss {_fmt(h.train_loss[0])} -> {_fmt(h.train_loss[-1])}, validation loss "
        f"{_fmt(h.val_loss[0])} -> {_fmt(h.val_loss[-1])}, train accuracy {_fmt(h.train_acc[0])} -> "
        f"{_fmt(h.train_acc[-1])}, validation accuracy {_fmt(h.val_acc[0])} -> {_fmt(h.val_acc[-1])}"
        for name, h in histories.items()
    ]
    return _finish(fig, alt, "; ".join(parts))


def plot_gradient_norms(norms: Mapping[str, Mapping[str, float]]) -> Figure:
    """Grouped bars: the gradient norm of each layer (input side first), one colour and hatch per model.

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
        ax.bar(
            pos + (k - (len(models) - 1) / 2) * width,
            values,
            width,
            label=name,
            color=colour(k),
            hatch=_hatch(k),
            edgecolor="black",
        )
    ax.set_xticks(pos, layers)
    ax.set_yscale("log")
    ax.set_xlabel("layer (input side first)")
    ax.set_ylabel("gradient norm (log scale)")
    ax.set_title("how much gradient reaches each layer at initialisation")
    ax.legend(fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    alt = (
        f"Grouped bar chart, log scale: the gradient norm of each layer ({_names(layers)}, input side "
        f"first) at initialisation, one bar per model in each group, told apart by colour and hatching: "
        f"{_names(models)}."
    )
    summary = "gradient norms: " + "; ".join(
        f"{name}: " + ", ".join(f"{layer} {_fmt(v, 2)}" for layer, v in norms[name].items())
        for name in models
    )
    return _finish(fig, alt, summary)


def plot_filters(w: np.ndarray, title: str = "filters") -> Figure:
    """The first input channel of each filter of ``w`` (K, C, FH, FW), one small image per filter."""
    K = w.shape[0]
    fig, axes = plt.subplots(1, K, figsize=(1.4 * K, 1.8), squeeze=False)
    for k, ax in enumerate(axes[0]):
        lim = float(np.abs(w[k, 0]).max()) or 1.0
        ax.imshow(w[k, 0], cmap=SIGNED_CMAP, vmin=-lim, vmax=lim)
        ax.set_title(f"{k}", fontsize=8)
        _no_ticks(ax)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    alt = (
        f"{title}: {K} small {w.shape[2]}x{w.shape[3]} images in a row, numbered 0 to {K - 1}, one per "
        "filter (its first input channel), dark blue for negative weights, grey for 0, yellow for positive."
    )
    summary = f"{K} filters {w.shape[2]}x{w.shape[3]}, weights {_range(w[:, 0])}; " + "; ".join(
        f"{k}: {_matrix(w[k, 0], 2)}" for k in range(min(K, 8))
    )
    return _finish(fig, alt, summary)


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
        ax.add_patch(Rectangle((left, top), r, r, fill=False, edgecolor=colour(2), linewidth=2))
        ax.add_patch(
            Rectangle((left + j, top), r, r, fill=False, edgecolor=colour(0), linewidth=1.5, ls="--")
        )
        ax.set_xlim(-0.5 - 3, W - 0.5 + 3)
        ax.set_ylim(H - 0.5 + 3, -0.5 - 3)
        ax.set_title(f"{label}\nr = {r}, jump = {j}", fontsize=9)
        _no_ticks(ax)
    fig.tight_layout()
    alt = (
        f"{n} copies of the same {H}x{W} input image, one per depth ({_names(f[0] for f in fields)}); on "
        "each a solid square marks the window one unit sees and a dashed square the window of its "
        "right-hand neighbour. The squares grow with depth and move further apart after each pooling."
    )
    summary = "receptive field r and jump j: " + "; ".join(
        f"{label}: r = {r}, j = {j}" for label, r, j in fields
    )
    return _finish(fig, alt, summary)


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
        bars = ax.bar(
            pos + (k - (len(labels) - 1) / 2) * width,
            changes[label],
            width,
            label=label,
            color=colour(k),
            hatch=_hatch(k),
            edgecolor="black",
        )
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(pos, stages)
    ax.set_ylabel(r"$\|f(\mathrm{shift}\,x) - f(x)\| \,/\, \|f(x)\|$")
    ax.set_title("how much the features change when the digit moves (mean over test digits)")
    ax.legend(title="shift", fontsize=8)
    ax.grid(alpha=0.3, axis="y")
    fig.tight_layout()
    alt = (
        f"Grouped bar chart: how much the features change, relative to their size, after each stage "
        f"({_names(stages)}, input side first) when the input moves, one bar per shift in each group, "
        f"told apart by colour and hatching ({_names(labels)}), each labelled with its value."
    )
    summary = "relative change of the features: " + "; ".join(
        f"shift {label}: " + ", ".join(f"{s} {v:.2f}" for s, v in zip(stages, changes[label], strict=True))
        for label in labels
    )
    return _finish(fig, alt, summary)


def plot_norms_vs_depth(norms: Mapping[str, Mapping[str, float]]) -> Figure:
    """Gradient norm of each layer against its depth (input side first), one line per model, log y."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for k, (name, values) in enumerate(norms.items()):
        ax.plot(
            list(values),
            list(values.values()),
            marker=_marker(k),
            ls=_linestyle(k),
            color=colour(k),
            label=name,
        )
    ax.set_yscale("log")
    ax.set_xlabel("layer (input side first)")
    ax.set_ylabel("gradient norm (log scale)")
    ax.set_title("gradient norm against depth, at initialisation")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    layers = list(next(iter(norms.values())))
    alt = (
        f"Line plot, log scale: the gradient norm of each layer ({_names(layers)}, input side first) at "
        f"initialisation, one line per model, each with its own marker and line style: {_names(norms)}."
    )
    summary = "gradient norms: " + "; ".join(
        f"{name}: " + ", ".join(f"{layer} {_fmt(v, 2)}" for layer, v in values.items())
        for name, values in norms.items()
    )
    return _finish(fig, alt, summary)
