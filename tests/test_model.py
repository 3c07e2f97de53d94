"""The provided data and model modules (cnnlab/data.py, cnnlab/model.py), against the reference.

Data: the sample image and the seeded, balanced shapes data set. Model: affine and softmax layers and
the whole tiny CNN checked against numerical gradients in float64, SGD that lowers the loss, the
deep-stack gradient experiment of notebook 04, and that the model calls the student's layers through
their modules (so that edits and the grader's patches are seen).
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import numpy as np
import pytest

from autograder.reference import load_reference

REF = load_reference()
data = importlib.import_module(f"{REF.__name__}.data")
model = importlib.import_module(f"{REF.__name__}.model")
numerical_gradient = REF.gradcheck.numerical_gradient
rel_error = REF.gradcheck.rel_error

PROVIDED = ("data", "model", "plots", "plots_matrix")


# ---------------------------------------------------------------------------------------------
# data
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("size", [8, 32, 64])
def test_sample_image_is_a_grey_square_in_unit_range(size):
    img = data.load_sample_image(size)
    assert img.shape == (size, size) and img.dtype == np.float64
    assert 0.0 <= img.min() < img.max() <= 1.0
    assert img.std() > 0.1, "a photograph, not a flat image"


@pytest.mark.parametrize("size", [7, 513])
def test_sample_image_rejects_bad_sizes(size):
    with pytest.raises(ValueError, match="size"):
        data.load_sample_image(size)


@pytest.mark.parametrize(("n", "size"), [(300, 16), (31, 12), (3, 10)])
def test_shapes_have_the_documented_shapes_and_balanced_labels(n, size):
    x, y = data.make_shapes(n, size, seed=0)
    assert x.shape == (n, 1, size, size) and x.dtype == np.float64
    assert y.shape == (n,) and y.dtype == np.int64
    assert set(np.unique(y)) <= {0, 1, 2}
    counts = np.bincount(y, minlength=3)
    assert counts.max() - counts.min() <= 1, counts
    assert len(data.CLASS_NAMES) == 3


def test_shapes_are_seeded():
    x1, y1 = data.make_shapes(30, 16, seed=3)
    x2, y2 = data.make_shapes(30, 16, seed=3)
    x3, _ = data.make_shapes(30, 16, seed=4)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(x1, x3)


def test_every_image_has_one_white_shape_of_plausible_size():
    x, y = data.make_shapes(90, 16, noise=0.0, seed=1)
    assert set(np.unique(x)) == {0.0, 1.0}
    pixels = x.reshape(len(x), -1).sum(axis=1)
    assert pixels.min() >= 8, "every image shows a shape"
    # bars are thinner than crosses on average, circles cover the most pixels
    mean = [pixels[y == k].mean() for k in range(3)]
    assert mean[0] < mean[2] and mean[1] < mean[2]


def test_shapes_reject_bad_arguments():
    for kwargs in ({"n": 0}, {"size": 9}, {"noise": -1.0}):
        with pytest.raises(ValueError):
            data.make_shapes(**kwargs)


def test_train_val_split_is_a_disjoint_cover():
    x = np.arange(50.0).reshape(50, 1)
    y = np.arange(50)
    xt, yt, xv, yv = data.train_val_split(x, y, val_fraction=0.2, seed=0)
    assert len(xv) == 10 and len(xt) == 40
    assert sorted(np.concatenate([yt, yv]).tolist()) == list(range(50))
    np.testing.assert_array_equal(xt[:, 0], yt)
    np.testing.assert_array_equal(xv[:, 0], yv)


# ---------------------------------------------------------------------------------------------
# layers that are not exercises
# ---------------------------------------------------------------------------------------------


def test_affine_backward_matches_numerical_gradients():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((3, 2, 2, 2))
    w = rng.standard_normal((8, 4))
    b = rng.standard_normal(4)
    out, cache = model.affine_forward(x, w, b)
    assert out.shape == (3, 4)
    dout = rng.standard_normal(out.shape)
    dx, dw, db = model.affine_backward(dout, cache)
    assert rel_error(dx, numerical_gradient(lambda v: model.affine_forward(v, w, b)[0], x, dout)) < 1e-8
    assert rel_error(dw, numerical_gradient(lambda v: model.affine_forward(x, v, b)[0], w, dout)) < 1e-8
    assert rel_error(db, numerical_gradient(lambda v: model.affine_forward(x, w, v)[0], b, dout)) < 1e-8


def test_softmax_loss_value_and_gradient():
    rng = np.random.default_rng(1)
    loss, _ = model.softmax_loss(np.zeros((4, 3)), np.array([0, 1, 2, 0]))
    assert loss == pytest.approx(np.log(3))
    scores = rng.standard_normal((5, 3)) * 3
    y = np.array([0, 2, 1, 1, 0])
    loss, dscores = model.softmax_loss(scores, y)
    assert np.isfinite(loss)
    num = numerical_gradient(lambda s: np.array(model.softmax_loss(s, y)[0]), scores, np.array(1.0))
    assert rel_error(dscores, num) < 1e-7


# ---------------------------------------------------------------------------------------------
# the tiny CNN
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("num_blocks", "lam"), [(0, 1.0), (1, 1.0), (2, 0.0)])
def test_tiny_cnn_gradients_match_numerical_gradients(num_blocks, lam):
    rng = np.random.default_rng(2)
    net = model.init_tiny_cnn((1, 4, 4), num_filters=2, num_classes=3, num_blocks=num_blocks, lam=lam, seed=3)
    x = rng.standard_normal((2, 1, 4, 4))
    y = np.array([0, 2])
    loss, grads = net.loss(x, y)
    assert set(grads) == set(net.params)
    for name, p in net.params.items():
        assert grads[name].shape == p.shape, name

        def loss_of(v, name=name):
            saved = net.params[name]
            net.params[name] = v
            try:
                return np.array(net.loss(x, y)[0])
            finally:
                net.params[name] = saved

        num = numerical_gradient(loss_of, p.copy(), np.array(1.0))
        assert rel_error(grads[name], num) < 1e-6, f"{name}: {rel_error(grads[name], num):.1e}"
    # and the gradient with respect to the input
    scores, cache = net.forward(x)
    _, dscores = model.softmax_loss(scores, y)
    dx, _ = net.backward(dscores, cache)
    num = numerical_gradient(lambda v: np.array(net.loss(v, y)[0]), x.copy(), np.array(1.0))
    assert rel_error(dx, num) < 1e-6


def test_tiny_cnn_shapes_and_parameter_names():
    net = model.init_tiny_cnn((1, 16, 16), num_filters=8, num_classes=3, num_blocks=2, seed=0)
    assert net.params["conv_w"].shape == (8, 1, 3, 3)
    assert net.params["block1_w2"].shape == (8, 8, 3, 3)
    assert net.params["fc_w"].shape == (8 * 8 * 8, 3)
    scores, _ = net.forward(np.zeros((5, 1, 16, 16)))
    assert scores.shape == (5, 3)
    assert net.predict(np.zeros((7, 1, 16, 16)), batch_size=3).shape == (7,)
    with pytest.raises(ValueError, match="even"):
        model.init_tiny_cnn((1, 15, 16))


def test_sgd_steps_reduce_the_loss_on_shapes():
    x, y = data.make_shapes(60, 16, seed=0)
    net = model.init_tiny_cnn((1, 16, 16), num_filters=4, seed=0)
    opt = model.SGD(lr=0.05, momentum=0.9)
    first, _ = net.loss(x, y)
    for _ in range(10):
        _, grads = net.loss(x, y)
        opt.step(net.params, grads)
    last, _ = net.loss(x, y)
    assert last < 0.8 * first, (first, last)


def test_train_records_a_consistent_history():
    x, y = data.make_shapes(90, 12, seed=1)
    xt, yt, xv, yv = data.train_val_split(x, y, seed=1)
    net = model.init_tiny_cnn((1, 12, 12), num_filters=4, seed=1)
    hist = model.train(net, xt, yt, xv, yv, epochs=3, batch_size=32, lr=0.05, seed=0)
    steps = 3 * -(-len(xt) // 32)
    assert len(hist.step_loss) == len(hist.first_layer_grad_norm) == steps
    for series in (hist.train_loss, hist.val_loss, hist.train_acc, hist.val_acc):
        assert len(series) == 4
    assert all(0.0 <= a <= 1.0 for a in hist.train_acc + hist.val_acc)
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert hist.seconds > 0


def test_gradient_norms_per_layer():
    x, y = data.make_shapes(12, 12, seed=2)
    net = model.init_tiny_cnn((1, 12, 12), num_filters=3, num_blocks=2, seed=2)
    norms = model.gradient_norms(net, x, y)
    assert list(norms) == ["conv", "block0", "block1", "fc"]
    assert all(v > 0 for v in norms.values())


def test_model_calls_the_student_layers_through_their_modules(monkeypatch):
    """Patching cnnlab.conv / pool / residual (as edits and the grader do) changes what the model runs."""
    calls = []
    for module, name in [
        (REF.conv, "conv2d_forward"),
        (REF.conv, "conv2d_backward"),
        (REF.pool, "maxpool2d_forward"),
        (REF.pool, "maxpool2d_backward"),
        (REF.residual, "residual_block_forward"),
        (REF.residual, "residual_block_backward"),
    ]:
        original = getattr(module, name)

        def spy(*args, _original=original, _name=name, **kwargs):
            calls.append(_name)
            return _original(*args, **kwargs)

        monkeypatch.setattr(module, name, spy)
    net = model.init_tiny_cnn((1, 6, 6), num_filters=2, num_blocks=1, seed=0)
    net.loss(np.zeros((1, 1, 6, 6)), np.array([0]))
    model.gradient_norm_vs_depth(depths=(1,), lams=(1.0,), shape=(1, 1, 4, 4))
    assert {
        "conv2d_forward",
        "conv2d_backward",
        "maxpool2d_forward",
        "maxpool2d_backward",
        "residual_block_forward",
        "residual_block_backward",
    } <= set(calls)


# ---------------------------------------------------------------------------------------------
# the deep-stack experiment of notebook 04
# ---------------------------------------------------------------------------------------------


def test_gradient_norm_vs_depth_follows_lam_to_the_L():
    exp = model.gradient_norm_vs_depth(depths=(4, 1, 2, 8), lams=(0.0, 0.5, 1.0, 1.5), shape=(1, 2, 6, 6))
    assert exp.depths.tolist() == [1, 2, 4, 8]
    for lam in (0.5, 1.0, 1.5):
        np.testing.assert_allclose(exp.predicted[lam], lam ** exp.depths.astype(float))
        # small weights: the measured norm is within 20 % of lam**L up to depth 8
        np.testing.assert_allclose(exp.norms[lam], exp.predicted[lam], rtol=0.2)
    plain = exp.norms[0.0]
    assert np.all(np.diff(plain) < 0) and plain[-1] < 1e-6, "the plain stack's gradient vanishes"
    assert "lam=1.5" in exp.table()
    assert len(exp.table().splitlines()) == 1 + 4
    assert len(exp.table(depths=(1, 8)).splitlines()) == 1 + 2


def test_gradient_norm_vs_depth_rejects_depth_zero():
    with pytest.raises(ValueError, match="depths"):
        model.gradient_norm_vs_depth(depths=(0, 1), lams=(1.0,), shape=(1, 1, 4, 4))


def test_block_stack_backward_matches_numerical_gradient():
    rng = np.random.default_rng(4)
    blocks = model.init_block_stack(3, channels=2, weight_scale=0.3, seed=0)
    x = rng.standard_normal((1, 2, 4, 4))
    out, caches = model.stack_forward(x, blocks, lam=1.0)
    dout = rng.standard_normal(out.shape)
    dx = model.stack_backward(dout, caches)
    num = numerical_gradient(lambda v: model.stack_forward(v, blocks, 1.0)[0], x, dout)
    assert rel_error(dx, num) < 1e-7


# ---------------------------------------------------------------------------------------------
# notebook 05: the digits, and a CNN written as layer specs
# ---------------------------------------------------------------------------------------------

LENET16 = [("conv", 8, 3, 1, 1), ("relu",), ("pool", 2, 2), ("conv", 16, 3, 1, 1), ("relu",), ("pool", 2, 2)]


def test_digits_are_scikit_learns_bundled_set():
    """The package's copy (digits.txt) is scikit-learn's load_digits, image for image."""
    datasets = pytest.importorskip("sklearn.datasets")
    x, y = data.load_digits(scale=1)
    theirs = datasets.load_digits()
    np.testing.assert_array_equal(x[:, 0] * 16, theirs.images)
    np.testing.assert_array_equal(y, theirs.target)
    assert x.shape == (1797, 1, 8, 8) and x.dtype == np.float64 and y.shape == (1797,)
    assert x.min() == 0.0 and x.max() == 1.0
    assert np.bincount(y).min() >= 170 and set(np.unique(y)) == set(range(10))
    x2, y2 = data.load_digits(scale=2)
    assert x2.shape == (1797, 1, 16, 16) and (y2 == y).all()
    np.testing.assert_array_equal(x2[:, :, ::2, ::2], x)  # each pixel became a 2x2 block
    np.testing.assert_array_equal(x2[:, :, 1::2, 1::2], x)
    with pytest.raises(ValueError, match="scale"):
        data.load_digits(scale=0)


def test_stack_cnn_parameter_shapes_by_hand():
    net = model.init_stack_cnn((1, 16, 16), [*LENET16, ("fc", 10)], seed=0)
    shapes = {k: v.shape for k, v in net.params.items()}
    assert shapes == {
        "layer0_w": (8, 1, 3, 3),
        "layer0_b": (8,),
        "layer3_w": (16, 8, 3, 3),  # spans the 8 maps of the first conv
        "layer3_b": (16,),
        "layer6_w": (16 * 4 * 4, 10),  # two 2x2 pools: 16 x 16 -> 4 x 4
        "layer6_b": (10,),
    }
    no_pool = model.init_stack_cnn((1, 16, 16), [lay for lay in LENET16 if lay[0] != "pool"] + [("fc", 10)])
    assert no_pool.params["layer4_w"].shape == (16 * 16 * 16, 10)
    scores, _ = net.forward(np.zeros((3, 1, 16, 16)))
    assert scores.shape == (3, 10)


def test_stack_cnn_gradients_match_numerical_gradients():
    rng = np.random.default_rng(4)
    layers = [
        ("conv", 2, 3, 2, 1),
        ("relu",),
        ("pool", 2, 1),
        ("conv", 3, 2, 1, 0),
        ("fc", 4),
        ("relu",),
        ("fc", 3),
    ]
    net = model.init_stack_cnn((2, 7, 6), layers, seed=1)
    x, y = rng.standard_normal((2, 2, 7, 6)), np.array([0, 2])
    _, grads = net.loss(x, y)
    assert set(grads) == set(net.params)
    for name, p in net.params.items():

        def loss_of(v, name=name):
            saved = net.params[name]
            net.params[name] = v
            try:
                return np.array(net.loss(x, y)[0])
            finally:
                net.params[name] = saved

        num = numerical_gradient(loss_of, p.copy(), np.array(1.0))
        assert rel_error(grads[name], num) < 1e-6, f"{name}: {rel_error(grads[name], num):.1e}"


def test_stack_cnn_trains_and_exposes_its_activations():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 1, 8, 8))
    y = (x[:, 0, :4].sum(axis=(1, 2)) > x[:, 0, 4:].sum(axis=(1, 2))).astype(int)  # top half brighter?
    net = model.init_stack_cnn(
        (1, 8, 8), [("conv", 4, 3, 1, 1), ("relu",), ("pool", 2, 2), ("fc", 2)], seed=0
    )
    hist = model.train(net, x[:30], y[:30], x[30:], y[30:], epochs=5, batch_size=10, lr=0.05, seed=0)
    assert hist.train_loss[-1] < hist.train_loss[0]
    assert len(hist.first_layer_grad_norm) == 15  # the gradient of "layer0_w", every step
    acts = net.activations(x[:3], [-1, 0, 2, 3])
    assert [a.shape for a in acts] == [(3, 1, 8, 8), (3, 4, 8, 8), (3, 4, 4, 4), (3, 2)]
    np.testing.assert_allclose(acts[3], net.forward(x[:3])[0])
    np.testing.assert_allclose(net.features(x[:3], 2), acts[2])


def test_feature_change_is_zero_for_no_shift_and_exact_for_the_input():
    net = model.init_stack_cnn((1, 8, 8), [("conv", 2, 3, 1, 1), ("pool", 2, 2)], seed=0)
    x = np.zeros((2, 1, 8, 8))
    x[:, 0, 3, 3] = 1.0  # one bright pixel
    assert model.feature_change(net, x, [-1, 0, 1], 0, 0) == [0.0, 0.0, 0.0]
    # the input: the pixel moves to a new place, so |shift x - x| / |x| = sqrt(2)
    assert model.feature_change(net, x, [-1], 0, 1)[0] == pytest.approx(np.sqrt(2))


def test_layer_table_and_timing():
    table = [((6, 28, 28), 156), ((6, 14, 14), 0)]
    text = model.layer_table([("conv", 6, 5, 1, 0), ("pool", 2, 2)], table)
    assert "(6, 28, 28)" in text and "156" in text and text.splitlines()[-1].split()[-1] == "156"
    net = model.init_stack_cnn((1, 8, 8), [("conv", 2, 3, 1, 1)], seed=0)
    assert 0 < model.seconds_per_forward(net, np.zeros((2, 1, 8, 8)), repeats=2) < 10


def test_provided_modules_never_import_the_student_network_file():
    """network.py is a student file: no provided module may depend on it (grading isolation)."""
    for name in PROVIDED:
        tree = ast.parse((Path(REF.__file__).parent / f"{name}.py").read_text())
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
        assert "network" not in imported, name


# ---------------------------------------------------------------------------------------------
# the provided modules are loadable under any package name, and free of solution markers
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PROVIDED)
def test_provided_module_uses_only_relative_package_imports(name):
    path = Path(REF.__file__).parent / f"{name}.py"
    text = path.read_text()
    assert "### BEGIN SOLUTION" not in text and "### END SOLUTION" not in text
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            assert not any(a.name.split(".")[0] == "cnnlab" for a in node.names), f"{name}: import cnnlab"
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            assert (node.module or "").split(".")[0] != "cnnlab", f"{name}: from {node.module} import"
