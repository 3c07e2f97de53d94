"""Stacks of layers on paper: output shapes, parameter counts and receptive fields (Tasks 5.1, 5.2).

A network is a list of layer specs, tuples read left to right, for ONE image, channels first:

* ``("conv", K, F, S, P)``: K filters of size F x F x D (D = the depth of its input), stride S,
  zero padding P on each side;
* ``("pool", F, S)``: max pooling over F x F windows with stride S (no padding, no parameters);
* ``("relu",)``: elementwise, changes nothing in the shape;
* ``("fc", M)``: fully connected to M outputs; it flattens its input first.

The input is ``(D, H, W)``. Along one spatial axis of length N a conv layer gives
``M = floor((N - F + 2P) / S) + 1`` outputs (as ``conv.conv_output_size``), a pool layer
``floor((N - F) / S) + 1``; a window that does not fit is an error, a last partial window is dropped.

This file is self-contained: it imports nothing from ``conv.py``, ``pool.py`` or ``residual.py``,
so its tasks do not depend on your earlier ones.
"""

from __future__ import annotations

import numpy as np

LayerSpec = tuple
Shape = tuple[int, ...]

#: The kinds of layer, and the names of the numbers that follow the kind in a spec.
KINDS: dict[str, tuple[str, ...]] = {
    "conv": ("K", "F", "S", "P"),
    "pool": ("F", "S"),
    "relu": (),
    "fc": ("M",),
}
_MINIMUM = {"K": 1, "F": 1, "S": 1, "P": 0, "M": 1}


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_layer(index: int, layer: object) -> tuple[str, tuple[int, ...]]:
    """Validate the spec ``layers[index]``; return ``(kind, numbers)``, e.g. ``("conv", (6, 5, 1, 0))``.

    Raises ``ValueError`` naming ``layers[index]`` and the rule: a tuple whose first entry is one of
    :data:`KINDS`, followed by exactly the numbers of that kind, each an int with K, F, S, M >= 1
    and P >= 0.
    """
    where = f"layers[{index}]"
    if not isinstance(layer, tuple | list) or not layer:
        raise ValueError(f"{where} must be a tuple such as ('conv', K, F, S, P), got {layer!r}")
    kind, *numbers = layer
    if kind not in KINDS:
        raise ValueError(f"{where} has unknown kind {kind!r}; kinds are {', '.join(map(repr, KINDS))}")
    names = KINDS[kind]
    if len(numbers) != len(names):
        spec = ", ".join((repr(kind), *names))
        raise ValueError(f"{where} = {tuple(layer)!r}: a {kind} layer is ({spec}), {len(names)} numbers")
    for name, value in zip(names, numbers, strict=True):
        if not _is_int(value):
            raise ValueError(f"{where} ({kind}): {name} must be an integer, got {value!r}")
        if value < _MINIMUM[name]:
            raise ValueError(f"{where} ({kind}): {name} must be >= {_MINIMUM[name]}, got {name}={value}")
    return kind, tuple(int(v) for v in numbers)


def check_input_shape(input_shape: object) -> tuple[int, int, int]:
    """``input_shape`` as ``(D, H, W)`` of ints >= 1, or ``ValueError`` naming ``input_shape``."""
    if (
        not isinstance(input_shape, tuple | list)
        or len(input_shape) != 3
        or not all(_is_int(v) and v >= 1 for v in input_shape)
    ):
        raise ValueError(f"input_shape must be (D, H, W), three integers >= 1, got {input_shape!r}")
    D, H, W = (int(v) for v in input_shape)
    return D, H, W


def check_layers(layers: object) -> list[tuple[str, tuple[int, ...]]]:
    """Every spec of ``layers`` checked with :func:`check_layer`; ``layers`` must be a list or tuple."""
    if not isinstance(layers, list | tuple):
        raise ValueError(f"layers must be a list of layer specs, got {type(layers).__name__}")
    return [check_layer(i, layer) for i, layer in enumerate(layers)]


