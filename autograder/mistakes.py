"""Known classic mistakes, each as a text patch that plants exactly that mistake in the reference.

Every :class:`Mistake` turns ``solutions/cnnlab/<module>.py`` into a copy with one conceptual error
(the "mutant"). The mutants serve twice:

* **diagnosis**: the grader and the visible checks run the mutant on the same inputs as the student;
  when the student's output equals a mutant's, the student sees that mistake's ``message``;
* **testing the tests**: ``tests/test_mutants.py`` checks that every mutant loses points on its task,
  only on its task, and is named by its diagnosis.

A mistake's ``old`` text must occur exactly once in the reference module; ``new`` replaces it.
Add a mistake by appending to :data:`MISTAKES`; the tests pick it up automatically.

Some mistakes are not patches and are diagnosed directly by ``cnnlab.checks`` (None returned, wrong
shape or dtype, NaN/inf, a modified input, an exception, a missing implementation).
"""

from __future__ import annotations

import importlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

from autograder.reference import REFERENCE_DIR, ROOT, SUBPACKAGE, load_package, load_reference


@dataclass(frozen=True)
class Mistake:
    """One classic mistake, planted in the reference by replacing ``old`` with ``new``.

    Attributes:
        id: short snake_case name, unique, e.g. ``"conv2d_flipped_kernel"``.
        task: the task ID it belongs to, e.g. ``"2.1"``.
        old: text that occurs exactly once in the task's module (:attr:`module`, from the task table).
        new: its replacement.
        message: the student-facing diagnosis: what the mistake is and how to fix it.
    """

    id: str
    task: str
    old: str
    new: str
    message: str

    @property
    def module(self) -> str:
        """The module of ``solutions/cnnlab`` it patches, e.g. ``"conv"``: the task's, from the task table."""
        return load_reference().tasks.TASKS[self.task].module


# The four lines of the reference's maxpool2d_backward that route each window's gradient.
_MAXPOOL_FIRST_MAX = (
    "            first = window.reshape(N, C, -1).argmax(axis=2)\n"
    "            p, q = np.unravel_index(first, (size, size))\n"
    "            # np.add.at would also do; each (n, c) pair appears once per window,"
    " so += is safe here\n"
    "            dx[n_idx, c_idx, i * stride + p, j * stride + q] += dout[:, :, i, j]\n"
)

