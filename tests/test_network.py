"""Tasks 5.1 (layer_shapes) and 5.2 (receptive_field), and the provided validation of layer specs.

Independent references: layer tables worked out by hand (LeNet-style, AlexNet's one-tower layers,
VGG-16's published total of 138,357,544 parameters), a layer stack run on real arrays (output shapes
from sliding windows, parameters counted as the entries of the weight arrays the layers would need),
and receptive fields found by brute force: which input pixels can reach one unit in the middle of the
last layer, index by index.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

LENET = [
    ("conv", 6, 5, 1, 0),
    ("relu",),
    ("pool", 2, 2),
    ("conv", 16, 5, 1, 0),
    ("relu",),
    ("pool", 2, 2),
    ("fc", 120),
    ("relu",),
    ("fc", 84),
    ("relu",),
    ("fc", 10),
]
ALEXNET = [
    ("conv", 96, 11, 4, 0),
    ("relu",),
    ("pool", 3, 2),
    ("conv", 256, 5, 1, 2),
    ("relu",),
    ("pool", 3, 2),
    ("conv", 384, 3, 1, 1),
    ("relu",),
    ("conv", 384, 3, 1, 1),
    ("relu",),
    ("conv", 256, 3, 1, 1),
    ("relu",),
    ("pool", 3, 2),
]


def vgg16_features() -> list[tuple]:
    layers: list[tuple] = []
    for channels, convs in [(64, 2), (128, 2), (256, 3), (512, 3), (512, 3)]:
        layers += [("conv", channels, 3, 1, 1), ("relu",)] * convs
        layers.append(("pool", 2, 2))
    return layers


# --------------------------------------------------------------------------- oracles


def run_on_arrays(input_shape, layers):
    """The stack run on a real (D, H, W) array: output shapes from sliding windows over the padded
    input, parameters counted as the entries of the weight and bias arrays each layer needs."""
    x = np.zeros(input_shape)
    table = []
    for layer in layers:
        kind = layer[0]
        if kind == "conv":
            _, K, F, S, P = layer
            w, b = np.zeros((K, x.shape[0], F, F)), np.zeros(K)
            xp = np.pad(x, ((0, 0), (P, P), (P, P)))
            windows = np.lib.stride_tricks.sliding_window_view(xp, (F, F), axis=(1, 2))[:, ::S, ::S]
            x = np.einsum("dhwpq,kdpq->khw", windows, w) + b[:, None, None]
            table.append((x.shape, w.size + b.size))
        elif kind == "pool":
            _, F, S = layer
            x = np.lib.stride_tricks.sliding_window_view(x, (F, F), axis=(1, 2))[:, ::S, ::S].max(axis=(3, 4))
            table.append((x.shape, 0))
        elif kind == "relu":
            x = np.maximum(x, 0)
            table.append((x.shape, 0))
        else:
            _, M = layer
            w, b = np.zeros((x.size, M)), np.zeros(M)
            x = x.ravel() @ w + b
            table.append((x.shape, w.size + b.size))
    return table


def brute_force_receptive_field(layers, n=2000):
    """(size, jump) along one axis, from the index sets: unit i of a conv/pool layer reads units
    i*S - P ... i*S - P + F - 1 of the layer below (outside 0..len-1: padding, which reads nothing).
    Measured on two neighbouring units in the middle of the last layer of an n-pixel input: the
    size is the span of the pixels one reaches (it has holes when a stride exceeds a window)."""
    reach = [{t} for t in range(n)]  # input pixels each unit depends on
    for layer in layers:
        if layer[0] == "relu":
            continue
        F, S, P = (layer[2], layer[3], layer[4]) if layer[0] == "conv" else (layer[1], layer[2], 0)
        below = len(reach)
        m = (below + 2 * P - F) // S + 1
        reach = [
            set().union(*(reach[k] for k in range(i * S - P, i * S - P + F) if 0 <= k < below))
            for i in range(m)
        ]
    mid = len(reach) // 2
    a, b = sorted(reach[mid]), sorted(reach[mid + 1])
    return a[-1] - a[0] + 1, b[0] - a[0]


@st.composite
def stacks(draw, with_fc=True):
    """Random stacks that fit: conv (K 1-4, F 1-4, S 1-3, P 0-2), pool (F 1-3, S 1-3), relu; then
    maybe fc layers. Inputs (D 1-3, H and W 4-14, H != W allowed)."""
    D, H, W = draw(st.integers(1, 3)), draw(st.integers(4, 14)), draw(st.integers(4, 14))
    h, w, layers = H, W, []
    for _ in range(draw(st.integers(0, 5))):
        kind = draw(st.sampled_from(["conv", "pool", "relu"]))
        if kind == "relu":
            layers.append(("relu",))
        elif kind == "conv":
            P = draw(st.integers(0, 2))
            F = draw(st.integers(1, min(4, min(h, w) + 2 * P)))
            S = draw(st.integers(1, 3))
            layers.append(("conv", draw(st.integers(1, 4)), F, S, P))
            h, w = (h + 2 * P - F) // S + 1, (w + 2 * P - F) // S + 1
        else:
            F, S = draw(st.integers(1, min(3, h, w))), draw(st.integers(1, 3))
            layers.append(("pool", F, S))
            h, w = (h - F) // S + 1, (w - F) // S + 1
    if with_fc:
        layers += [("fc", draw(st.integers(1, 12))) for _ in range(draw(st.integers(0, 2)))]
    return (D, H, W), layers


# --------------------------------------------------------------------------- Task 5.1


@pytest.mark.task5_1
def test_layer_shapes_lenet_by_hand(cn):
    table = cn.network.layer_shapes((1, 32, 32), LENET)
    assert table == [
        ((6, 28, 28), 5 * 5 * 1 * 6 + 6),  # 156
        ((6, 28, 28), 0),
        ((6, 14, 14), 0),
        ((16, 10, 10), 5 * 5 * 6 * 16 + 16),  # 2416: each filter spans all 6 maps
        ((16, 10, 10), 0),
        ((16, 5, 5), 0),
        ((120,), 400 * 120 + 120),  # 48120: 16*5*5 = 400 inputs
        ((120,), 0),
        ((84,), 120 * 84 + 84),
        ((84,), 0),
        ((10,), 84 * 10 + 10),
    ]
    assert all(isinstance(n, int) for _, n in table)
    assert all(isinstance(s, tuple) and all(isinstance(v, int) for v in s) for s, _ in table)


@pytest.mark.task5_1
def test_layer_shapes_alexnet_by_hand(cn):
    table = cn.network.layer_shapes((3, 227, 227), [*ALEXNET, ("fc", 4096)])
    shapes = [s for s, _ in table]
    params = [n for _, n in table if n]
    assert shapes[0] == (96, 55, 55)  # (227 - 11) / 4 + 1
    assert shapes[2] == (96, 27, 27)  # (55 - 3) // 2 + 1: overlapping pools
    assert shapes[5] == (256, 13, 13) and shapes[12] == (256, 6, 6)
    assert params == [
        11 * 11 * 3 * 96 + 96,  # 34,944
        5 * 5 * 96 * 256 + 256,  # 614,656
        3 * 3 * 256 * 384 + 384,  # 885,120
        3 * 3 * 384 * 384 + 384,  # 1,327,488
        3 * 3 * 384 * 256 + 256,  # 884,992
        6 * 6 * 256 * 4096 + 4096,  # 37,752,832: the first fc layer alone outweighs all convs 10x
    ]


@pytest.mark.task5_1
def test_layer_shapes_vgg16_total_is_the_published_one(cn):
    """VGG-16 (configuration D) has 138,357,544 parameters (Simonyan & Zisserman 2015, Table 2: 138M)."""
    layers = [*vgg16_features(), ("fc", 4096), ("relu",), ("fc", 4096), ("relu",), ("fc", 1000)]
    table = cn.network.layer_shapes((3, 224, 224), layers)
    assert sum(n for _, n in table) == 138_357_544
    assert table[len(vgg16_features()) - 1][0] == (512, 7, 7)


@pytest.mark.task5_1
def test_layer_shapes_cs231n_example_and_floor(cn):
    # CS231n: 10 filters 5x5 on 32x32x3, stride 1, pad 2: 76 parameters each, output 32x32x10
    assert cn.network.layer_shapes((3, 32, 32), [("conv", 10, 5, 1, 2)]) == [((10, 32, 32), 760)]
    # 13 + 2 - 3 = 12 -> 12 // 2 + 1 = 7 rows; 10 + 2 - 3 = 9 -> 9 // 2 + 1 = 5 columns (not 6)
    table = cn.network.layer_shapes((3, 13, 10), [("conv", 4, 3, 2, 1), ("pool", 3, 2), ("fc", 5)])
    assert table == [((4, 7, 5), 3 * 3 * 3 * 4 + 4), ((4, 3, 2), 0), ((5,), 24 * 5 + 5)]
    assert cn.network.layer_shapes((2, 5, 5), []) == []


@pytest.mark.task5_1
def test_pooling_cuts_the_fc_head(cn):
    """The same stack without its 2x2 pools: the fc layer needs 4x more weights per pool removed."""
    head = [("fc", 10)]
    convs = [
        ("conv", 8, 3, 1, 1),
        ("relu",),
        ("pool", 2, 2),
        ("conv", 16, 3, 1, 1),
        ("relu",),
        ("pool", 2, 2),
    ]
    no_pool = [layer for layer in convs if layer[0] != "pool"]
    with_pool = cn.network.layer_shapes((1, 16, 16), convs + head)[-1][1]
    without = cn.network.layer_shapes((1, 16, 16), no_pool + head)[-1][1]
    assert (with_pool, without) == (16 * 4 * 4 * 10 + 10, 16 * 16 * 16 * 10 + 10)


@pytest.mark.task5_1
@settings(max_examples=60, deadline=None)
@given(stack=stacks())
def test_layer_shapes_equal_arrays_run_through_the_stack(cn, stack):
    input_shape, layers = stack
    given_layers = [tuple(layer) for layer in layers]
    assert cn.network.layer_shapes(input_shape, layers) == run_on_arrays(input_shape, layers)
    assert layers == given_layers, "layer_shapes modified its layers argument"


@pytest.mark.task5_1
@pytest.mark.parametrize(
    ("input_shape", "layers", "match"),
    [
        ((1, 4, 4), [("conv", 2, 7, 1, 1)], r"layers\[0\]"),  # 7 > 4 + 2
        ((1, 9, 4), [("conv", 2, 5, 1, 0)], r"layers\[0\]"),  # fits H, not W
        ((1, 6, 6), [("conv", 2, 3, 1, 0), ("pool", 5, 1)], r"layers\[1\]"),  # 5 > 4
        ((1, 8, 8), [("fc", 10), ("conv", 2, 3, 1, 1)], r"layers\[1\]"),  # no image after fc
        ((1, 8, 8), [("fc", 10), ("pool", 2, 2)], r"layers\[1\]"),
    ],
)
def test_layer_shapes_rejects_layers_that_do_not_fit(cn, input_shape, layers, match):
    with pytest.raises(ValueError, match=match):
        cn.network.layer_shapes(input_shape, layers)


# --------------------------------------------------------------------------- Task 5.2


@pytest.mark.task5_2
@pytest.mark.parametrize(
    ("layers", "expected"),
    [
        ([], (1, 1)),
        ([("relu",)], (1, 1)),
        ([("conv", 8, 3, 1, 1)] * 3, (7, 1)),  # three 3x3 see as far as one 7x7
        ([("conv", 8, 3, 1, 1), ("pool", 2, 2)], (4, 2)),
        (LENET[:6], (16, 4)),  # 1 + 4, + 1, + 4*2, + 1*2; jump 2 * 2
        (ALEXNET, (195, 32)),  # AlexNet's pool5 units see 195 x 195 pixels
        (vgg16_features(), (212, 32)),  # VGG-16's pool5
    ],
)
def test_receptive_field_by_hand(cn, layers, expected):
    assert cn.network.receptive_field(layers) == expected
    r, j = cn.network.receptive_field(layers)
    assert isinstance(r, int) and isinstance(j, int)


@pytest.mark.task5_2
@settings(max_examples=60, deadline=None)
@given(stack=stacks(with_fc=False))
def test_receptive_field_equals_brute_force(cn, stack):
    _, layers = stack
    assert cn.network.receptive_field(layers) == brute_force_receptive_field(layers)


@pytest.mark.task5_2
@settings(max_examples=30, deadline=None)
@given(stack=stacks(with_fc=False))
def test_padding_and_filter_counts_do_not_change_the_receptive_field(cn, stack):
    _, layers = stack
    moved = [("conv", 1, *layer[2:4], 0) if layer[0] == "conv" else layer for layer in layers]
    assert cn.network.receptive_field(moved) == cn.network.receptive_field(layers)


@pytest.mark.task5_2
def test_receptive_field_rejects_fc(cn):
    with pytest.raises(ValueError, match=r"layers\[2\].*fc"):
        cn.network.receptive_field([("conv", 4, 3, 1, 1), ("pool", 2, 2), ("fc", 10)])


# --------------------------------------------------------------------------- provided validation


@pytest.mark.parametrize("function", ["layer_shapes", "receptive_field"])
@pytest.mark.parametrize(
    ("layer", "match"),
    [
        (("dense", 10), r"layers\[1\] has unknown kind 'dense'"),
        (("conv", 4, 3, 1), r"layers\[1\] = .*a conv layer is \('conv', K, F, S, P\)"),
        (("conv", 0, 3, 1, 0), r"layers\[1\] \(conv\): K must be >= 1"),
        (("conv", 4, 3, 0, 0), r"layers\[1\] \(conv\): S must be >= 1"),
        (("conv", 4, 3, 1, -1), r"layers\[1\] \(conv\): P must be >= 0"),
        (("pool", 2.0, 2), r"layers\[1\] \(pool\): F must be an integer"),
        (("relu", 1), r"layers\[1\] = .*a relu layer"),
        (("fc", True), r"layers\[1\] \(fc\): M must be an integer"),
        ("relu", r"layers\[1\] must be a tuple"),
        ((), r"layers\[1\] must be a tuple"),
    ],
)
def test_bad_specs_raise_naming_the_layer_and_the_rule(cn, function, layer, match):
    args = ([("relu",), layer],) if function == "receptive_field" else ((1, 8, 8), [("relu",), layer])
    with pytest.raises(ValueError, match=match):
        getattr(cn.network, function)(*args)


@pytest.mark.parametrize("bad", [(1, 8), (0, 8, 8), (1, 8.0, 8), "1x8x8", None])
def test_bad_input_shape_raises(cn, bad):
    with pytest.raises(ValueError, match="input_shape must be"):
        cn.network.layer_shapes(bad, [("relu",)])


def test_layers_must_be_a_list(cn):
    with pytest.raises(ValueError, match="layers must be a list"):
        cn.network.receptive_field(None)


def test_check_layer_returns_kind_and_numbers(cn):
    assert cn.network.check_layer(0, ("conv", 6, 5, 1, np.int64(0))) == ("conv", (6, 5, 1, 0))
    assert cn.network.check_layer(3, ["relu"]) == ("relu", ())
