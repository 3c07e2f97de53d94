"""cnnlab: convolutional neural networks from scratch in numpy.

Modules, one idea each: :mod:`.conv` (convolution and the conv layer), :mod:`.pool` (pooling),
:mod:`.residual` (ReLU and residual blocks), :mod:`.network` (shapes, parameter counts and
receptive fields of layer stacks), :mod:`.equivariance` (shifts), :mod:`.gradcheck` (numerical
gradients), :mod:`.fast` (im2col convolution, provided), :mod:`.data`, :mod:`.model`, :mod:`.plots`
and :mod:`.plots_matrix` (data, small CNNs and the figures of the notebooks).

The course's machinery lives out of the student's way in the private subpackage ``_internal``; two
of its modules are public under their old names, as ``os.path`` is: :mod:`cnnlab.checks` (the
visible checks the notebooks run: ``from cnnlab.checks import check_task``) and :mod:`cnnlab.tasks`
(the exercise table).
"""

import importlib
import sys
from types import ModuleType

from . import conv, data, equivariance, fast, gradcheck, model, network, pool, residual
from ._internal import checks, tasks

# ``import cnnlab.checks`` and ``from cnnlab.checks import ...`` find these (under any package name:
# the grader imports the reference under another one)
sys.modules[f"{__name__}.checks"] = checks
sys.modules[f"{__name__}.tasks"] = tasks


def __getattr__(name: str) -> ModuleType:
    """``cnnlab.plots`` loads on first use: it imports matplotlib (a second or two), which nothing
    else needs (the grader's sandbox never does)."""
    if name in ("plots", "plots_matrix"):
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
    "plots_matrix",
    "pool",
    "residual",
    "tasks",
]
