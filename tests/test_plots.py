"""The provided plotting helpers (cnnlab/plots.py): each returns a Figure with the expected artists.

Runs headless (Agg); no helper may call ``plt.show()``; every figure is closed after each test.
"""

from __future__ import annotations

import importlib
from types import SimpleNamespace

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.container import BarContainer, StemContainer  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from autograder.reference import load_reference  # noqa: E402

REF = load_reference()
plots = importlib.import_module(f"{REF.__name__}.plots")


@pytest.fixture(autouse=True)
def no_show_and_close(monkeypatch):
    def fail(*args, **kwargs):
        raise AssertionError("plots must not call plt.show()")

    monkeypatch.setattr(plt, "show", fail)
    yield
    plt.close("all")


def bars(ax) -> int:
    return sum(len(c) for c in ax.containers if isinstance(c, BarContainer))


def test_convolution_vs_correlation_draws_five_stem_plots():
    fig = plots.plot_convolution_vs_correlation(np.array([0, 1, 1, 0, 2.0]), np.array([1, 0.5, 0.25]))
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 5
    lengths = []
    for ax in fig.axes:
        stems = [c for c in ax.containers if isinstance(c, StemContainer)]
        assert len(stems) == 1
        lengths.append(len(stems[0].markerline.get_xdata()))
    assert lengths == [5, 3, 3, 7, 7]
    conv_y = fig.axes[3].containers[0].markerline.get_ydata()
    np.testing.assert_allclose(conv_y, np.convolve([0, 1, 1, 0, 2.0], [1, 0.5, 0.25]))


def test_filters_and_maps_draws_image_filters_and_maps():
    image = np.random.default_rng(0).random((8, 8))
    filters = {"a": np.eye(3), "b": -np.eye(3)}
    maps = {"a": np.ones((6, 6)), "b": np.zeros((6, 6))}
    fig = plots.plot_filters_and_maps(image, filters, maps)
    images = [im for ax in fig.axes for im in ax.images]
    assert len(images) == 1 + 2 * len(filters)
    assert any(t.get_text() == "-1" for ax in fig.axes for t in ax.texts), "filter values are written in"


@pytest.mark.parametrize(
    ("n", "f", "pad", "stride", "m", "dropped"),
    [
        (7, 3, 0, 1, 5, False),
        (7, 3, 0, 2, 3, False),
        (8, 3, 0, 2, 3, True),
        (7, 2, 0, 3, 2, True),
        (5, 5, 0, 1, 1, False),
    ],
)
def test_windows_1d_draws_cells_and_windows(n, f, pad, stride, m, dropped):
    fig = plots.plot_windows_1d(n, f, pad, stride)
    (ax,) = fig.axes
    assert len(ax.patches) == n + 2 * pad + m + int(dropped)
    assert f"= {m}" in ax.get_title()
    assert ("dropped" in [t.get_text() for t in ax.texts]) == dropped


def test_windows_1d_explains_a_filter_that_does_not_fit():
    fig = plots.plot_windows_1d(3, 5, 0, 1)
    assert "does not fit" in fig.axes[0].get_title()
    assert len(fig.axes[0].patches) == 3


def test_windows_grid_has_one_row_per_setting():
    settings = [(7, 3, 0, 1), (7, 3, 1, 2), (4, 3, 0, 3)]
    fig = plots.plot_windows_grid(settings)
    assert len(fig.axes) == len(settings)
    assert all("M =" in ax.get_title() for ax in fig.axes)


def test_param_counts_is_a_log_bar_chart():
    fig = plots.plot_param_counts({"fc": 24_092_320, "local": 595_840, "conv": 760})
    (ax,) = fig.axes
    assert bars(ax) == 3
    assert ax.get_yscale() == "log"
    assert "760" in [t.get_text() for t in ax.texts]


def test_images_grid_fills_rows_and_hides_the_rest():
    imgs = [np.full((4, 4), k, dtype=float) for k in range(5)]
    fig = plots.plot_images(imgs, [f"{k}" for k in range(5)], ncols=3, symmetric=True, colorbar=True)
    drawn = [ax for ax in fig.axes if ax.images]
    assert len(drawn) == 5
    assert [ax.get_title() for ax in drawn] == ["0", "1", "2", "3", "4"]


def test_im2col_shows_input_and_matrix():
    fast = importlib.import_module(f"{REF.__name__}.fast")
    x = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    cols = fast.im2col(x, 2, 2)
    fig = plots.plot_im2col(x, cols, 2, 2, highlight=4)
    images = [im for ax in fig.axes for im in ax.images]
    assert len(images) == 2
    assert images[1].get_array().shape == cols.shape == (4, 9)
    assert all(any(isinstance(p, matplotlib.patches.Rectangle) for p in ax.patches) for ax in fig.axes)


