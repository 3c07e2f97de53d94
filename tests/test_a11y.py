"""A course for everyone, checked without a browser (issue 23).

* Every figure described: each ``plot_*`` function of ``cnnlab.plots`` attaches alt text (what the figure
  shows, in words, never a file name) and a one-line summary holding the numbers it shows, checked
  against numbers worked out by hand or with numpy here. In a real kernel with the inline backend the
  figure is shown once, with its alt text in the PNG's metadata and in an ``<img alt>``, and the summary
  is printed right under it.
* Colour-safe: every colour drawn comes from the colour-blind-safe cycle (or is black, white or a grey),
  every colour map is viridis, cividis or grey, and series that a legend names differ in marker, line
  style or hatching, not in colour alone.
* Navigable: each notebook (source and release) and the book's landing page has exactly one H1, in its
  first cell, no skipped heading levels, descriptive link text and alt text on any image; notebooks draw
  figures only through ``cnnlab.plots``.

The browser half (axe-core on the book and in JupyterLab, the keyboard-only test) is in
``test_book.py`` and ``test_browser_student.py``.
"""

from __future__ import annotations

import ast
import functools
import importlib
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import Collection  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
from matplotlib.text import Text  # noqa: E402

from autograder.reference import load_reference  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
REF = load_reference()
plots = importlib.import_module(f"{REF.__name__}.plots")
data = importlib.import_module(f"{REF.__name__}.data")
fast = importlib.import_module(f"{REF.__name__}.fast")

NOTEBOOK_DIRS = [ROOT / "solutions" / "notebooks", ROOT / "notebooks"]
NOTEBOOKS = sorted(p for d in NOTEBOOK_DIRS for p in d.glob("*.ipynb"))


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


# --- every plot function, called with inputs whose numbers are known -------------------------------

H = SimpleNamespace(train_loss=[1.1, 0.5], val_loss=[1.2, 0.6], train_acc=[0.3, 0.9], val_acc=[0.25, 0.8])
H2 = SimpleNamespace(train_loss=[1.0, 0.7], val_loss=[1.0, 0.9], train_acc=[0.3, 0.6], val_acc=[0.3, 0.5])
SHAPES_X, SHAPES_Y = data.make_shapes(30, 12, seed=0)

