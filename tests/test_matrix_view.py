"""The provided helpers of convolution as a matrix (cnnlab/plots_matrix.py) and of the effective
receptive field (model.effective_receptive_field, model.receptive_window), against the reference.

Independent references: the window of a unit found by pushing index sets through the layers by hand,
and the support of a gradient computed by finite differences.
"""

from __future__ import annotations

import importlib

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from autograder.reference import load_reference  # noqa: E402

REF = load_reference()
model = importlib.import_module(f"{REF.__name__}.model")
plots_matrix = importlib.import_module(f"{REF.__name__}.plots_matrix")


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


def _window_by_sets(layers, index):
    """The input pixels unit ``index`` depends on, by pushing index sets down through the layers."""
    units = {index}
    for layer in reversed(layers):
        if layer[0] == "conv":
            f, s, p = layer[2], layer[3], layer[4]
        elif layer[0] == "pool":
            f, s, p = layer[1], layer[2], 0
        else:
            continue
        units = {u * s - p + a for u in units for a in range(f)}
    return min(units), max(units)


STACKS = [
    [("conv", 2, 3, 1, 1)],
    [("conv", 2, 3, 1, 1), ("relu",), ("pool", 2, 2), ("conv", 2, 3, 1, 1), ("relu",), ("pool", 2, 2)],
    [("conv", 2, 5, 2, 2), ("pool", 3, 1), ("conv", 2, 3, 2, 0)],
]


@pytest.mark.parametrize("layers", STACKS)
@pytest.mark.parametrize("index", [0, 1, 3])
def test_receptive_window_is_the_set_of_pixels_a_unit_depends_on(layers, index):
    assert model.receptive_window(layers, index) == _window_by_sets(layers, index)


def test_effective_receptive_field_stays_inside_the_window_and_fills_it_for_a_linear_stack():
    layers = [("conv", 1, 3, 1, 1), ("conv", 1, 3, 1, 1)]
    net = model.init_stack_cnn((1, 12, 12), layers, seed=0)
    for name in ("layer0_w", "layer1_w"):
        net.params[name] = np.abs(net.params[name]) + 0.1  # positive weights: no cancellation
    x = np.random.default_rng(0).normal(size=(2, 1, 12, 12))
    erf = model.effective_receptive_field(net, x, upto=1, unit=(0, 5, 6))
    first_r, last_r = model.receptive_window(layers, 5)
    first_c, last_c = model.receptive_window(layers, 6)
    support = np.zeros_like(erf, dtype=bool)
    support[first_r : last_r + 1, first_c : last_c + 1] = True
    assert np.all(erf[~support] == 0) and np.all(erf[support] > 0)


def test_effective_receptive_field_is_the_gradient_of_the_unit():
    layers = [("conv", 2, 3, 1, 0), ("relu",), ("pool", 2, 2)]
    net = model.init_stack_cnn((1, 8, 8), layers, seed=3)
    x = np.random.default_rng(1).normal(size=(1, 1, 8, 8))
    erf = model.effective_receptive_field(net, x, upto=2, unit=(1, 1, 2))
    unit = lambda v: net.forward(v, upto=2)[0][0, 1, 1, 2:3]  # noqa: E731
    numeric = REF.gradcheck.numerical_gradient(unit, x, np.ones(1))
    assert REF.gradcheck.rel_error(erf, np.abs(numeric[0, 0])) < 1e-7


def test_weight_matrices_titles_say_shape_zeros_and_parameters():
    dense, banded = np.ones((4, 4)), np.eye(4)
    fig = plots_matrix.plot_weight_matrices({"dense": dense, "banded": banded}, {"dense": 16, "banded": 1})
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    titles = [ax.get_title() for ax in fig.axes]
    assert "0% zeros" in titles[0] and "16 parameters" in titles[0]
    assert "75% zeros" in titles[1] and "1 parameters" in titles[1]
    assert plots_matrix.zero_fraction(banded) == 0.75


def test_border_error_and_effective_receptive_field_figures():
    fig = plots_matrix.plot_border_error({"circular": np.zeros(5), "zero": np.r_[1.0, 0, 0, 0, 2]})
    assert len(fig.axes[0].lines) == 2
    fig = plots_matrix.plot_effective_receptive_field(np.ones((9, 9)), 5, (4.0, 4.0), "erf")
    assert isinstance(fig, Figure) and len(fig.axes[0].patches) == 1