def layer_shapes(input_shape: tuple[int, int, int], layers: list[LayerSpec]) -> list[tuple[Shape, int]]:
    """The output shape and the number of parameters of every layer of a stack.

    Per layer, for an input of shape (D, H, W):

    * ``("conv", K, F, S, P)``: output ``(K, M_h, M_w)`` with ``M = (N - F + 2P) // S + 1``;
      ``F*F*D*K + K`` parameters (K filters of F*F*D weights, and K biases);
    * ``("pool", F, S)``: output ``(D, M_h, M_w)`` with ``M = (N - F) // S + 1``; 0 parameters;
    * ``("relu",)``: output ``(D, H, W)``; 0 parameters;
    * ``("fc", M)``: output ``(M,)``; ``(D*H*W)*M + M`` parameters (a weight per input and output,
      and M biases);

    where N is H for M_h and W for M_w. An ``fc`` layer flattens whatever it gets, so it may follow
    another ``fc`` (input ``(M,)``, D*H*W read as M); a conv or pool layer needs a (D, H, W) input.

    Args:
        input_shape: ``(D, H, W)`` of one image, ints >= 1.
        layers: layer specs (see the module docstring), checked with :func:`check_layer`.

    Returns:
        one pair ``(output_shape, num_params)`` per layer, in order: ``output_shape`` a tuple of ints,
        ``num_params`` an int. An empty stack gives ``[]``.

    Raises:
        ValueError: naming ``layers[i]`` and the rule, when a spec is malformed (unknown kind, wrong
            count or bad values), when a conv filter is larger than its padded input
            (F > N + 2P), a pooling window larger than its input (F > N), or a conv or pool layer
            comes after an ``fc`` layer (its input is no longer an image).

    Example: ``layer_shapes((1, 32, 32), [("conv", 6, 5, 1, 0), ("pool", 2, 2)])`` is
    ``[((6, 28, 28), 156), ((6, 14, 14), 0)]``.
    """
    shape: Shape = check_input_shape(input_shape)  # the current (D, H, W)
    checked = check_layers(layers)  # one (kind, numbers) per layer, e.g. ("pool", (2, 2))
    ### BEGIN SOLUTION

    def size(n: int, f: int, s: int, p: int) -> int:
        return (n + 2 * p - f) // s + 1

    out: list[tuple[Shape, int]] = []
    for i, (kind, numbers) in enumerate(checked):
        if kind == "fc":
            (M,) = numbers
            n_in = int(np.prod(shape))
            out.append(((M,), n_in * M + M))
            shape = (M,)
            continue
        if kind == "relu":
            out.append((shape, 0))
            continue
        if len(shape) != 3:  # an fc layer came before
            raise ValueError(f"layers[{i}] ({kind}) needs an image (D, H, W) as input, got {shape}")
        D, H, W = shape
        if kind == "conv":
            K, F, S, P = numbers
            if F > H + 2 * P or F > W + 2 * P:
                raise ValueError(
                    f"layers[{i}] (conv): filter size F={F} is larger than the padded input "
                    f"H + 2P = {H + 2 * P}, W + 2P = {W + 2 * P}"
                )
            shape = (K, size(H, F, S, P), size(W, F, S, P))
            out.append((shape, F * F * D * K + K))
        else:
            F, S = numbers
            if F > H or F > W:
                raise ValueError(f"layers[{i}] (pool): window F={F} is larger than the input H={H}, W={W}")
            shape = (D, size(H, F, S, 0), size(W, F, S, 0))
            out.append((shape, 0))
    return out
    ### END SOLUTION


def receptive_field(layers: list[LayerSpec]) -> tuple[int, int]:
    """The receptive field of one unit of the last layer of a conv / pool / relu stack, and its jump.

    Going up the stack, track two numbers: ``r``, the side (in input pixels) of the input region one
    unit sees, and ``j`` (the "jump"), the distance in input pixels between two neighbouring units.
    The input itself has ``r = 1, j = 1``. A conv or pool layer with window F and stride S looks at
    F neighbouring units of its input, which are j pixels apart, so

        r <- r + (F - 1) * j          j <- j * S

    and ReLU changes neither. Padding changes neither (it moves where windows start, not their size);
    the region may reach past the border of a finite input (into the padding).

    Args:
        layers: specs of ``conv``, ``pool`` and ``relu`` layers, checked with :func:`check_layer`.

    Returns:
        ``(r, j)`` as ints; ``(1, 1)`` for an empty stack or ReLUs only.

    Raises:
        ValueError: naming ``layers[i]`` and the rule, for a malformed spec or an ``fc`` layer
            (each of its units sees the whole input: there is no local receptive field).

    Example: three 3x3 convolutions with stride 1 give ``(7, 1)``: they see as far as one 7x7 filter.
    """
    checked = check_layers(layers)  # one (kind, numbers) per layer, e.g. ("pool", (2, 2))
    ### BEGIN SOLUTION
    r, jump = 1, 1
    for i, (kind, numbers) in enumerate(checked):
        if kind == "fc":
            raise ValueError(
                f"layers[{i}] is fc: each of its units sees the whole input, so it has no receptive field"
            )
        if kind == "relu":
            continue
        f, s = (numbers[1], numbers[2]) if kind == "conv" else numbers
        r = r + (f - 1) * jump
        jump = jump * s
    return r, jump
    ### END SOLUTION


__all__ = ["KINDS", "check_input_shape", "check_layer", "check_layers", "layer_shapes", "receptive_field"]