def test_timings_bar_chart():
    fig = plots.plot_timings({"loops": 0.02, "im2col": 0.001})
    assert bars(fig.axes[0]) == 2 and fig.axes[0].get_yscale() == "log"


def test_error_map_has_image_and_colorbar():
    fig = plots.plot_error_map(np.random.default_rng(0).random((5, 5)))
    assert len(fig.axes) == 2  # the map and its colour bar
    assert len(fig.axes[0].images) == 1


def test_error_vs_shift_draws_one_line_per_method_and_floors_zeros():
    errors = {"a": [0.0, 1e-3, 1e-2], "b": [0.0, 0.0, 0.0]}
    fig = plots.plot_error_vs_shift([0, 1, 2], errors)
    (ax,) = fig.axes
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"
    assert all(min(line.get_ydata()) > 0 for line in ax.lines)
    fig = plots.plot_error_vs_shift([0, 1, 2], errors, logy=False)
    assert fig.axes[0].get_yscale() == "linear"
    assert min(fig.axes[0].lines[1].get_ydata()) == 0


def test_matrices_with_window_borders():
    fig = plots.plot_matrices({"x": np.arange(16.0).reshape(4, 4), "out": np.ones((2, 2))}, block=2)
    assert len(fig.axes) == 2
    assert len(fig.axes[0].texts) == 16 and len(fig.axes[1].texts) == 4
    assert len(fig.axes[0].lines) == 2  # one horizontal, one vertical window border


def test_grad_norm_vs_depth_draws_measured_and_predicted():
    depths = [1, 2, 4]
    lams = (0.0, 0.5, 1.0, 1.5)
    norms = {lam: [lam**d + 1e-3 for d in depths] for lam in lams}
    norms[0.0] = [1e-2, 0.0, 1e-9]  # an exact 0 must not break the log scale
    predicted = {lam: [lam**d for d in depths] for lam in lams}
    fig = plots.plot_grad_norm_vs_depth(depths, norms, predicted)
    (ax,) = fig.axes
    assert ax.get_yscale() == "log"
    assert len(ax.lines) == len(lams) + (len(lams) - 1)  # lam = 0 has no lam**L line
    assert all(min(line.get_ydata()) > 0 for line in ax.lines)


def test_shapes_grid_one_row_per_class():
    data = importlib.import_module(f"{REF.__name__}.data")
    x, y = data.make_shapes(30, 12, seed=0)
    fig = plots.plot_shapes(x, y, data.CLASS_NAMES, per_class=4)
    assert len(fig.axes) == 3 * 4
    assert sum(len(ax.images) for ax in fig.axes) == 12
    assert [fig.axes[4 * k].get_ylabel() for k in range(3)] == list(data.CLASS_NAMES)


def test_training_curves_train_and_validation_per_run():
    h = SimpleNamespace(train_loss=[1.1, 0.5], val_loss=[1.1, 0.6], train_acc=[0.3, 0.9], val_acc=[0.3, 0.8])
    fig = plots.plot_training_curves({"a": h, "b": h})
    assert len(fig.axes) == 2
    assert all(len(ax.lines) == 4 for ax in fig.axes)
    assert all(ax.get_legend() is not None for ax in fig.axes)


def test_gradient_norms_grouped_bars():
    norms = {
        "plain": {"conv": 1e-3, "block0": 1e-2, "fc": 1e-1},
        "residual": {"conv": 0.5, "block0": 0.4, "fc": 1},
    }
    fig = plots.plot_gradient_norms(norms)
    (ax,) = fig.axes
    assert bars(ax) == 6 and ax.get_yscale() == "log"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["conv", "block0", "fc"]


def test_filters_one_image_per_filter():
    fig = plots.plot_filters(np.random.default_rng(0).standard_normal((5, 2, 3, 3)))
    assert sum(len(ax.images) for ax in fig.axes) == 5


def test_every_public_helper_is_tested_here():
    """A new plotting helper needs a test in this file."""
    import ast
    from pathlib import Path

    source = Path(plots.__file__).read_text()
    helpers = {
        n.name
        for n in ast.parse(source).body
        if isinstance(n, ast.FunctionDef) and not n.name.startswith("_")
    }
    this = Path(__file__).read_text()
    untested = sorted(h for h in helpers if f"plots.{h}(" not in this)
    assert not untested, f"untested plotting helpers: {untested}"


