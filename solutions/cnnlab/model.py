"""A tiny CNN built from your layers, trained with SGD; and deep stacks of residual blocks (provided).

Everything convolutional here calls *your* functions through their modules —
``conv.conv2d_forward``, ``pool.maxpool2d_forward``, ``residual.residual_block_forward`` and their
backward passes — so the network only works once Tasks 2.1-4.2 are done, and any change you make
to those files is picked up. This module adds what the exercises do not ask for: an affine layer,
the softmax loss, SGD with momentum, a training loop, and the deep-stack gradient experiment of
notebook 04.

The network of :class:`TinyCNN`::

    x (N, C, H, W)
      -> conv 3x3, "same" padding, K filters -> ReLU -> max pool 2x2       (N, K, H/2, W/2)
      -> num_blocks residual blocks H(x) = F(x) + lam * x                    (N, K, H/2, W/2)
      -> affine -> class scores (N, num_classes) -> softmax cross-entropy loss

With ``lam = 0`` the blocks are plain two-layer blocks (a "plain stack"), with ``lam = 1`` they
are the identity-skip blocks of He et al. (2016).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import conv, pool, residual

Params = dict[str, np.ndarray]
Cache = tuple[Any, ...]


# ----------------------------------------------------------------------------------------------
# Layers that are not exercises
# ----------------------------------------------------------------------------------------------


def affine_forward(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, Cache]:
    """Fully connected layer ``out = x.reshape(N, D) @ w + b``.

    Args:
        x: input of shape (N, d_1, ..., d_k), flattened to (N, D) with D = d_1 * ... * d_k,
            e.g. (N, C, H, W) -> (N, C*H*W).
        w: weights, shape (D, M).
        b: biases, shape (M,).

    Returns:
        out: shape (N, M); cache: ``(x, w)``.
    """
    N = x.shape[0]
    out = x.reshape(N, -1) @ w + b
    return out, (x, w)


def affine_backward(dout: np.ndarray, cache: Cache) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Backward of :func:`affine_forward`: dout (N, M) -> dx (shape of x), dw (D, M), db (M,)."""
    x, w = cache
    N = x.shape[0]
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(N, -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def softmax_loss(scores: np.ndarray, y: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy loss and its gradient.

    ``L = -(1/N) sum_n log softmax(scores[n])[y[n]]``, computed stably (scores shifted by their
    row maximum).

    Args:
        scores: class scores, shape (N, M).
        y: labels in 0 .. M-1, shape (N,).

    Returns:
        loss: a float; dscores: dL/dscores, shape (N, M).
    """
    N = scores.shape[0]
    shifted = scores - scores.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    loss = -float(log_probs[np.arange(N), y].mean())
    dscores = np.exp(log_probs)
    dscores[np.arange(N), y] -= 1.0
    return loss, dscores / N


# ----------------------------------------------------------------------------------------------
# The tiny CNN
# ----------------------------------------------------------------------------------------------


@dataclass
class TinyCNN:
    """conv 3x3 -> ReLU -> max pool 2x2 -> ``num_blocks`` residual blocks -> affine.

    Create one with :func:`init_tiny_cnn`. ``params`` holds ``"conv_w"`` (K, C, 3, 3),
    ``"conv_b"`` (K,), for each block i ``"block{i}_w1"``, ``"block{i}_b1"``, ``"block{i}_w2"``,
    ``"block{i}_b2"`` (see :func:`cnnlab.residual.residual_block_forward`), and ``"fc_w"``
    (K * H/2 * W/2, num_classes), ``"fc_b"`` (num_classes,).
    """

    params: Params
    num_blocks: int = 0
    lam: float = 1.0
    pool_size: int = 2

    def block_params(self, i: int) -> Params:
        """The parameters of block ``i`` under the names the residual block expects."""
        return {k: self.params[f"block{i}_{k}"] for k in ("w1", "b1", "w2", "b2")}

    def forward(self, x: np.ndarray) -> tuple[np.ndarray, Cache]:
        """Class scores for images ``x`` (N, C, H, W): returns scores (N, num_classes) and a cache."""
        p = self.params
        pad = (p["conv_w"].shape[2] - 1) // 2
        a, conv_cache = conv.conv2d_forward(x, p["conv_w"], p["conv_b"], 1, pad)
        r, relu_cache = residual.relu_forward(a)
        h, pool_cache = pool.maxpool2d_forward(r, self.pool_size)
        block_caches = []
        for i in range(self.num_blocks):
            h, cache = residual.residual_block_forward(h, self.block_params(i), self.lam)
            block_caches.append(cache)
        scores, fc_cache = affine_forward(h, p["fc_w"], p["fc_b"])
        return scores, (conv_cache, relu_cache, pool_cache, block_caches, fc_cache)

    def backward(self, dscores: np.ndarray, cache: Cache) -> tuple[np.ndarray, Params]:
        """Gradients of the loss: dx (N, C, H, W) and a dict shaped like ``params``."""
        conv_cache, relu_cache, pool_cache, block_caches, fc_cache = cache
        grads: Params = {}
        dh, grads["fc_w"], grads["fc_b"] = affine_backward(dscores, fc_cache)
        for i in reversed(range(self.num_blocks)):
            dh, block_grads = residual.residual_block_backward(dh, block_caches[i])
            for k, g in block_grads.items():
                grads[f"block{i}_{k}"] = g
        dr = pool.maxpool2d_backward(dh, pool_cache)
        da = residual.relu_backward(dr, relu_cache)
        dx, grads["conv_w"], grads["conv_b"] = conv.conv2d_backward(da, conv_cache)
        return dx, grads

    def loss(self, x: np.ndarray, y: np.ndarray) -> tuple[float, Params]:
        """Softmax loss on ``(x, y)`` — x (N, C, H, W), y (N,) — and the gradient of every parameter."""
        scores, cache = self.forward(x)
        loss, dscores = softmax_loss(scores, y)
        _, grads = self.backward(dscores, cache)
        return loss, grads

    def predict(self, x: np.ndarray, batch_size: int = 100) -> np.ndarray:
        """Predicted labels, shape (N,), computed in batches of ``batch_size`` images."""
        out = [self.forward(x[i : i + batch_size])[0].argmax(axis=1) for i in range(0, len(x), batch_size)]
        return np.concatenate(out)

    def evaluate(self, x: np.ndarray, y: np.ndarray, batch_size: int = 100) -> tuple[float, float]:
        """``(mean loss, accuracy)`` on ``(x, y)``, without gradients."""
        total, correct = 0.0, 0
        for i in range(0, len(x), batch_size):
            scores, _ = self.forward(x[i : i + batch_size])
            loss, _ = softmax_loss(scores, y[i : i + batch_size])
            total += loss * len(scores)
            correct += int((scores.argmax(axis=1) == y[i : i + batch_size]).sum())
        return total / len(x), correct / len(x)


def _he(rng: np.random.Generator, shape: tuple[int, ...], fan_in: int, scale: float | None) -> np.ndarray:
    std = np.sqrt(2.0 / fan_in) if scale is None else scale
    return std * rng.standard_normal(shape)


def init_tiny_cnn(
    input_shape: tuple[int, int, int] = (1, 16, 16),
    num_filters: int = 8,
    num_classes: int = 3,
    num_blocks: int = 0,
    lam: float = 1.0,
    weight_scale: float | None = None,
    seed: int = 0,
) -> TinyCNN:
    """A :class:`TinyCNN` with random weights and zero biases.

    Args:
        input_shape: (C, H, W) of one image; H and W must be even (one 2x2 max pool).
        num_filters: K, the channels of the first conv and of every block.
        num_classes: number of output scores.
        num_blocks: residual blocks after the pooling (0: none).
        lam: skip weight of every block; 0 makes them plain blocks.
        weight_scale: standard deviation of the block weights; ``None`` uses He initialisation
            ``sqrt(2 / fan_in)``. The first conv and the affine layer always use He.
        seed: seed of the random generator.
    """
    C, H, W = input_shape
    if H % 2 or W % 2:
        raise ValueError(f"H and W must be even for the 2x2 max pool, got {H}x{W}")
    rng = np.random.default_rng(seed)
    K = num_filters
    params: Params = {
        "conv_w": _he(rng, (K, C, 3, 3), C * 9, None),
        "conv_b": np.zeros(K),
    }
    for i in range(num_blocks):
        params[f"block{i}_w1"] = _he(rng, (K, K, 3, 3), K * 9, weight_scale)
        params[f"block{i}_b1"] = np.zeros(K)
        params[f"block{i}_w2"] = _he(rng, (K, K, 3, 3), K * 9, weight_scale)
        params[f"block{i}_b2"] = np.zeros(K)
    D = K * (H // 2) * (W // 2)
    params["fc_w"] = 0.1 * np.sqrt(1.0 / D) * rng.standard_normal((D, num_classes))
    params["fc_b"] = np.zeros(num_classes)
    return TinyCNN(params=params, num_blocks=num_blocks, lam=lam)


class SGD:
    """Stochastic gradient descent with momentum: ``v = momentum * v - lr * g; p += v`` (in place)."""

    def __init__(self, lr: float = 0.05, momentum: float = 0.9) -> None:
        self.lr = lr
        self.momentum = momentum
        self.velocity: Params = {}

    def step(self, params: Params, grads: Params) -> None:
        """Update every array of ``params`` in place from the matching entry of ``grads``."""
        for name, g in grads.items():
            v = self.velocity.get(name)
            v = -self.lr * g if v is None else self.momentum * v - self.lr * g
            self.velocity[name] = v
            params[name] += v


@dataclass
class History:
    """What :func:`train` records: the minibatch loss at every step, and per-epoch evaluations."""

    step_loss: list[float] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    val_acc: list[float] = field(default_factory=list)
    first_layer_grad_norm: list[float] = field(default_factory=list)
    seconds: float = 0.0


def train(
    model: TinyCNN,
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    epochs: int = 5,
    batch_size: int = 32,
    lr: float = 0.05,
    momentum: float = 0.9,
    seed: int = 0,
    verbose: bool = False,
) -> History:
    """Train ``model`` in place with minibatch SGD; evaluate on train and validation after each epoch.

    Args:
        x_train, y_train: training images (N, C, H, W) and labels (N,).
        x_val, y_val: validation images and labels.
        epochs: passes over the training set.
        batch_size: images per SGD step; the training set is reshuffled every epoch.
        lr, momentum: see :class:`SGD`.
        seed: seed of the shuffling.
        verbose: print one line per epoch.

    Returns:
        a :class:`History`; entry 0 of the per-epoch lists is the evaluation before training.
    """
    import time

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    opt = SGD(lr, momentum)
    hist = History()

    def evaluate() -> None:
        for (xs, ys), (losses, accs) in (
            ((x_train, y_train), (hist.train_loss, hist.train_acc)),
            ((x_val, y_val), (hist.val_loss, hist.val_acc)),
        ):
            loss, acc = model.evaluate(xs, ys)
            losses.append(loss)
            accs.append(acc)

    evaluate()
    for epoch in range(epochs):
        order = rng.permutation(len(x_train))
        for i in range(0, len(order), batch_size):
            idx = order[i : i + batch_size]
            loss, grads = model.loss(x_train[idx], y_train[idx])
            hist.step_loss.append(loss)
            first = getattr(model, "first_weights", "conv_w")
            hist.first_layer_grad_norm.append(float(np.linalg.norm(grads[first])))
            opt.step(model.params, grads)
        evaluate()
        if verbose:
            print(
                f"epoch {epoch + 1}/{epochs}: train loss {hist.train_loss[-1]:.3f} "
                f"acc {hist.train_acc[-1]:.2f} | val loss {hist.val_loss[-1]:.3f} acc {hist.val_acc[-1]:.2f}"
            )
    hist.seconds = time.perf_counter() - start
    return hist


# ----------------------------------------------------------------------------------------------
# A CNN written as layer specs (notebook 05): [CONV-RELU-POOL] x 2 -> FC, and the same without pools
# ----------------------------------------------------------------------------------------------


@dataclass
class StackCNN(TinyCNN):
    """A CNN given as a list of layer specs, as in ``cnnlab/network.py``: ``("conv", K, F, S, P)``,
    ``("pool", F, S)``, ``("relu",)``, ``("fc", M)``; the last layer's outputs are the class scores.

    Create one with :func:`init_stack_cnn`. Layer ``i`` with weights has ``params[f"layer{i}_w"]``
    (conv: (K, D, F, F); fc: (inputs, M)) and ``params[f"layer{i}_b"]`` ((K,) or (M,)). Every conv,
    pool and ReLU runs *your* functions (``conv.conv2d_forward``, ``pool.maxpool2d_forward`` and
    their backward passes, Tasks 2.1-3.2); fc is :func:`affine_forward`. ``loss``, ``predict`` and
    ``evaluate`` work as for :class:`TinyCNN`, and :func:`train` trains it.
    """

    layers: list[tuple] = field(default_factory=list)

    @property
    def first_weights(self) -> str:
        """The name of the first layer's weights (:func:`train` records the norm of their gradient)."""
        return next(f"layer{i}_w" for i, layer in enumerate(self.layers) if layer[0] in ("conv", "fc"))

    def forward(self, x: np.ndarray, upto: int | None = None) -> tuple[np.ndarray, Cache]:
        """Run layers ``0 .. upto`` (default: all) on ``x`` (N, D, H, W); returns the output and caches.

        The output of a conv / pool / relu layer is (N, K or D, H', W'), of an fc layer (N, M).
        """
        caches = []
        last = len(self.layers) - 1 if upto is None else upto
        for i, layer in enumerate(self.layers[: last + 1]):
            kind = layer[0]
            if kind == "conv":
                w, b = self.params[f"layer{i}_w"], self.params[f"layer{i}_b"]
                x, cache = conv.conv2d_forward(x, w, b, layer[3], layer[4])
            elif kind == "pool":
                x, cache = pool.maxpool2d_forward(x, layer[1], layer[2])
            elif kind == "relu":
                x, cache = residual.relu_forward(x)
            else:
                x, cache = affine_forward(x, self.params[f"layer{i}_w"], self.params[f"layer{i}_b"])
            caches.append(cache)
        return x, caches

    def backward(self, dscores: np.ndarray, cache: Cache) -> tuple[np.ndarray, Params]:
        """Gradients of the loss: dx (N, D, H, W) and a dict shaped like ``params``."""
        grads: Params = {}
        d = dscores
        for i in reversed(range(len(cache))):
            kind = self.layers[i][0]
            if kind == "conv":
                d, grads[f"layer{i}_w"], grads[f"layer{i}_b"] = conv.conv2d_backward(d, cache[i])
            elif kind == "pool":
                d = pool.maxpool2d_backward(d, cache[i])
            elif kind == "relu":
                d = residual.relu_backward(d, cache[i])
            else:
                d, grads[f"layer{i}_w"], grads[f"layer{i}_b"] = affine_backward(d, cache[i])
        return d, grads

    def features(self, x: np.ndarray, upto: int, batch_size: int = 200) -> np.ndarray:
        """The activations after layer ``upto`` for images ``x``, computed in batches."""
        out = [self.forward(x[i : i + batch_size], upto)[0] for i in range(0, len(x), batch_size)]
        return np.concatenate(out)

    def activations(self, x: np.ndarray, layers: Sequence[int]) -> list[np.ndarray]:
        """The activations after each layer in ``layers`` (-1: ``x`` itself), from one forward pass."""
        found = {-1: x}
        a = x
        for i in range(max(layers, default=-1) + 1):
            a = self.forward_layer(i, a)
            found[i] = a
        return [found[i] for i in layers]

    def forward_layer(self, i: int, x: np.ndarray) -> np.ndarray:
        """The output of layer ``i`` alone on ``x`` (no cache kept)."""
        kind = self.layers[i][0]
        if kind == "conv":
            w, b = self.params[f"layer{i}_w"], self.params[f"layer{i}_b"]
            return conv.conv2d_forward(x, w, b, self.layers[i][3], self.layers[i][4])[0]
        if kind == "pool":
            return pool.maxpool2d_forward(x, self.layers[i][1], self.layers[i][2])[0]
        if kind == "relu":
            return residual.relu_forward(x)[0]
        return affine_forward(x, self.params[f"layer{i}_w"], self.params[f"layer{i}_b"])[0]


def init_stack_cnn(input_shape: tuple[int, int, int], layers: Sequence[tuple], seed: int = 0) -> StackCNN:
    """A :class:`StackCNN` of ``layers`` for images of ``input_shape`` (D, H, W): He-initialised
    weights, zero biases.

    A conv layer's filters span the depth D its input has; an fc layer gets as many inputs as the
    activation before it has entries. The sizes come from the provided argument checks of the conv
    and pool layers (``conv.check_conv_args``, ``pool.pool_output_shape``): no layer runs here.
    """
    rng = np.random.default_rng(seed)
    net = StackCNN(params={}, layers=[tuple(layer) for layer in layers])
    shape = tuple(input_shape)  # of the current activation, one image
    for i, layer in enumerate(net.layers):
        kind = layer[0]
        if kind == "conv":
            _, K, F, S, P = layer
            D = shape[0]
            w, b = _he(rng, (K, D, F, F), D * F * F, None), np.zeros(K)
            Ho, Wo = conv.check_conv_args(np.zeros((1, *shape)), w, b, S, P)
            net.params[f"layer{i}_w"], net.params[f"layer{i}_b"] = w, b
            shape = (K, Ho, Wo)
        elif kind == "pool":
            _, Ho, Wo = pool.pool_output_shape(np.zeros((1, *shape)), layer[1], layer[2])
            shape = (shape[0], Ho, Wo)
        elif kind == "fc":
            n_in = int(np.prod(shape))
            net.params[f"layer{i}_w"] = _he(rng, (n_in, layer[1]), n_in, None)
            net.params[f"layer{i}_b"] = np.zeros(layer[1])
            shape = (layer[1],)
    return net


def layer_table(layers: Sequence[tuple], table: Sequence[tuple[tuple[int, ...], int]]) -> str:
    """A printable table of a stack: one row per layer with its spec, output shape and parameters
    (``table`` is what ``network.layer_shapes`` returned for ``layers``), and the total."""
    rows = [f"{'#':>2}  {'layer':22s} {'output shape':>14s} {'parameters':>12s}"]
    for i, (layer, (shape, n)) in enumerate(zip(layers, table, strict=True)):
        rows.append(f"{i:>2}  {str(tuple(layer)):22s} {str(tuple(shape)):>14s} {n:>12,}")
    rows.append(f"{'':2}  {'total':22s} {'':>14s} {sum(n for _, n in table):>12,}")
    return "\n".join(rows)


def seconds_per_forward(net: TinyCNN, x: np.ndarray, repeats: int = 5) -> float:
    """The wall time of one forward pass of ``net`` on the batch ``x``: the fastest of ``repeats`` runs,
    the one least disturbed by other work on the machine."""
    import time

    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        net.forward(x)
        times.append(time.perf_counter() - start)
    return float(np.min(times))


def feature_change(net: StackCNN, x: np.ndarray, stages: Sequence[int], dy: int, dx: int) -> list[float]:
    """How much the features after each layer in ``stages`` change when the images move.

    For each image ``x[n]`` (N, D, H, W) the relative change ``||f(shift x) - f(x)|| / ||f(x)||`` of
    the activations ``f`` after layer ``stages[k]`` (-1: the input itself), with the image shifted
    by ``dy`` rows and ``dx`` columns and zeros filling in (:func:`cnnlab.equivariance.shift2d`);
    returns the mean over the images, one number per stage.
    """
    from .equivariance import shift2d

    moved = shift2d(x, dy, dx, mode="zero")
    out = []
    for a, b in zip(net.activations(x, stages), net.activations(moved, stages), strict=True):
        diff = np.linalg.norm((b - a).reshape(len(x), -1), axis=1)
        size = np.linalg.norm(a.reshape(len(x), -1), axis=1)
        out.append(float(np.mean(diff / np.maximum(size, 1e-12))))
    return out


def effective_receptive_field(
    net: StackCNN, x: np.ndarray, upto: int, unit: tuple[int, int, int]
) -> np.ndarray:
    """The effective receptive field of one unit: ``sum_n |d out[n, unit] / d x[n]|`` over the images.

    Runs layers ``0 .. upto`` of ``net`` (conv, pool and relu only: *your* forward and backward passes)
    on ``x`` (N, D, H, W), puts a gradient of 1 on output unit ``unit = (channel, row, column)`` of
    every image and 0 everywhere else, and pushes it back to the input. Returns (H, W): where the
    input influences that unit, and how much.
    """
    out, caches = net.forward(x, upto=upto)
    dout = np.zeros_like(out)
    c, i, j = unit
    dout[:, c, i, j] = 1.0
    dx, _ = net.backward(dout, caches)
    return np.abs(dx).sum(axis=(0, 1))


def receptive_window(layers: Sequence[tuple], index: int) -> tuple[int, int]:
    """The first and last input pixel (along one axis) that unit ``index`` of the last layer of
    ``layers`` (conv, pool, relu) can see: padding moves a window's start by ``P`` units of the layer
    below, and every stride multiplies the distance between units."""
    first, last, jump = 0, 0, 1  # of unit 0, in input pixels; distance between neighbouring units
    for layer in layers:
        if layer[0] == "conv":
            f, s, p = layer[2], layer[3], layer[4]
        elif layer[0] == "pool":
            f, s, p = layer[1], layer[2], 0
        else:
            continue
        first -= p * jump
        last = last - p * jump + (f - 1) * jump
        jump *= s
    return first + index * jump, last + index * jump


def gradient_norms(model: TinyCNN, x: np.ndarray, y: np.ndarray) -> dict[str, float]:
    """Norm of the loss gradient of each layer's weights, input side first.

    Keys: ``"conv"``, ``"block0"``, ..., ``"fc"``; a block's norm covers its w1 and w2 together.
    """
    _, grads = model.loss(x, y)
    norms = {"conv": float(np.linalg.norm(grads["conv_w"]))}
    for i in range(model.num_blocks):
        g = np.concatenate([grads[f"block{i}_w1"].ravel(), grads[f"block{i}_w2"].ravel()])
        norms[f"block{i}"] = float(np.linalg.norm(g))
    norms["fc"] = float(np.linalg.norm(grads["fc_w"]))
    return norms


# ----------------------------------------------------------------------------------------------
# Deep stacks of residual blocks: does the gradient vanish? (notebook 04)
# ----------------------------------------------------------------------------------------------


def init_block_stack(
    num_blocks: int, channels: int = 2, filter_size: int = 3, weight_scale: float = 0.05, seed: int = 0
) -> list[Params]:
    """Parameters of ``num_blocks`` residual blocks, each mapping (N, C, H, W) to itself.

    Weights ~ N(0, weight_scale^2) (small, so each residual branch F is close to 0), biases 0;
    w1 and w2 both have shape (C, C, filter_size, filter_size).
    """
    rng = np.random.default_rng(seed)
    C, F = channels, filter_size
    return [
        {
            "w1": weight_scale * rng.standard_normal((C, C, F, F)),
            "b1": np.zeros(C),
            "w2": weight_scale * rng.standard_normal((C, C, F, F)),
            "b2": np.zeros(C),
        }
        for _ in range(num_blocks)
    ]


def stack_forward(x: np.ndarray, blocks: Sequence[Params], lam: float) -> tuple[np.ndarray, list[Cache]]:
    """Apply the residual blocks one after the other: x (N, C, H, W) -> out (N, C, H, W), caches."""
    caches = []
    for params in blocks:
        x, cache = residual.residual_block_forward(x, params, lam)
        caches.append(cache)
    return x, caches


def stack_backward(dout: np.ndarray, caches: Sequence[Cache]) -> np.ndarray:
    """dL/dx0 (N, C, H, W) from dL/dout through the blocks whose caches are given (last first)."""
    for cache in reversed(caches):
        dout, _ = residual.residual_block_backward(dout, cache)
    return dout


@dataclass
class DepthExperiment:
    """Result of :func:`gradient_norm_vs_depth`.

    ``norms[lam][i]`` is ``||dL/dx0||`` for a stack of ``depths[i]`` blocks with skip weight
    ``lam`` (lam = 0: plain stack), and ``predicted[lam][i] = lam ** depths[i] * ||dL/dH_L||``,
    the gradient that the skip path alone carries back (exact when F = 0).
    """

    depths: np.ndarray
    lams: tuple[float, ...]
    norms: dict[float, np.ndarray]
    predicted: dict[float, np.ndarray]
    seconds: float = 0.0

    def table(self, depths: Sequence[int] | None = None) -> str:
        """The measured norms, and the prediction in brackets, one row per depth (default: all)."""
        head = "depth " + "".join(f"{'lam=' + format(lam, 'g'):>28}" for lam in self.lams)
        rows = [head]
        show = set(self.depths.tolist() if depths is None else depths)
        for i, L in enumerate(self.depths):
            if int(L) not in show:
                continue
            cells = "".join(
                f"{self.norms[lam][i]:>13.3e} ({self.predicted[lam][i]:9.2e})" for lam in self.lams
            )
            rows.append(f"{int(L):>5} " + cells)
        return "\n".join(rows)


def gradient_norm_vs_depth(
    depths: Sequence[int] = (1, 2, 3, 5, 8, 10, 15, 20, 30, 40, 50),
    lams: Sequence[float] = (0.0, 0.5, 1.0, 1.5),
    shape: tuple[int, int, int, int] = (1, 2, 8, 8),
    weight_scale: float = 0.05,
    seed: int = 0,
) -> DepthExperiment:
    """Norm of dL/dx0 against depth, for stacks of residual blocks ``H(x) = F(x) + lam x``.

    One stack of ``max(depths)`` blocks is drawn (:func:`init_block_stack`, the same weights for
    every lam). For each depth L the loss is ``L = sum(g * H_L)`` with a fixed random g of unit
    norm at the output of block L, so dL/dH_L = g and dL/dx0 is g carried back through L blocks.
    Every block multiplies it by (dF/dx + lam); with small weights dF/dx is small, so the norm
    is about ``lam ** L``.

    Args:
        depths: stack depths to measure, each >= 1.
        lams: skip weights; 0 is the plain stack.
        shape: (N, C, H, W) of the input x0; keep it small, the reference conv loops.
        weight_scale: standard deviation of the block weights.
        seed: seed of the weights, of x0 and of g.

    Returns:
        a :class:`DepthExperiment`.
    """
    import time

    start = time.perf_counter()
    depths_arr = np.asarray(sorted(set(int(d) for d in depths)))
    if depths_arr[0] < 1:
        raise ValueError(f"depths must be >= 1, got {list(depths)}")
    N, C, H, W = shape
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(shape)
    g = rng.standard_normal(shape)
    g /= np.linalg.norm(g)
    blocks = init_block_stack(int(depths_arr[-1]), C, 3, weight_scale, seed + 1)
    norms: dict[float, np.ndarray] = {}
    predicted: dict[float, np.ndarray] = {}
    for lam in lams:
        _, caches = stack_forward(x0, blocks, lam)
        norms[lam] = np.array([np.linalg.norm(stack_backward(g, caches[:L])) for L in depths_arr])
        predicted[lam] = float(lam) ** depths_arr.astype(float) * np.linalg.norm(g)
    return DepthExperiment(depths_arr, tuple(lams), norms, predicted, time.perf_counter() - start)