# Indentation matters: ``old`` and ``new`` are matched against the reference source verbatim.
MISTAKES: list[Mistake] = [
    # ---------------------------------------------------------------- 1.1 conv_output_size
    Mistake(
        id="size_no_plus_one",
        task="1.1",
        old="    return (n + 2 * pad - f) // stride + 1\n",
        new="    return (n + 2 * pad - f) // stride\n",
        message=(
            "Your conv_output_size is one too small: it forgets the window that starts at position 0. "
            "Windows start at 0, stride, 2*stride, ... as long as the window fits, so "
            "M = (n + 2*pad - f) // stride + 1."
        ),
    ),
    Mistake(
        id="size_ceil",
        task="1.1",
        old="    return (n + 2 * pad - f) // stride + 1\n",
        new="    return -(-(n + 2 * pad - f) // stride) + 1\n",
        message=(
            "Your conv_output_size rounds up (ceil): it counts a last, partial window that does not fit "
            "in the padded input. Round down with integer division: M = (n + 2*pad - f) // stride + 1."
        ),
    ),
    Mistake(
        id="size_pad_once",
        task="1.1",
        old="    return (n + 2 * pad - f) // stride + 1\n",
        new="    return (n + pad - f) // stride + 1\n",
        message=(
            "Your conv_output_size counts the padding once: pad zeros are added at BOTH ends, so the "
            "padded length is n + 2*pad. Use M = (n + 2*pad - f) // stride + 1."
        ),
    ),
    # ---------------------------------------------------------------- 1.2 conv1d
    Mistake(
        id="conv1d_correlation",
        task="1.2",
        old="                full[t] += x[t - a] * w[a]\n",
        new="                full[t] += x[t - a] * w[F - 1 - a]\n",
        message=(
            "Your conv1d computes cross-correlation (it slides w without flipping it): that is "
            "np.correlate, not np.convolve. True convolution flips the filter: h[t] = sum_a x[t - a] w[a]."
        ),
    ),
    Mistake(
        id="conv1d_same_offset",
        task="1.2",
        old="        start = (L + F - 1 - size) // 2\n",
        new="        start = (L + F - size) // 2\n",
        message=(
            "Your conv1d 'same' output is shifted by one entry: it is centred on the full result with the "
            "wrong rounding. Like np.convolve, take size = max(L, F) entries of the full result starting "
            "at index (L + F - 1 - size) // 2 (rounding down)."
        ),
    ),
    Mistake(
        id="conv1d_valid_offset",
        task="1.2",
        old="    start = min(L, F) - 1\n",
        new="    start = 0\n",
        message=(
            "Your conv1d 'valid' output is taken from the start of the full result, where the filter "
            "still hangs over the edge. 'valid' keeps only the positions where the signals overlap "
            "completely: skip the first min(L, F) - 1 entries of the full result."
        ),
    ),
    # ---------------------------------------------------------------- 1.3 conv_matrix
    Mistake(
        id="conv_matrix_correlation",
        task="1.3",
        old="        full[j : j + F, j] = w\n",
        new="        full[j : j + F, j] = w[::-1]\n",
        message=(
            "Your conv_matrix is the matrix of cross-correlation: each column holds the filter reversed. "
            "Column j of the convolution matrix is conv1d(e_j, w), the filter put down as it is, starting "
            "at row j: T[j + a, j] = w[a]."
        ),
    ),
    Mistake(
        id="conv_matrix_transposed",
        task="1.3",
        old="    return full[start : start + size]\n    ### END SOLUTION\n\n\ndef pad2d",
        new="    return full[start : start + size].T\n    ### END SOLUTION\n\n\ndef pad2d",
        message=(
            "Your conv_matrix returns the transpose: T must have one ROW per output and one COLUMN per "
            "input entry, shape (m, n), so that T @ x is the output. (T.T is the backward pass: the "
            "transposed convolution.)"
        ),
    ),
    Mistake(
        id="conv_matrix_same_offset",
        task="1.3",
        old="        start = (n + F - 1 - size) // 2\n",
        new="        start = (n + F - size) // 2\n",
        message=(
            "Your conv_matrix in mode 'same' keeps the rows one too low: like conv1d, keep size = max(n, F) "
            "rows of the full matrix starting at row (n + F - 1 - size) // 2 (rounding down)."
        ),
    ),
    Mistake(
        id="conv_matrix_always_full",
        task="1.3",
        old="    return full[start : start + size]\n    ### END SOLUTION\n\n\ndef pad2d",
        new="    return full\n    ### END SOLUTION\n\n\ndef pad2d",
        message=(
            "Your conv_matrix has the shape of mode 'full' whatever the mode: keep only the rows of the full "
            "matrix that conv1d keeps, so that T has as many rows as conv1d(x, w, mode) has entries."
        ),
    ),
    # ---------------------------------------------------------------- 2.1 conv2d_forward
    Mistake(
        id="conv2d_flipped_kernel",
        task="2.1",
        old="np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b",
        new="np.tensordot(window, w[:, :, ::-1, ::-1], axes=([1, 2, 3], [1, 2, 3])) + b",
        message=(
            "Your conv2d_forward flips the kernel: that is true convolution. Deep-learning layers compute "
            "cross-correlation: multiply xp[n, c, i*stride + p, j*stride + q] by w[k, c, p, q] without "
            "flipping."
        ),
    ),
    Mistake(
        id="conv2d_no_bias",
        task="2.1",
        old="np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b",
        new="np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))",
        message="Your conv2d_forward forgets the bias: add b[k] to every output of filter k.",
    ),
    Mistake(
        id="conv2d_bias_wrong_axis",
        task="2.1",
        old=(
            "            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b\n"
            "    cache = (x, w, b, stride, pad)\n"
        ),
        new=(
            "            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))\n"
            "    out = out + b\n"
            "    cache = (x, w, b, stride, pad)\n"
        ),
        message=(
            "Your conv2d_forward adds the bias along the wrong axis: `out + b` on out of shape "
            "(N, K, Ho, Wo) broadcasts b along the LAST axis (the width). b[k] belongs to filter k, axis 1: "
            "use out + b[None, :, None, None] (or b.reshape(1, -1, 1, 1))."
        ),
    ),
    Mistake(
        id="conv2d_hw_swapped",
        task="2.1",
        old="window = xp[:, :, i * stride : i * stride + FH, j * stride : j * stride + FW]",
        new="window = xp[:, :, j * stride : j * stride + FH, i * stride : i * stride + FW]",
        message=(
            "Your conv2d_forward mixes up height and width: the output row i must move the window down "
            "(axis 2, H, rows i*stride ... i*stride+FH-1) and the output column j must move it right "
            "(axis 3, W). Test with non-square images and filters: H != W and FH != FW."
        ),
    ),
    Mistake(
        id="conv2d_stride_ignored",
        task="2.1",
        old="window = xp[:, :, i * stride : i * stride + FH, j * stride : j * stride + FW]",
        new="window = xp[:, :, i : i + FH, j : j + FW]",
        message=(
            "Your conv2d_forward ignores the stride when it places the windows: output (i, j) reads the "
            "window that starts at row i*stride and column j*stride of the padded input."
        ),
    ),
    Mistake(
        id="conv2d_pad_one_side",
        task="2.1",
        old="    xp = pad2d(x, pad)\n    out = np.empty(",
        new="    xp = np.pad(x, ((0, 0), (0, 0), (0, 2 * pad), (0, 2 * pad)))\n    out = np.empty(",
        message=(
            "Your conv2d_forward pads on one side only (2*pad zeros at the bottom and right). Zero padding "
            "adds pad zeros on EACH side of H and W, and never pads the batch or channel axes: use "
            "pad2d(x, pad), i.e. np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))."
        ),
    ),
    Mistake(
        id="conv2d_pad_all_axes",
        task="2.1",
        old="    xp = pad2d(x, pad)\n    out = np.empty(",
        new="    xp = np.pad(x, pad)\n    out = np.empty(",
        message=(
            "Your conv2d_forward pads all four axes: np.pad(x, pad) also adds zeros to the batch and "
            "channel axes, so the windows no longer line up with the filters. Pad only H and W: "
            "pad2d(x, pad), i.e. np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))."
        ),
    ),
    # ---------------------------------------------------------------- 2.2 conv2d_backward
    Mistake(
        id="conv2d_backward_stride_ignored",
        task="2.2",
        old=(
            "            rows = slice(i * stride, i * stride + FH)\n"
            "            cols = slice(j * stride, j * stride + FW)\n"
        ),
        new="            rows = slice(i, i + FH)\n            cols = slice(j, j + FW)\n",
        message=(
            "Your conv2d_backward ignores the stride: output (i, j) came from the window starting at row "
            "i*stride and column j*stride of the padded input, so its gradient must flow back to exactly "
            "that window (for dx and for dw)."
        ),
    ),
    Mistake(
        id="conv2d_backward_no_crop",
        task="2.2",
        old="    dx = dxp[:, :, pad : pad + H, pad : pad + W]\n",
        new="    dx = dxp\n",
        message=(
            "Your dx has the padded shape (N, C, H + 2*pad, W + 2*pad): it is the gradient of the padded "
            "input. The padding zeros are not inputs; crop them away: dx = dxp[:, :, pad:pad+H, pad:pad+W]."
        ),
    ),
    Mistake(
        id="conv2d_backward_assign_overlap",
        task="2.2",
        old="            dxp[:, :, rows, cols] += np.tensordot(g, w, axes=([1], [0]))\n",
        new="            dxp[:, :, rows, cols] = np.tensordot(g, w, axes=([1], [0]))\n",
        message=(
            "Your conv2d_backward overwrites dx where windows overlap (`=` instead of `+=`): an input "
            "pixel that lies in several windows receives a gradient from each of them, and these add up."
        ),
    ),
    Mistake(
        id="conv2d_backward_db_no_batch",
        task="2.2",
        old="    db = dout.sum(axis=(0, 2, 3))\n",
        new="    db = dout.sum(axis=(2, 3))\n",
        message=(
            "Your db is summed over the wrong axes: it keeps the batch axis. b[k] is added to every "
            "output of filter k in every image, so db[k] sums dout[:, k, :, :] over the batch AND both "
            "spatial axes: db = dout.sum(axis=(0, 2, 3)), shape (K,)."
        ),
    ),
    Mistake(
        id="conv2d_backward_dw_flipped",
        task="2.2",
        old="            dw += np.tensordot(g, xp[:, :, rows, cols], axes=([0], [0]))\n",
        new="            dw += np.tensordot(g, xp[:, :, rows, cols][:, :, ::-1, ::-1], axes=([0], [0]))\n",
        message=(
            "Your dw is flipped: the forward pass multiplies w[k, c, p, q] by the window entry at offset "
            "(p, q), so dw[k, c, p, q] collects dout times that same entry, without flipping the window."
        ),
    ),
    # ---------------------------------------------------------------- 3.1 maxpool2d_forward
    Mistake(
        id="maxpool_stride_as_size",
        task="3.1",
        old="            window = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size]\n"
        "            out[:, :, i, j] = window.max(axis=(2, 3))\n",
        new="            window = x[:, :, i * size : i * size + size, j * size : j * size + size]\n"
        "            out[:, :, i, j] = window.max(axis=(2, 3))\n",
        message=(
            "Your maxpool2d_forward steps the windows by size instead of stride: with stride < size the "
            "windows overlap, and output (i, j) is the max of the window starting at row i*stride, "
            "column j*stride."
        ),
    ),
    Mistake(
        id="maxpool_max_over_channels",
        task="3.1",
        old="            out[:, :, i, j] = window.max(axis=(2, 3))\n",
        new="            out[:, :, i, j] = window.max(axis=(1, 2, 3))[:, None]\n",
        message=(
            "Your maxpool2d_forward takes the maximum across channels too. Pooling acts on each channel "
            "separately: take the max over the two spatial axes of the window only (axis=(2, 3))."
        ),
    ),
    # ---------------------------------------------------------------- 3.2 maxpool2d_backward
    Mistake(
        id="maxpool_backward_split_ties",
        task="3.2",
        old=_MAXPOOL_FIRST_MAX,
        new=(
            "            mask = window == window.max(axis=(2, 3), keepdims=True)\n"
            "            share = dout[:, :, i, j][:, :, None, None] / mask.sum(axis=(2, 3), keepdims=True)\n"
            "            rows = slice(i * stride, i * stride + size)\n"
            "            cols = slice(j * stride, j * stride + size)\n"
            "            dx[:, :, rows, cols] += mask * share\n"
        ),
        message=(
            "Your maxpool2d_backward splits the gradient equally among tied maxima. The rule here (as in "
            "PyTorch) sends each window's whole gradient to ONE element: the first maximum in row-major "
            "order, e.g. window.reshape(N, C, -1).argmax(axis=2), then np.unravel_index."
        ),
    ),
    Mistake(
        id="maxpool_backward_all_ties",
        task="3.2",
        old=_MAXPOOL_FIRST_MAX,
        new=(
            "            mask = window == window.max(axis=(2, 3), keepdims=True)\n"
            "            share = dout[:, :, i, j][:, :, None, None]\n"
            "            rows = slice(i * stride, i * stride + size)\n"
            "            cols = slice(j * stride, j * stride + size)\n"
            "            dx[:, :, rows, cols] += mask * share\n"
        ),
        message=(
            "Your maxpool2d_backward copies the gradient to every tied maximum (a mask `window == max`), "
            "so a window with ties passes back more gradient than it received. Send each window's gradient "
            "to ONE element: the first maximum in row-major order (argmax of the flattened window)."
        ),
    ),
    Mistake(
        id="maxpool_backward_last_tie",
        task="3.2",
        old="            first = window.reshape(N, C, -1).argmax(axis=2)\n",
        new="            first = size * size - 1 - window.reshape(N, C, -1)[:, :, ::-1].argmax(axis=2)\n",
        message=(
            "Your maxpool2d_backward sends the gradient of a window with tied maxima to the LAST maximum. "
            "The rule (PyTorch's) is the FIRST maximum in row-major order: np.argmax returns exactly that."
        ),
    ),
    Mistake(
        id="maxpool_backward_assign_overlap",
        task="3.2",
        old="            dx[n_idx, c_idx, i * stride + p, j * stride + q] += dout[:, :, i, j]\n",
        new="            dx[n_idx, c_idx, i * stride + p, j * stride + q] = dout[:, :, i, j]\n",
        message=(
            "Your maxpool2d_backward overwrites dx (`=` instead of `+=`): when windows overlap "
            "(stride < size) one element can be the maximum of several windows, and it must receive the "
            "sum of their gradients."
        ),
    ),
    # ---------------------------------------------------------------- 4.1 residual_block_forward
    Mistake(
        id="residual_no_lam",
        task="4.1",
        old="    out = f + lam * x\n",
        new="    out = f + x\n",
        message=(
            "Your residual_block_forward ignores lam: the block computes H(x) = F(x) + lam * x, so the "
            "skip connection carries lam * x (lam = 0 removes it, lam = 2 doubles it)."
        ),
    ),
    Mistake(
        id="residual_relu_after_sum",
        task="4.1",
        old="    out = f + lam * x\n    return out, (lam, conv1_cache, relu_cache, conv2_cache)\n",
        new=(
            "    out = np.maximum(f + lam * x, 0)\n"
            "    return out, (lam, conv1_cache, relu_cache, conv2_cache)\n"
        ),
        message=(
            "Your residual_block_forward applies a ReLU after the sum. This block has no activation after "
            "the addition: H(x) = F(x) + lam * x with F(x) = conv(relu(conv(x))), so the skip path stays "
            "an identity (times lam)."
        ),
    ),
    Mistake(
        id="residual_no_relu",
        task="4.1",
        old="    r, relu_cache = relu_forward(a)\n",
        new="    r, relu_cache = a, (a,)\n",
        message=(
            "Your residual_block_forward leaves out the ReLU between the two convolutions: "
            "F(x) = conv(relu(conv(x, w1, b1)), w2, b2)."
        ),
    ),
    # ---------------------------------------------------------------- 4.2 residual_block_backward
    Mistake(
        id="residual_backward_skip_no_lam",
        task="4.2",
        old="    dx = dx_f + lam * dout\n",
        new="    dx = dx_f + dout\n",
        message=(
            "Your residual_block_backward forgets lam on the skip path: the forward adds lam * x, so the "
            "skip connection passes lam * dout back: dx = dx_F + lam * dout."
        ),
    ),
    Mistake(
        id="residual_backward_no_skip",
        task="4.2",
        old="    dx = dx_f + lam * dout\n",
        new="    dx = dx_f\n",
        message=(
            "Your residual_block_backward drops the skip path: dx is only the gradient through F. "
            "H(x) = F(x) + lam * x, so dx = dx_F + lam * dout."
        ),
    ),
    Mistake(
        id="residual_backward_no_relu",
        task="4.2",
        old="    da = relu_backward(dr, relu_cache)\n",
        new="    da = dr\n",
        message=(
            "Your residual_block_backward skips the ReLU's backward pass: the gradient reaching the first "
            "convolution is dr * (a > 0), zero where the ReLU was inactive (relu_backward(dr, relu_cache))."
        ),
    ),
    # ---------------------------------------------------------------- 5.1 layer_shapes
    Mistake(
        id="shapes_conv_no_bias",
        task="5.1",
        old="            out.append((shape, F * F * D * K + K))\n",
        new="            out.append((shape, F * F * D * K))\n",
        message=(
            "Your layer_shapes forgets the biases of a conv layer: each of the K filters has F*F*D weights "
            "AND one bias, so a conv layer has F*F*D*K + K parameters (5*5*3 + 1 = 76 per filter for "
            "5x5 filters on a 3-channel input)."
        ),
    ),
    Mistake(
        id="shapes_conv_no_depth",
        task="5.1",
        old="            out.append((shape, F * F * D * K + K))\n",
        new="            out.append((shape, F * F * K + K))\n",
        message=(
            "Your layer_shapes forgets the input depth D in a conv layer's parameters: a filter spans the "
            "full depth of its input, so it has F*F*D weights, and the layer F*F*D*K + K parameters. "
            "D is the depth of the layer's INPUT (the K of the conv before it), not always 1."
        ),
    ),
    Mistake(
        id="shapes_pool_params",
        task="5.1",
        old=(
            "            shape = (D, size(H, F, S, 0), size(W, F, S, 0))\n"
            "            out.append((shape, 0))\n"
        ),
        new=(
            "            shape = (D, size(H, F, S, 0), size(W, F, S, 0))\n"
            "            out.append((shape, F * F * D * D + D))\n"
        ),
        message=(
            "Your layer_shapes gives a pooling layer parameters, as if it were a convolution. Max pooling "
            "takes the maximum of each window: nothing is learned, it has 0 parameters."
        ),
    ),
    Mistake(
        id="shapes_ceil",
        task="5.1",
        old="        return (n + 2 * p - f) // s + 1\n",
        new="        return -(-(n + 2 * p - f) // s) + 1\n",
        message=(
            "Your layer_shapes rounds the output size up (ceil): when the stride does not divide "
            "N - F + 2P the last partial window is dropped, so M = floor((N - F + 2P) / S) + 1, "
            "(N - F + 2P) // S + 1 in Python (as conv_output_size, Task 1.1)."
        ),
    ),
    Mistake(
        id="shapes_pad_once",
        task="5.1",
        old="        return (n + 2 * p - f) // s + 1\n",
        new="        return (n + p - f) // s + 1\n",
        message=(
            "Your layer_shapes adds the padding once: P zeros go on EACH side, so the padded input has "
            "N + 2P entries along an axis and M = (N - F + 2P) // S + 1."
        ),
    ),
    Mistake(
        id="shapes_fc_no_bias",
        task="5.1",
        old="            out.append(((M,), n_in * M + M))\n",
        new="            out.append(((M,), n_in * M))\n",
        message=(
            "Your layer_shapes forgets the biases of a fully connected layer: it has a weight for every "
            "(input, output) pair and one bias per output, (D*H*W)*M + M parameters."
        ),
    ),
    Mistake(
        id="shapes_fc_depth_only",
        task="5.1",
        old="            n_in = int(np.prod(shape))\n",
        new="            n_in = shape[0]\n",
        message=(
            "Your layer_shapes counts only the depth D as the inputs of a fully connected layer. It "
            "flattens its input: a (D, H, W) input gives D*H*W inputs, so (D*H*W)*M + M parameters. "
            "This is where pooling pays: every 2x2 pool before it divides H*W by 4."
        ),
    ),
    # ---------------------------------------------------------------- 5.2 receptive_field
    Mistake(
        id="rf_add_f",
        task="5.2",
        old="        r = r + (f - 1) * jump\n",
        new="        r = r + f\n",
        message=(
            "Your receptive_field adds F for each layer. A window of F units adds only F - 1 new units "
            "to the region (the first one is already there), and those units are `jump` input pixels "
            "apart: r <- r + (F - 1) * jump. Three 3x3 convolutions see 7x7, not 10x10."
        ),
    ),
    Mistake(
        id="rf_no_jump",
        task="5.2",
        old="        r = r + (f - 1) * jump\n",
        new="        r = r + (f - 1)\n",
        message=(
            "Your receptive_field ignores the strides of the earlier layers: after a stride-2 layer, "
            "neighbouring units are 2 input pixels apart, so a window of F of them spans (F - 1) * jump "
            "more pixels: r <- r + (F - 1) * jump, then jump <- jump * S."
        ),
    ),
    Mistake(
        id="rf_size_times_stride",
        task="5.2",
        old="        r = r + (f - 1) * jump\n",
        new="        r = (r - 1) * s + f\n",
        message=(
            "Your receptive_field multiplies the size by the stride, r <- (r - 1) * S + F. That formula "
            "goes the other way, from a layer down to its input, and holds only when you walk the "
            "layers from the LAST to the first. Walking from the input up, keep the jump: "
            "r <- r + (F - 1) * jump, then jump <- jump * S."
        ),
    ),
    Mistake(
        id="rf_pool_ignored",
        task="5.2",
        old='        if kind == "relu":\n            continue\n        f, s = (numbers[1], numbers[2])',
        new='        if kind != "conv":\n            continue\n        f, s = (numbers[1], numbers[2])',
        message=(
            "Your receptive_field skips the pooling layers. A pool layer has no weights, but its F x F "
            "window and its stride S grow the region exactly like a convolution's: r <- r + (F - 1) * jump, "
            "jump <- jump * S. Only ReLU leaves both unchanged."
        ),
    ),
    Mistake(
        id="rf_jump_last_stride",
        task="5.2",
        old="        jump = jump * s\n",
        new="        jump = s\n",
        message=(
            "Your receptive_field sets the jump to the last layer's stride. Strides compound: after two "
            "stride-2 layers neighbouring units are 4 input pixels apart, so jump <- jump * S."
        ),
    ),
]

