"""Load the reference ``cnnlab`` from ``solutions/`` under a module name of its own.

``import cnnlab`` always means the student package. The reference is never installed and never
copied next to student code: tests and the grader load it from here as ``cnnlab_reference``
(the package uses only relative imports, so it works under any name).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = ROOT / "solutions" / "cnnlab"
REFERENCE_NAME = "cnnlab_reference"


def load_package(path: Path, name: str) -> ModuleType:
    """Import the package in folder ``path`` as ``name`` (cached in ``sys.modules``)."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(
        name, Path(path) / "__init__.py", submodule_search_locations=[str(path)]
    )
    if spec is None or spec.loader is None:
        raise ImportError(f"no package at {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def load_reference() -> ModuleType:
    """The reference package (``solutions/cnnlab``), imported as ``cnnlab_reference``."""
    return load_package(REFERENCE_DIR, REFERENCE_NAME)


class Reference:
    """The reference, created once (:func:`reference`): its package, its task table, its judging
    core, and a task's module or function in any package laid out like ``cnnlab``."""

    def __init__(self, package: ModuleType) -> None:
        self.package = package
        self.tasks: dict[str, Any] = package.tasks.TASKS
        #: the judging core, ``cnnlab/judge.py``: outcomes, comparison, diagnosis, the cases' JSON
        self.judge: ModuleType = importlib.import_module(f"{package.__name__}.judge")

    def task(self, task_id: str) -> Any:
        """The row of the task table, e.g. for ``"2.1"``."""
        return self.tasks[task_id]

    def module(self, task_id: str, package: ModuleType | None = None) -> ModuleType:
        """``package.<module>`` of a task (default: the reference's), e.g. ``cnnlab.conv``."""
        package = self.package if package is None else package
        return importlib.import_module(f"{package.__name__}.{self.task(task_id).module}")

    def function(self, task_id: str, package: ModuleType | None = None) -> Callable[..., Any]:
        """``package.<module>.<function>`` of a task (default: the reference's)."""
        return getattr(self.module(task_id, package), self.task(task_id).function)


@functools.cache
def reference() -> Reference:
    """The one :class:`Reference` (of :func:`load_reference`)."""
    return Reference(load_reference())