# name -> (call, strings the summary must hold, worked out by hand or independently of plots.py)
SAMPLES: dict[str, tuple[Callable[[], object], list[str]]] = {
    "plot_convolution_vs_correlation": (
        lambda: plots.plot_convolution_vs_correlation(np.array([0, 1, 1, 0, 2.0]), np.array([1, 0.5, 0.25])),
        # by hand: h[t] = sum_a x[t-a] w[a]; c[t] = sum_a x[t+a] w[a] (numpy's full correlate)
        [
            "convolution = [0, 1, 1.5, 0.75, 2.25, 1, 0.5]",
            "cross-correlation = [0, 0.25, 0.75, 1.5, 1.5, 1, 2]",
        ],
    ),
    "plot_filters_and_maps": (
        lambda: plots.plot_filters_and_maps(
            np.zeros((6, 6)),
            {"edge": np.array([[1.0, 0.0, -1.0]] * 3)},
            {"edge": np.array([[-3.0, 0.0], [1.0, 2.0]])},
        ),
        ["edge [[1, 0, -1], [1, 0, -1], [1, 0, -1]]", "values -3 to 2", "mean |value| 1.5"],
    ),
    "plot_windows_1d": (
        lambda: plots.plot_windows_1d(8, 3, 0, 2),
        # (8 - 3) // 2 + 1 = 3 windows at 0, 2, 4; the one at 6 would need cells 6..8 of 0..7
        ["M = 3 outputs", "start at input index 0, 2, 4", "the window at 6 is dropped"],
    ),
    "plot_windows_grid": (
        lambda: plots.plot_windows_grid([(7, 3, 0, 1), (5, 3, 1, 2), (3, 5, 0, 1)]),
        # padded by 1: windows start at padded cells 0, 2, 4 = input index -1, 1, 3
        ["M = 5 outputs", "start at input index -1, 1, 3", "does not fit"],
    ),
    "plot_param_counts": (
        lambda: plots.plot_param_counts({"fc": 24_092_320, "conv": 760}),
        ["fc 24,092,320", "conv 760"],
    ),
    "plot_images": (
        lambda: plots.plot_images([np.full((4, 5), 2.0), np.array([[-1.0, 3.0]])], ["two", "signed"]),
        ["two: 4x5, values 2 to 2", "signed: 1x2, values -1 to 3"],
    ),
    "plot_im2col": (
        lambda: plots.plot_im2col(
            np.arange(1.0, 17.0).reshape(1, 1, 4, 4),
            fast.im2col(np.arange(1.0, 17.0).reshape(1, 1, 4, 4), 2, 2),
            2,
            2,
            highlight=4,
        ),
        # window 4 of a 3 x 3 grid is (1, 1): rows 1-2, columns 1-2 of 1..16 row by row
        ["im2col 4x9", "window 4 (row 1, column 1) = column 4 = [6, 7, 10, 11]"],
    ),
    "plot_timings": (
        lambda: plots.plot_timings({"loops": 0.02, "im2col": 0.00125}),
        ["loops 20.00 ms", "im2col 1.25 ms"],
    ),
    "plot_error_map": (
        lambda: plots.plot_error_map(np.array([[0.0, 2.0, 0.0], [0.5, 0.0, 0.0]])),
        ["largest error 2 at row 0, column 1", "2 of 6 pixels", "mean error 0.417"],
    ),
    "plot_error_vs_shift": (
        lambda: plots.plot_error_vs_shift([0, 1, 2], {"a": [0.0, 1e-3, 1e-2], "b": [0.5, 0.25, 0.0]}),
        ["shifts 0, 1, 2", "a [0, 0.001, 0.01]", "b [0.5, 0.25, 0]"],
    ),
    "plot_matrices": (
        lambda: plots.plot_matrices({"x": np.array([[1.0, 2.0], [3.0, 4.0]]), "out": np.array([[4.0]])}),
        ["x = [[1, 2], [3, 4]]", "out = [[4]]"],
    ),
    "plot_grad_norm_vs_depth": (
        lambda: plots.plot_grad_norm_vs_depth(
            [1, 2, 4],
            {0.5: [0.5, 0.25, 0.0625], 1.0: [1.0, 1.0, 1.0]},
            {0.5: [0.5, 0.25, 0.0625], 1.0: [1, 1, 1]},
        ),
        ["depth 1 -> 4", "lam 0.5: 0.5 -> 0.0625", "lam 1: 1 -> 1"],
    ),
    "plot_shapes": (
        lambda: plots.plot_shapes(SHAPES_X, SHAPES_Y, data.CLASS_NAMES, per_class=4),
        [f"{name} {int(np.sum(SHAPES_Y == k))}" for k, name in enumerate(data.CLASS_NAMES)],
    ),
    "plot_training_curves": (
        lambda: plots.plot_training_curves({"small": H, "big": H2}),
        ["small: train loss 1.1 -> 0.5", "validation accuracy 0.25 -> 0.8", "big: train loss 1 -> 0.7"],
    ),
    "plot_gradient_norms": (
        lambda: plots.plot_gradient_norms(
            {"plain": {"conv": 1e-3, "fc": 0.1}, "residual": {"conv": 0.5, "fc": 1.0}}
        ),
        ["plain: conv 0.001, fc 0.1", "residual: conv 0.5, fc 1"],
    ),
    "plot_filters": (
        lambda: plots.plot_filters(np.arange(2 * 1 * 2 * 2, dtype=float).reshape(2, 1, 2, 2) - 3, "learned"),
        ["2 filters 2x2", "weights -3 to 4", "0: [[-3, -2], [-1, 0]]"],
    ),
    "plot_receptive_fields": (
        lambda: plots.plot_receptive_fields(
            np.zeros((16, 16)), [("input", 1, 1), ("conv", 3, 1), ("pool", 4, 2)]
        ),
        ["input: r = 1, j = 1", "conv: r = 3, j = 1", "pool: r = 4, j = 2"],
    ),
    "plot_feature_change": (
        lambda: plots.plot_feature_change({"1 px": [0.5, 0.125], "2 px": [0.75, 0.25]}, ["input", "pool"]),
        ["shift 1 px: input 0.50, pool 0.12", "shift 2 px: input 0.75, pool 0.25"],
    ),
    "plot_norms_vs_depth": (
        lambda: plots.plot_norms_vs_depth(
            {"plain": {"conv": 1e-4, "fc": 7e-3}, "res": {"conv": 0.02, "fc": 1.3}}
        ),
        ["plain: conv 0.0001, fc 0.007", "res: conv 0.02, fc 1.3"],
    ),
}


@functools.cache
def _figure(name: str):
    """The figure of ``SAMPLES[name]``, made once (closing it in pyplot leaves it readable)."""
    return SAMPLES[name][0]()