BY_ID: dict[str, Mistake] = {m.id: m for m in MISTAKES}


def for_task(task_id: str) -> list[Mistake]:
    """The known mistakes of one task, in the order of :data:`MISTAKES`."""
    return [m for m in MISTAKES if m.task == task_id]


def apply(mistake: Mistake, ref_source_dir: Path = REFERENCE_DIR) -> str:
    """The source of ``<ref_source_dir>/<module>.py`` with ``mistake`` planted.

    Raises ``ValueError`` unless ``mistake.old`` occurs exactly once (a stale patch must fail
    loudly, not silently produce the reference).
    """
    source = (Path(ref_source_dir) / f"{mistake.module}.py").read_text()
    count = source.count(mistake.old)
    if count != 1:
        raise ValueError(
            f"mistake {mistake.id!r}: its `old` text occurs {count} times in {mistake.module}.py (needs 1)"
        )
    return source.replace(mistake.old, mistake.new)


_MUTANT_DIR: tempfile.TemporaryDirectory[str] | None = None
RELEASED_CASES = ROOT / "cnnlab" / SUBPACKAGE / "check_cases.json"


def mutant_name(mistake: Mistake) -> str:
    """The module name a mutant package is imported under, e.g. ``cnnlab_mutant_conv2d_no_bias``."""
    return f"cnnlab_mutant_{mistake.id}"


