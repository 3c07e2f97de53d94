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
import importlib.machinery
import sys
from types import ModuleType
from typing import Any

#: the modules of the package, each loaded on first use (``cnnlab.conv``, ``from cnnlab import plots``):
#: ``import cnnlab`` costs almost nothing, and the grader's sandbox pays only for what a task uses
SUBMODULES = ("conv", "data", "equivariance", "fast", "gradcheck", "model", "network", "pool", "residual")
LAZY_FIGURES = ("plots", "plots_matrix")  # matplotlib: a second or two, which nothing else needs
PUBLIC_INTERNALS = ("checks", "tasks")  # modules of ``_internal`` public under these names


class _PublicName:
    """Finds ``<package>.checks`` and ``<package>.tasks`` (so ``from cnnlab.checks import check_task``
    works) and hands out the one module of ``_internal``, loaded on first use: never a second copy.
    A meta path finder and its loader by their methods (``importlib.abc``, their base classes, would
    import ``importlib.resources`` and ``tempfile``: five times what the rest of the package costs)."""

    def __init__(self, package: str) -> None:
        self.package = package
        self.specs: dict[str, Any] = {}  # alias -> the module's own spec (set back after the import)

    def find_spec(self, fullname: str, path: Any = None, target: Any = None) -> Any:
        head, _, tail = fullname.rpartition(".")
        if head != self.package or tail not in PUBLIC_INTERNALS:
            return None
        return importlib.machinery.ModuleSpec(fullname, self)

    def create_module(self, spec: Any) -> ModuleType:
        module = importlib.import_module(f"{self.package}._internal.{spec.name.rpartition('.')[2]}")
        self.specs[spec.name] = module.__spec__  # the import system sets the alias's: put back below
        return module

    def exec_module(self, module: ModuleType) -> None:
        # already executed under its own name: nothing to run, only its own spec to restore
        module.__spec__ = self.specs.pop(module.__spec__.name, module.__spec__)


if not any(isinstance(f, _PublicName) and f.package == __name__ for f in sys.meta_path):
    sys.meta_path.append(_PublicName(__name__))  # under any package name (the grader's reference too)


def __getattr__(name: str) -> ModuleType:
    """A module of the package, imported on first use (PEP 562)."""
    if name in SUBMODULES or name in LAZY_FIGURES or name in PUBLIC_INTERNALS:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


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