def _plot_functions() -> list[str]:
    tree = ast.parse(Path(plots.__file__).read_text())
    return sorted(n.name for n in tree.body if isinstance(n, ast.FunctionDef) and n.name.startswith("plot_"))


def test_every_plot_function_has_a_sample():
    """A new plot function must be added to SAMPLES (and so get its alt text and colours checked)."""
    assert sorted(SAMPLES) == _plot_functions()


FILE_NAME = re.compile(r"^\S+\.(png|jpe?g|svg|gif|pdf)$", re.IGNORECASE)


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_figure_has_alt_text_and_a_summary_of_its_numbers(name):
    fig, expected = _figure(name), SAMPLES[name][1]
    text = plots.figure_text(fig)
    assert text is not None, f"{name} attaches no alt text (plots.describe)"
    alt, summary = text.alt, text.summary
    assert len(alt.split()) >= 8, f"{name}: the alt text says too little: {alt!r}"
    assert not FILE_NAME.match(alt), f"{name}: the alt text is a file name: {alt!r}"
    assert "$" not in alt and "\\" not in alt, f"{name}: TeX in the alt text: {alt!r}"
    assert "\n" not in summary and re.search(r"\d", summary), f"{name}: summary {summary!r}"
    missing = [e for e in expected if e not in summary]
    assert not missing, f"{name}: the summary lacks {missing}:\n{summary}"


# --- colours ----------------------------------------------------------------------------------------


def _rgb(c) -> tuple[float, float, float]:
    return tuple(round(v, 3) for v in mcolors.to_rgb(c))


SAFE_RGB = {_rgb(c) for c in plots.SAFE_COLOURS}


def _allowed(c) -> bool:
    """A colour from the safe cycle, or black, white or a grey (r = g = b), or not drawn at all."""
    rgba = mcolors.to_rgba(c)
    if rgba[3] == 0:
        return True
    r, g, b = _rgb(c)
    return (r, g, b) in SAFE_RGB or (r == g == b)


def _drawn_colours(fig) -> tuple[list[tuple[str, object]], list[str]]:
    """(artist kind, colour) of every line, patch, text and collection; colour map names."""
    colours, cmaps = [], []
    for artist in fig.findobj():
        if not artist.get_visible():
            continue
        if isinstance(artist, AxesImage) or (
            isinstance(artist, Collection) and artist.get_array() is not None
        ):
            cmaps.append(artist.get_cmap().name)
            continue
        if isinstance(artist, Line2D):
            colours += [("line", artist.get_color())]
            if artist.get_marker() not in ("None", None, ""):
                colours += [
                    ("marker", artist.get_markerfacecolor()),
                    ("marker", artist.get_markeredgecolor()),
                ]
        elif isinstance(artist, Patch):
            colours += [("patch face", artist.get_facecolor()), ("patch edge", artist.get_edgecolor())]
        elif isinstance(artist, Text) and artist.get_text():
            colours += [(f"text {artist.get_text()[:20]!r}", artist.get_color())]
        elif isinstance(artist, Collection):
            colours += [("collection", c) for c in artist.get_facecolors()]
            colours += [("collection edge", c) for c in artist.get_edgecolors()]
    return colours, cmaps


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_figure_colours_come_from_the_safe_cycle_and_maps(name):
    fig = _figure(name)
    colours, cmaps = _drawn_colours(fig)
    bad = sorted({f"{kind}: {mcolors.to_hex(c, keep_alpha=False)}" for kind, c in colours if not _allowed(c)})
    assert not bad, f"{name} draws colours outside the safe cycle: {bad}"
    assert set(cmaps) <= plots.SAFE_CMAPS, f"{name} uses colour maps {set(cmaps) - plots.SAFE_CMAPS}"


def _legend_styles(ax) -> list[tuple[str, object]]:
    """What besides colour tells each legend entry apart: (label, (marker, linestyle) or hatch)."""
    legend = ax.get_legend()
    if legend is None:
        return []
    out = []
    for handle, text in zip(legend.legend_handles, legend.get_texts(), strict=True):
        if isinstance(handle, Line2D):
            out.append((text.get_text(), (handle.get_marker(), handle.get_linestyle())))
        elif isinstance(handle, Patch):
            out.append((text.get_text(), handle.get_hatch() or ""))
    return out


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_series_differ_in_more_than_colour(name):
    """Lines differ in marker or line style, bars in hatching: a reader who cannot tell the colours
    apart still tells the series apart."""
    fig = _figure(name)
    for ax in fig.axes:
        styles = _legend_styles(ax)
        kinds = [s for _, s in styles]
        assert len(set(map(repr, kinds))) == len(kinds), (
            f"{name}: series told apart by colour alone: {styles}"
        )


