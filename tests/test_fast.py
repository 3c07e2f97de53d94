"""cnnlab.fast (the provided im2col convolution) against independent oracles.

The fast module ships unchanged in the student package and in the reference, so it is tested through
the reference (``autograder.reference.load_reference()``), whether or not ``cnnlab/`` is rebuilt.

Oracles: scipy.signal.correlate (forward), centred finite differences (backward), PyTorch (both, when
installed) and the loop reference ``conv.conv2d_forward`` / ``conv2d_backward`` (both).
"""

from __future__ import annotations

import importlib

import numpy as np
import oracles
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import conv_configs

from autograder.reference import load_reference

ref = load_reference()
fast = importlib.import_module(f"{ref.__name__}.fast")

# Tolerances on rel_error below, all in float64:
EXACT = 1e-12  # the same sums computed twice in a different order (rounding differences only)
NUMERIC = 1e-7  # an analytic gradient against centred differences with h = 1e-5 (error O(h^2))
FLOAT32 = 1e-5  # a float32 result against the float64 one (float32 eps is 1.2e-7)


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a - b| / max(|a| + |b|)`` over all entries: 0 when equal, 1 when unrelated."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    assert a.shape == b.shape, f"shapes differ: {a.shape} vs {b.shape}"
    scale = max(float(np.max(np.abs(a) + np.abs(b), initial=0.0)), np.finfo(np.float64).tiny)
    return float(np.max(np.abs(a - b), initial=0.0)) / scale


def _check_against_loop_reference(x, w, b, stride, pad, dout, tol=EXACT):
    """fast and the loop reference agree on out, dx, dw and db (rel_error < tol); returns fast's."""
    out, cache = fast.conv2d_forward(x, w, b, stride, pad)
    out_ref, cache_ref = ref.conv.conv2d_forward(x, w, b, stride, pad)
    assert out.shape == out_ref.shape
    assert rel_error(out, out_ref) < tol, "out"
    grads = fast.conv2d_backward(dout, cache)
    for name, got, want in zip(
        ("dx", "dw", "db"), grads, ref.conv.conv2d_backward(dout, cache_ref), strict=True
    ):
        assert rel_error(got, want) < tol, name
    return out, grads


# The oracles (tests/oracles.py) do not call cnnlab.
correlate_oracle = oracles.conv2d
numerical_gradient = oracles.numeric_grad


@st.composite
def layers(draw):
    """Random layers (tests/strategies.py) and a matching float64 dout: (x, w, b, stride, pad, dout)."""
    x, w, b, stride, pad = draw(conv_configs())
    Ho = (x.shape[2] + 2 * pad - w.shape[2]) // stride + 1
    Wo = (x.shape[3] + 2 * pad - w.shape[3]) // stride + 1
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return x, w, b, stride, pad, rng.normal(size=(x.shape[0], w.shape[0], Ho, Wo))


# ---------------------------------------------------------------------------------------------------
# Forward


def test_forward_hand_worked():
    x = np.arange(9.0).reshape(1, 1, 3, 3)  # [[0,1,2],[3,4,5],[6,7,8]]
    w = np.array([[[[1.0, 0.0], [0.0, -1.0]]]])  # top-left minus bottom-right, not flipped
    out, _ = fast.conv2d_forward(x, w, np.array([0.5]))
    np.testing.assert_allclose(out, [[[[-3.5, -3.5], [-3.5, -3.5]]]], rtol=0, atol=1e-15)


def test_forward_drops_last_partial_window():
    # H + 2*pad - FH = 7 - 3 = 4 is divisible by 2 but W + 2*pad - FW = 8 - 3 = 5 is not: Wo = 5//2 + 1.
    x = np.ones((1, 1, 7, 8))
    out, _ = fast.conv2d_forward(x, np.ones((1, 1, 3, 3)), np.zeros(1), stride=2)
    assert out.shape == (1, 1, 3, 3)


@settings(max_examples=30, deadline=None)
@given(layer=layers())
def test_forward_equals_scipy_correlate(layer):
    x, w, b, stride, pad, _ = layer
    x0 = x.copy()
    out, _ = fast.conv2d_forward(x, w, b, stride, pad)
    expected = correlate_oracle(x, w, b, stride, pad)
    assert out.shape == expected.shape
    assert rel_error(out, expected) < EXACT
    np.testing.assert_array_equal(x, x0, err_msg="conv2d_forward modified x")


# ---------------------------------------------------------------------------------------------------
# Backward


