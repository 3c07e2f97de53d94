"""cnnlab: convolutional neural networks from scratch in numpy.

Modules, one idea each: :mod:`.conv` (convolution and the conv layer), :mod:`.pool` (pooling),
:mod:`.residual` (ReLU and residual blocks), :mod:`.network` (shapes, parameter counts and
receptive fields of layer stacks), :mod:`.equivariance` (shifts), :mod:`.gradcheck` (numerical
gradients), :mod:`.fast` (im2col convolution, provided), :mod:`.checks` (the visible checks the
notebooks run), :mod:`.data`, :mod:`.model` and :mod:`.plots` (data, small CNNs and the figures of
the notebooks), :mod:`.tasks` (the exercise table).
"""

from . import checks, conv, data, equivariance, fast, gradcheck, model, network, plots, pool, residual, tasks

__all__ = [
    "checks",
    "conv",
    "data",
    "equivariance",
    "fast",
    "gradcheck",
    "model",
    "network",
    "plots",
    "pool",
    "residual",
    "tasks",
]