def load_mutant(mistake: Mistake) -> ModuleType:
    """The reference package with ``mistake`` planted, imported as :func:`mutant_name` (cached); its
    submodules other than the patched one are imported on first use.

    The package is a copy of the reference in use (``solutions/cnnlab``, or on a cluster worker the
    one its job brought) in a temporary folder that lives as long as the process;
    ``cnnlab/_internal/check_cases.json`` is copied next to its ``checks.py`` when it has been built.
    """
    global _MUTANT_DIR
    import sys

    from autograder import reference

    # the reference in use: solutions/cnnlab here, the one a job brought on a cluster worker
    source = Path(load_reference().__file__).resolve().parent
    name = f"{mutant_name(mistake)}_{reference.digest()[:12]}"
    if name in sys.modules:
        return sys.modules[name]
    if _MUTANT_DIR is None:
        _MUTANT_DIR = tempfile.TemporaryDirectory(prefix="cnnlab_mutants_")
    folder = Path(_MUTANT_DIR.name) / f"{mistake.id}-{reference.digest()[:12]}"
    if folder.exists():
        shutil.rmtree(folder)
    shutil.copytree(source, folder, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    (folder / f"{mistake.module}.py").write_text(apply(mistake, source))
    cases = folder / RELEASED_CASES.relative_to(ROOT / "cnnlab")
    if RELEASED_CASES.exists() and not cases.exists():
        shutil.copyfile(RELEASED_CASES, cases)
    # the package's __init__ imports nothing (its modules load on first use): only the patched
    # module, loaded here, and what a check calls are paid for, per mutant and per worker
    package = load_package(folder, name)
    importlib.import_module(f"{name}.{mistake.module}")
    return package