@settings(max_examples=30, deadline=None)
@given(layer=layers())
def test_backward_equals_finite_differences(layer):
    x, w, b, stride, pad, dout = layer
    _, cache = fast.conv2d_forward(x, w, b, stride, pad)
    dx, dw, db = fast.conv2d_backward(dout, cache)

    def out_of(x_=x, w_=w, b_=b):
        return fast.conv2d_forward(x_, w_, b_, stride, pad)[0]

    assert dx.shape == x.shape and dw.shape == w.shape and db.shape == b.shape
    assert rel_error(dx, numerical_gradient(lambda v: out_of(x_=v), x, dout)) < NUMERIC
    assert rel_error(dw, numerical_gradient(lambda v: out_of(w_=v), w, dout)) < NUMERIC
    assert rel_error(db, numerical_gradient(lambda v: out_of(b_=v), b, dout)) < NUMERIC


@settings(max_examples=30, deadline=None)
@given(layer=layers())
def test_forward_and_backward_equal_loop_reference(layer):
    _check_against_loop_reference(*layer)


@pytest.mark.slow
@settings(max_examples=30, deadline=None)
@given(layer=layers())
def test_forward_and_backward_equal_torch(layer):
    torch = pytest.importorskip("torch")
    x, w, b, stride, pad, dout = layer
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    out_t = torch.nn.functional.conv2d(xt, wt, bt, stride=stride, padding=pad)
    (out_t * torch.tensor(dout)).sum().backward()

    out, cache = fast.conv2d_forward(x, w, b, stride, pad)
    dx, dw, db = fast.conv2d_backward(dout, cache)
    assert rel_error(out, out_t.detach().numpy()) < EXACT
    assert rel_error(dx, xt.grad.numpy()) < EXACT
    assert rel_error(dw, wt.grad.numpy()) < EXACT
    assert rel_error(db, bt.grad.numpy()) < EXACT


# ---------------------------------------------------------------------------------------------------
# Stride 1: chunks and the workspace
#
# The stride-1 layer makes its column matrix CHUNK_BYTES at a time and keeps its temporary arrays in a
# per-thread workspace between calls. These tests force many small chunks (ranges split inside an
# image, and ranges of several images), hand it buffers left dirty by other shapes, dtypes and data,
# and run it from two threads at once, always against the loop reference.


@pytest.mark.parametrize("chunk_bytes", [1, 600 * 8 * 9, 2**22])
# every route of the backward pass: K > C with few channels (x unrolled for dw) and with C >= 8
# (dw from shifted views of x), both with col2im; K <= C (dx as a transposed convolution)
@pytest.mark.parametrize(("C", "K"), [(2, 5), (8, 11), (4, 4), (5, 2)])
def test_stride1_chunking_equals_loop_reference(monkeypatch, chunk_bytes, C, K):
    # chunk_bytes=1: 64-column ranges, several per image; 600*8*9: whole images, several per range
    monkeypatch.setattr(fast, "CHUNK_BYTES", chunk_bytes)
    rng = np.random.default_rng(C * 10 + K)
    for N, H, W, FH, FW, pad in [(3, 9, 7, 3, 2, 1), (2, 5, 11, 1, 4, 0), (4, 6, 6, 3, 3, 2)]:
        x, w, b = rng.normal(size=(N, C, H, W)), rng.normal(size=(K, C, FH, FW)), rng.normal(size=K)
        dout = rng.normal(size=(N, K, H + 2 * pad - FH + 1, W + 2 * pad - FW + 1))
        _check_against_loop_reference(x, w, b, 1, pad, dout)


@settings(max_examples=40, deadline=None)
@given(layers=st.lists(layers(), min_size=2, max_size=4), chunk_bytes=st.sampled_from([1, 4096, 2**22]))
def test_workspace_reused_across_shapes_and_data(layers, chunk_bytes):
    """Consecutive calls on different layers (stride 1 where drawn so, dirty buffers) stay exact."""
    saved = fast.CHUNK_BYTES
    fast.CHUNK_BYTES = chunk_bytes
    try:
        for x, w, b, stride, pad, dout in layers:
            _check_against_loop_reference(x, w, b, stride, pad, dout)
            # the same geometry with new data: the kept zero borders must still be zeros
            _check_against_loop_reference(x[::-1] * 2.0, w, b, stride, pad, dout[::-1])
    finally:
        fast.CHUNK_BYTES = saved