def test_safe_cycle_is_petroff10_or_okabe_ito():
    petroff = matplotlib.style.library.get("petroff10")
    if petroff is not None:
        assert list(plots.SAFE_COLOURS) == petroff["axes.prop_cycle"].by_key()["color"]
    else:
        assert plots.SAFE_COLOURS == plots.OKABE_ITO
    assert {_rgb(c) for c in plots.OKABE_ITO} >= {_rgb("#E69F00"), _rgb("#56B4E9"), _rgb("#009E73")}
    assert not _allowed("red") and not _allowed("#2ca02c"), "the colour check can fail (red; tab:green)"
    assert _allowed("0.8") and _allowed("black") and _allowed(plots.SAFE_COLOURS[3])


def test_unsafe_colour_maps_are_refused():
    with pytest.raises(ValueError, match="cmap must be one of"):
        plots.plot_images([np.zeros((2, 2))], cmap="RdYlGn")
    with pytest.raises(ValueError, match="cmap must be one of"):
        plots.plot_matrices({"x": np.zeros((2, 2))}, cmap="jet")


# --- notebooks and the book's landing page: headings, links, images --------------------------------


def _markdown_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def _code_cells(path: Path) -> list[str]:
    nb = json.loads(path.read_text())
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code"]


FENCE = re.compile(r"^(```|~~~|:::)")


def headings(markdown: str) -> list[tuple[int, str]]:
    """The ATX headings ``# ...`` of ``markdown`` outside code fences, and HTML ``<hN>`` ones."""
    out, fenced = [], False
    for line in markdown.splitlines():
        if FENCE.match(line.strip()) and line.strip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        if fenced:
            continue
        m = re.match(r"^ {0,3}(#{1,6})\s+(.*\S)", line)
        if m:
            out.append((len(m.group(1)), m.group(2)))
    out += [(int(n), t) for n, t in re.findall(r"<h([1-6])[^>]*>(.*?)</h\1>", markdown, re.IGNORECASE)]
    return out


def heading_problems(cells: list[str]) -> list[str]:
    """Why this heading outline is hard to navigate (one H1, first; no level skipped), or []."""
    outline = [h for cell in cells for h in headings(cell)]
    problems = []
    h1 = [t for level, t in outline if level == 1]
    if len(h1) != 1:
        problems.append(f"{len(h1)} H1 headings, want exactly 1: {h1}")
    if outline and outline[0][0] != 1:
        problems.append(f"the first heading is not the H1: {outline[0]}")
    if cells and not headings(cells[0])[:1] == [(1, h1[0] if h1 else None)]:
        problems.append("the first Markdown cell does not start with the H1")
    for (a, ta), (b, tb) in zip(outline, outline[1:], strict=False):
        if b > a + 1:
            problems.append(f"skips from H{a} {ta!r} to H{b} {tb!r}")
    return problems


VAGUE_LINKS = {"here", "click here", "link", "this", "this link", "more", "read more", "this page", "page"}
LINK = re.compile(r"(!?)\[([^\]]*)\]\(([^)\s]+)[^)]*\)")


def link_problems(markdown: str) -> list[str]:
    problems = []
    for bang, text, target in LINK.findall(markdown):
        label = re.sub(r"[`*_]", "", text).strip()
        if bang:
            if not label or FILE_NAME.match(label):
                problems.append(f"image {target} has no alt text ({text!r})")
        elif not label or label.lower() in VAGUE_LINKS or re.match(r"^https?://", label):
            problems.append(f"link to {target} has vague text {text!r}")
    for tag in re.findall(r"<img\b[^>]*>", markdown, re.IGNORECASE):
        if not re.search(r'\balt="[^"]+"', tag):
            problems.append(f"<img> without alt: {tag[:80]}")
    for tag, text in re.findall(r"(<a\b[^>]*>)(.*?)</a>", markdown, re.IGNORECASE | re.DOTALL):
        if re.sub(r"<[^>]+>", "", text).strip().lower() in VAGUE_LINKS | {""}:
            problems.append(f"link {tag} has vague text {text!r}")
    return problems


def test_heading_and_link_checks_can_fail():
    """The checks below catch what they are for."""
    assert heading_problems(["# A\n## B", "#### D"]) == ["skips from H2 'B' to H4 'D'"]
    assert "2 H1 headings" in heading_problems(["# A", "# B"])[0]
    assert heading_problems(["intro", "# A"])  # the H1 is not in the first cell
    assert heading_problems(["# A\n```\n# a comment in code\n```\n## B"]) == []
    assert link_problems("see [here](a.html) and [the layer](b.html) and ![](x.png)") == [
        "link to a.html has vague text 'here'",
        "image x.png has no alt text ('')",
    ]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_has_one_h1_no_skipped_levels_and_descriptive_links(path):
    cells = _markdown_cells(path)
    problems = heading_problems(cells) + [p for cell in cells for p in link_problems(cell)]
    assert not problems, f"{path.relative_to(ROOT)}:\n" + "\n".join(problems)