def test_receptive_fields_one_panel_per_depth_with_two_windows():
    fields = [("input", 1, 1), ("conv", 3, 1), ("pool", 4, 2)]
    fig = plots.plot_receptive_fields(np.zeros((16, 16)), fields)
    assert len(fig.axes) == 3
    for ax, (_, r, j) in zip(fig.axes, fields, strict=True):
        solid, dashed = ax.patches
        assert solid.get_width() == solid.get_height() == r
        assert dashed.get_x() - solid.get_x() == j
        assert f"r = {r}, jump = {j}" in ax.get_title()


def test_feature_change_grouped_bars_labelled():
    stages = ["input", "conv", "pool"]
    fig = plots.plot_feature_change({"1 px": [0.5, 0.6, 0.4], "2 px": [0.8, 0.9, 0.7]}, stages)
    ax = fig.axes[0]
    assert bars(ax) == 6
    assert [t.get_text() for t in ax.get_xticklabels()] == stages


def test_norms_vs_depth_one_line_per_model_on_log_axis():
    norms = {
        "plain": {"conv": 1e-4, "block0": 7e-4, "fc": 7e-3},
        "res": {"conv": 2e-2, "block0": 2e-2, "fc": 1.3},
    }
    fig = plots.plot_norms_vs_depth(norms)
    ax = fig.axes[0]
    assert len(ax.lines) == 2 and ax.get_yscale() == "log"
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1e-4, 7e-4, 7e-3])


# --- text alternatives and display ------------------------------------------------------------------


def test_colour_cycles_through_the_safe_colours():
    n = len(plots.SAFE_COLOURS)
    assert n >= 8
    assert [plots.colour(k) for k in range(n)] == list(plots.SAFE_COLOURS)
    assert plots.colour(n + 1) == plots.SAFE_COLOURS[1]


def test_describe_attaches_one_line_texts_and_figure_text_reads_them():
    fig, _ = plt.subplots()
    assert plots.figure_text(fig) is None
    assert plots.describe(fig, "a line\n  of text", "x = 1,\n y = 2") is fig
    assert plots.figure_text(fig) == plots.FigureText("a line of text", "x = 1, y = 2")
    with pytest.raises(ValueError, match="alt and summary"):
        plots.describe(fig, "  ", "x = 1")


def test_figure_png_and_bundle_carry_the_alt_text():
    import base64
    import html

    fig = plots.plot_param_counts({"fc": 10, "conv": 2})
    png = plots.figure_png(fig)
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    data, metadata = plots.figure_bundle(fig)
    alt = plots.figure_text(fig).alt
    assert metadata == {"image/png": {"alt": alt}}
    assert base64.b64decode(data["image/png"]).startswith(b"\x89PNG")
    assert f'alt="{html.escape(alt, quote=True)}"' in data["text/html"]
    assert f"base64,{data['image/png']}" in data["text/html"]
    bare, _ = plt.subplots()
    with pytest.raises(ValueError, match="no alt text"):
        plots.figure_bundle(bare)


def test_alt_text_cannot_break_out_of_the_img_tag():
    fig, _ = plt.subplots()
    plots.describe(fig, 'a "quoted" <b>title</b> & more', "x = 1")
    data, _ = plots.figure_bundle(fig)
    assert "<b>" not in data["text/html"] and "&quot;quoted&quot;" in data["text/html"]


def test_show_outside_a_notebook_shows_nothing(capsys):
    fig = plots.plot_timings({"loops": 0.02, "im2col": 0.001})
    assert plots.show(fig) is fig
    assert capsys.readouterr().out == ""
    assert fig.number in plt.get_fignums(), "a script's figure stays open for savefig or plt.show"


def test_show_in_a_notebook_displays_alt_then_prints_the_summary(monkeypatch, capsys):
    display = pytest.importorskip("IPython.display")
    shown = []
    monkeypatch.setattr(display, "display", lambda *a, **k: shown.append((a, k)))
    monkeypatch.setattr(plots, "_in_notebook", lambda: True)
    fig = plots.plot_error_map(np.array([[0.0, 2.0], [0.5, 0.0]]))  # AUTO_DISPLAY: shown at once
    ((args, kwargs),) = shown
    assert kwargs["raw"] is True and kwargs["metadata"]["image/png"]["alt"] == plots.figure_text(fig).alt
    assert capsys.readouterr().out == plots.figure_text(fig).summary + "\n"
    assert fig.number not in plt.get_fignums(), "closed, so the inline backend does not draw it twice"
    monkeypatch.setattr(plots, "AUTO_DISPLAY", False)
    fig = plots.plot_error_map(np.ones((2, 2)))
    assert len(shown) == 1 and capsys.readouterr().out == ""
    with pytest.raises(ValueError, match="no alt text"):
        plots.show(plt.subplots()[0])