def test_results_do_not_live_in_the_workspace():
    rng = np.random.default_rng(5)
    x, w, b = rng.normal(size=(2, 3, 8, 8)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    out, cache = fast.conv2d_forward(x, w, b, 1, 1)
    dout = rng.normal(size=out.shape)
    grads = fast.conv2d_backward(dout, cache)
    kept = [a.copy() for a in (out, *grads)]
    out2, cache2 = fast.conv2d_forward(-x, w, b, 1, 1)  # same shapes: the same workspace buffers
    fast.conv2d_backward(-dout, cache2)
    for got, want in zip((out, *grads), kept, strict=True):
        np.testing.assert_array_equal(got, want)


def test_float32_then_float64_on_one_shape():
    rng = np.random.default_rng(6)
    x, w, b = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    dout = rng.normal(size=(2, 4, 7, 6))
    x32, w32, b32, d32 = (a.astype(np.float32) for a in (x, w, b, dout))
    out32, cache32 = fast.conv2d_forward(x32, w32, b32, 1, 1)
    grads32 = fast.conv2d_backward(d32, cache32)
    assert out32.dtype == np.float32 and all(g.dtype == np.float32 for g in grads32)
    out64, grads64 = _check_against_loop_reference(x, w, b, 1, 1, dout)
    for got, want in zip((out32, *grads32), (out64, *grads64), strict=True):
        assert rel_error(got, want) < FLOAT32


def test_clear_workspace_frees_and_the_layer_still_works():
    rng = np.random.default_rng(7)
    x, w, b = rng.normal(size=(2, 3, 8, 8)), rng.normal(size=(4, 3, 3, 3)), rng.normal(size=4)
    dout = rng.normal(size=(2, 4, 8, 8))
    fast.conv2d_backward(dout, fast.conv2d_forward(x, w, b, 1, 1)[1])
    assert fast.workspace_nbytes() >= x.nbytes  # at least the padded input is kept
    fast.clear_workspace()
    assert fast.workspace_nbytes() == 0
    _check_against_loop_reference(x, w, b, 1, 1, dout)


def test_two_threads_at_once():
    """Each thread has its own workspace: concurrent layers of different shapes do not mix."""
    from concurrent.futures import ThreadPoolExecutor

    rng = np.random.default_rng(8)
    jobs = []
    for N, C, H, K in [(4, 3, 20, 5), (2, 6, 17, 2)]:
        x, w, b = rng.normal(size=(N, C, H, H)), rng.normal(size=(K, C, 3, 3)), rng.normal(size=K)
        jobs.append((x, w, b, rng.normal(size=(N, K, H, H))))

    def run(job):
        x, w, b, dout = job
        for _ in range(20):
            out, cache = fast.conv2d_forward(x, w, b, 1, 1)
            grads = fast.conv2d_backward(dout, cache)
        return out, grads

    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(run, jobs))
    for (x, w, b, dout), (out, grads) in zip(jobs, results, strict=True):
        out_ref, cache_ref = ref.conv.conv2d_forward(x, w, b, 1, 1)
        assert rel_error(out, out_ref) < EXACT
        for got, want in zip(grads, ref.conv.conv2d_backward(dout, cache_ref), strict=True):
            assert rel_error(got, want) < EXACT


def test_backward_leaves_inputs_and_cache_alone():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3, 6, 5)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)
    x0 = x.copy()
    out, cache = fast.conv2d_forward(x, w, b, stride=2, pad=1)
    dout = rng.normal(size=out.shape)
    dout0 = dout.copy()
    first = fast.conv2d_backward(dout, cache)
    second = fast.conv2d_backward(dout, cache)  # the cache is reusable
    for a, c in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(x, x0, err_msg="modified x")
    np.testing.assert_array_equal(dout, dout0, err_msg="conv2d_backward modified dout")


# ---------------------------------------------------------------------------------------------------
# dtypes


def test_float32_stays_float32():
    rng = np.random.default_rng(0)
    x, w, b = rng.normal(size=(2, 3, 8, 7)), rng.normal(size=(4, 3, 3, 2)), rng.normal(size=4)
    out64, cache64 = fast.conv2d_forward(x, w, b, stride=2, pad=1)
    dout = rng.normal(size=out64.shape)
    grads64 = fast.conv2d_backward(dout, cache64)

    x32 = x.astype(np.float32)
    out32, cache32 = fast.conv2d_forward(x32, w.astype(np.float32), b.astype(np.float32), stride=2, pad=1)
    grads32 = fast.conv2d_backward(dout.astype(np.float32), cache32)
    assert out32.dtype == np.float32
    assert [g.dtype for g in grads32] == [np.float32] * 3
    assert x32.dtype == np.float32
    for got, want in zip((out32, *grads32), (out64, *grads64), strict=True):
        assert rel_error(got, want) < FLOAT32


# ---------------------------------------------------------------------------------------------------
# im2col and col2im