def test_book_landing_page_has_one_h1_no_skipped_levels_and_descriptive_links():
    text = (ROOT / "book" / "intro.md").read_text()
    problems = heading_problems([text]) + link_problems(text)
    assert not problems, "book/intro.md:\n" + "\n".join(problems)


DRAWING = re.compile(
    r"\bplt\.(subplots|figure|plot|imshow|bar|scatter|hist|matshow|stem|subplot)\(|\.(imshow|matshow|pcolormesh)\("
)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_notebook_figures_are_drawn_by_cnnlab_plots(path):
    """A figure drawn in a notebook cell itself would have no alt text: each figure comes from a
    ``plots.plot_*`` function (or is given its text with ``plots.describe`` and ``plots.show``), and
    a colour map named in a plotting call is a safe one."""
    for source in _code_cells(path):
        if DRAWING.search(source):
            assert "plots.describe(" in source and "plots.show(" in source, (
                f"{path.name}: a cell draws a figure without alt text:\n{source[:400]}"
            )
        for cmap in re.findall(r"cmap\s*=\s*[\"']([^\"']+)[\"']", source):
            assert cmap in plots.SAFE_CMAPS, f"{path.name}: colour map {cmap!r} is not colour-blind safe"


# --- in a real kernel: shown once, alt in the metadata and the <img>, the summary printed under it -----


@pytest.mark.slow
def test_in_a_kernel_each_figure_is_shown_once_with_alt_then_its_summary():
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell("%matplotlib inline\nimport numpy as np\nfrom cnnlab import plots"),
        nbformat.v4.new_code_cell(
            "print('before')\n"
            "fig = plots.plot_param_counts({'fc': 24092320, 'conv': 760})\n"
            "fig2 = plots.plot_matrices({'x': np.array([[1.0, 2.0], [3.0, 4.0]])})\n"
            "print('after')"
        ),
    ]
    env = {k: v for k, v in os.environ.items() if k not in ("MPLBACKEND", "PYTHONPATH")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "solutions"), str(ROOT)])
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"
    client = nbclient.NotebookClient(nb, timeout=120, kernel_name="python3")
    client.execute(env=env)
    outputs = nb.cells[1].outputs
    kinds = [o.output_type for o in outputs]
    runs = [k for i, k in enumerate(kinds) if i == 0 or not k == kinds[i - 1] == "stream"]
    assert runs == ["stream", "display_data", "stream", "display_data", "stream"], kinds
    assert outputs[2].text.startswith("parameters: fc 24,092,320"), "the summary comes right under its figure"
    text = "".join(o.text for o in outputs if o.output_type == "stream")
    assert text.splitlines() == [
        "before",
        "parameters: fc 24,092,320; conv 760",
        "x = [[1, 2], [3, 4]]",
        "after",
    ]
    for out in (outputs[1], outputs[3]):
        alt = out.metadata["image/png"]["alt"]
        assert len(alt.split()) >= 8
        assert out.data["image/png"] and f"base64,{out.data['image/png']}" in out.data["text/html"]
        assert re.search(r'<img [^>]*alt="[^"]{20,}"', out.data["text/html"])


def test_the_book_build_refuses_a_figure_without_alt_text():
    """tools/book.py stops on an image output with no alt in its metadata or an <img> without alt."""
    from tools.book import undescribed_figures

    def nb(*outputs):
        return {
            "cells": [
                {"cell_type": "markdown", "source": "# T"},
                {"cell_type": "code", "outputs": list(outputs)},
            ]
        }

    png = {"image/png": "iVBOR"}
    good = {
        "data": {**png, "text/html": '<img alt="a bar chart" src="x">'},
        "metadata": {"image/png": {"alt": "a"}},
    }
    assert undescribed_figures(nb(good, {"output_type": "stream", "text": "x = 1"})) == []
    assert undescribed_figures(nb({"data": png, "metadata": {}})) == ["cell 1, output 0"]
    bad_html = {"data": {**png, "text/html": '<img src="x">'}, "metadata": {"image/png": {"alt": "a"}}}
    assert undescribed_figures(nb(good, bad_html)) == ["cell 1, output 1"]
