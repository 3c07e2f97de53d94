"""Load the reference ``cnnlab`` from ``solutions/`` under a module name of its own.

``import cnnlab`` always means the student package. The reference is never installed and never
copied next to student code: tests and the grader load it from here as ``cnnlab_reference``
(the package uses only relative imports, so it works under any name).
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