@settings(max_examples=30, deadline=None)
@given(layer=layers())
def test_im2col_layout_matches_docstring(layer):
    x, w, _, stride, pad, _ = layer
    N, C, H, W = x.shape
    _, _, fh, fw = w.shape
    cols = fast.im2col(x, fh, fw, stride, pad)
    Ho, Wo = (H + 2 * pad - fh) // stride + 1, (W + 2 * pad - fw) // stride + 1
    assert cols.shape == (C * fh * fw, N * Ho * Wo)
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    for n, c, i, j, p, q in np.ndindex(N, C, Ho, Wo, fh, fw):
        assert cols[(c * fh + p) * fw + q, (n * Ho + i) * Wo + j] == xp[n, c, i * stride + p, j * stride + q]


@settings(max_examples=30, deadline=None)
@given(layer=layers())
def test_col2im_is_the_adjoint_of_im2col(layer):
    # <im2col(x), y> == <x, col2im(y)> for all x, y: col2im is how gradients flow back through im2col.
    x, w, _, stride, pad, _ = layer
    _, _, fh, fw = w.shape
    cols = fast.im2col(x, fh, fw, stride, pad)
    y = np.random.default_rng(0).normal(size=cols.shape)
    back = fast.col2im(y, x.shape, fh, fw, stride, pad)
    assert back.shape == x.shape
    lhs, rhs = np.sum(cols * y), np.sum(x * back)
    assert abs(lhs - rhs) <= EXACT * (np.sum(np.abs(cols * y)) + np.sum(np.abs(x * back)))


def test_im2col_times_filters_is_the_layer():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(2, 3, 7, 6)), rng.normal(size=(4, 3, 2, 3))
    cols = fast.im2col(x, 2, 3, stride=2, pad=1)
    out, _ = fast.conv2d_forward(x, w, np.zeros(4), stride=2, pad=1)
    N, K, Ho, Wo = out.shape
    by_hand = (w.reshape(K, -1) @ cols).reshape(K, N, Ho, Wo).transpose(1, 0, 2, 3)
    assert rel_error(by_hand, out) < EXACT


# ---------------------------------------------------------------------------------------------------
# Argument checks: each error names the argument and the rule.


def _args(**changes):
    args = dict(x=np.zeros((2, 4, 3, 3)), w=np.zeros((5, 4, 3, 3)), b=np.zeros(5), stride=1, pad=0)
    args.update(changes)
    return args


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        (dict(x=np.zeros((4, 3, 3))), r"\bx must be a 4-D"),
        (dict(w=np.zeros((4, 3, 3))), r"\bw must be a 4-D"),
        (dict(w=np.zeros((5, 3, 3, 3))), r"w has C=3 channels but x has C=4"),
        (dict(b=np.zeros(4)), r"\bb must have shape \(K,\) = \(5,\)"),
        (dict(b=np.zeros((5, 1))), r"\bb must have shape \(K,\)"),
        (dict(stride=0), r"stride must be >= 1"),
        (dict(stride=1.5), r"stride must be an integer"),
        (dict(pad=-1), r"pad must be >= 0"),
        (
            dict(w=np.zeros((5, 4, 5, 3))),
            r"filter height FH=5 is larger than the padded input height H\+2\*pad=3",
        ),
        (
            dict(w=np.zeros((5, 4, 2, 6)), pad=1),
            r"filter width FW=6 is larger than the padded input width W\+2\*pad=5",
        ),
    ],
)
def test_conv2d_forward_rejects_bad_arguments(changes, match):
    with pytest.raises(ValueError, match=match):
        fast.conv2d_forward(**_args(**changes))


@pytest.mark.parametrize(
    ("args", "match"),
    [
        ((np.zeros((3, 3)), 2, 2), r"\bx must be a 4-D"),
        ((np.zeros((1, 1, 3, 3)), 0, 2), r"\bfh must be an integer >= 1"),
        ((np.zeros((1, 1, 3, 3)), 2, 1.0), r"\bfw must be an integer >= 1"),
        ((np.zeros((1, 1, 3, 3)), 4, 2), r"filter height FH=4 is larger than the padded input height"),
        ((np.zeros((1, 1, 3, 3)), 2, 2, 0), r"stride must be >= 1"),
        ((np.zeros((1, 1, 3, 3)), 2, 2, 1, -2), r"pad must be >= 0"),
    ],
)
def test_im2col_rejects_bad_arguments(args, match):
    with pytest.raises(ValueError, match=match):
        fast.im2col(*args)


def test_conv2d_backward_rejects_dout_of_the_wrong_shape():
    out, cache = fast.conv2d_forward(**_args())
    with pytest.raises(
        ValueError, match=r"dout must have the shape of out, \(N, K, Ho, Wo\) = \(2, 5, 1, 1\)"
    ):
        fast.conv2d_backward(np.zeros((2, 5, 1, 2)), cache)
