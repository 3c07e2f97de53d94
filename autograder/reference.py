"""The reference ``cnnlab``, imported under a module name of its own (never ``cnnlab``).

``import cnnlab`` always means the student package. The reference is never installed, never packaged
and never copied next to student code. Where it comes from:

* on the instructor's machine (the tests, nbgrader's grading kernel, the batch grader's client):
  ``solutions/cnnlab`` of the course checkout the ``autograder`` package is installed from
  (``pip install -e .``), or the folder ``$CNNLAB_REFERENCE``; imported as ``cnnlab_reference``.
* on a worker of a Dask cluster (installed from a wheel: no ``solutions/`` there): from the job. The
  client sends the reference's files with the jobs (:class:`ReferenceFiles`, scattered once per
  worker, like the release), and :func:`use` makes them this process's reference, imported from a
  private folder under a private name, ``cnnlab_reference_<digest>``.

The package uses only relative imports, so it works under any name.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib
import importlib.util
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent  # the checkout, when installed from one
REFERENCE_ENV = "CNNLAB_REFERENCE"
REFERENCE_DIR = Path(os.environ.get(REFERENCE_ENV) or ROOT / "solutions" / "cnnlab")
REFERENCE_NAME = "cnnlab_reference"
PACKAGE_SUFFIXES = (".py", ".json", ".txt")  # the package's modules and the data files it reads
SUBPACKAGE = "_internal"  # the package's one subfolder (its machinery: task table, checks, verdicts)

_ACTIVE: dict[str, Any] = {}  # "module" and "digest" of the reference :func:`use` made this process's


class ReferenceMissing(ImportError):
    """No reference on this machine, and none was sent with the job."""


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


def _missing() -> ReferenceMissing:
    return ReferenceMissing(
        f"the reference solutions are not on this machine ({REFERENCE_DIR} has no __init__.py): "
        f"install the grader from the course checkout (pip install -e .) or set {REFERENCE_ENV} to the "
        "folder of the reference cnnlab package; a Dask worker gets it with its jobs"
    )


def load_reference() -> ModuleType:
    """The reference package: the one :func:`use` installed in this process (a cluster worker),
    else ``solutions/cnnlab`` (or ``$CNNLAB_REFERENCE``) imported as ``cnnlab_reference``."""
    if "module" in _ACTIVE:
        return _ACTIVE["module"]
    if REFERENCE_NAME not in sys.modules and not (REFERENCE_DIR / "__init__.py").is_file():
        raise _missing()
    return load_package(REFERENCE_DIR, REFERENCE_NAME)


@dataclass(frozen=True)
class ReferenceFiles:
    """The reference package as bytes: what a cluster worker needs of it (it travels with the jobs)."""

    files: tuple[tuple[str, bytes], ...]  # (path in the package, "/"-separated; content), sorted

    @classmethod
    def read(cls, folder: Path = REFERENCE_DIR) -> ReferenceFiles:
        """The package in ``folder`` (default: this machine's reference): its files and its
        subpackage's."""
        folder = Path(folder)
        if not (folder / "__init__.py").is_file():
            raise _missing()
        paths = [p for d in (folder, folder / SUBPACKAGE) if d.is_dir() for p in d.iterdir()]
        found = sorted(
            p.relative_to(folder).as_posix() for p in paths if p.is_file() and p.suffix in PACKAGE_SUFFIXES
        )
        return cls(tuple((rel, (folder / rel).read_bytes()) for rel in found))

    @property
    def digest(self) -> str:
        """A hash of the file names and contents (what :func:`digest` reports once it is in use)."""
        return _files_digest(self.files)


def _files_digest(files: tuple[tuple[str, bytes], ...]) -> str:
    h = hashlib.sha256(b"cnnlab-reference\0")
    for name, data in sorted(files):
        h.update(name.encode() + b"\0" + hashlib.sha256(data).digest())
    return h.hexdigest()


@functools.lru_cache(maxsize=8)
def _folder_digest(folder: Path) -> str:
    return ReferenceFiles.read(folder).digest


def digest() -> str:
    """The hash of this process's reference (part of the grader's hash: results judged by another
    reference are stale, and a worker's reference is checked against the client's)."""
    if "digest" in _ACTIVE:
        return _ACTIVE["digest"]
    return _folder_digest(REFERENCE_DIR)


def _private_folder(files: ReferenceFiles, digest_: str) -> Path:
    """The files in a new folder only this user can read (removed when the process exits): student
    code, which runs as another user or in its own mount namespace, never sees it."""
    base = Path(tempfile.mkdtemp(prefix=f"cnnlab-reference-{digest_[:12]}-"))
    atexit.register(shutil.rmtree, base, True)
    folder = base / REFERENCE_NAME
    folder.mkdir(mode=0o700)
    for name, data in files.files:
        if not _package_path(name):
            raise ValueError(f"not a file of the reference package: {name!r}")
        (folder / name).parent.mkdir(mode=0o700, exist_ok=True)
        (folder / name).write_bytes(data)
    return folder


def _package_path(name: str) -> bool:
    """Whether ``name`` can be a file of the package: ``conv.py`` or ``_internal/tasks.py``, nothing
    hidden, nothing outside."""
    parts = name.split("/")
    return (
        name.endswith(PACKAGE_SUFFIXES)
        and (len(parts) == 1 or (len(parts) == 2 and parts[0] == SUBPACKAGE))
        and not parts[-1].startswith(".")
    )


def use(files: ReferenceFiles) -> ModuleType:
    """Make ``files`` this process's reference (for :func:`load_reference`) and return it.

    Imported once per content, as ``cnnlab_reference_<digest>`` from a private folder; a job that
    brings the reference already in use costs nothing."""
    digest_ = files.digest
    if _ACTIVE.get("digest") == digest_:
        return _ACTIVE["module"]
    name = f"{REFERENCE_NAME}_{digest_[:16]}"
    module = sys.modules.get(name) or load_package(_private_folder(files, digest_), name)
    _ACTIVE.update(module=module, digest=digest_)
    return module


class Reference:
    """The reference, created once (:func:`reference`): its package, its task table, its verdicts
    module, and a task's module or function in any package laid out like ``cnnlab``."""

    def __init__(self, package: ModuleType) -> None:
        self.package = package
        self.tasks: dict[str, Any] = package.tasks.TASKS
        #: ``cnnlab/_internal/verdicts.py``: outcomes, comparison, diagnosis, the cases' JSON
        self.verdicts: ModuleType = importlib.import_module(f"{package.__name__}.{SUBPACKAGE}.verdicts")

    def task(self, task_id: str) -> Any:
        """The row of the task table of ``task_id``."""
        return self.tasks[task_id]

    def module(self, task_id: str, package: ModuleType | None = None) -> ModuleType:
        """``package.<module>`` of a task (default: the reference's), e.g. ``cnnlab.conv``."""
        package = self.package if package is None else package
        return importlib.import_module(f"{package.__name__}.{self.task(task_id).module}")

    def function(self, task_id: str, package: ModuleType | None = None) -> Callable[..., Any]:
        """``package.<module>.<function>`` of a task (default: the reference's)."""
        return getattr(self.module(task_id, package), self.task(task_id).function)


_REFERENCES: dict[str, Reference] = {}


def reference() -> Reference:
    """The one :class:`Reference` of the reference in use (:func:`load_reference`; on a cluster
    worker, the one the latest job brought: :func:`use`)."""
    package = load_reference()
    if package.__name__ not in _REFERENCES:
        _REFERENCES[package.__name__] = Reference(package)
    return _REFERENCES[package.__name__]
