"""cnnlab: convolutional neural networks from scratch in numpy.

Modules, one idea each: :mod:`.conv` (convolution and the conv layer), :mod:`.pool` (pooling),
:mod:`.residual` (ReLU and residual blocks), :mod:`.equivariance` (shifts), :mod:`.gradcheck`
(numerical gradients), :mod:`.fast` (im2col convolution), :mod:`.tasks` (the exercise table).
"""

from . import conv, equivariance, gradcheck, pool, residual, tasks

__all__ = ["conv", "equivariance", "gradcheck", "pool", "residual", "tasks"]
