"""What a machine of a Dask cluster runs of the grader (:mod:`autograder.batch.dask_engine` sends it).

Kept out of :mod:`autograder.batch`, whose import needs the reference, and light to import: the
scheduler unpickles the task graph too, so it needs this module (the installed package), but
nothing of the course.

* :func:`grade`: one job on a worker: the reference and the release it brings, then the judge.
* :func:`code_hash`: the grader's own code, as installed here (a checkout or a wheel: same hash).
* :func:`capabilities`: what this machine offers the grader, for the client's check before it
  submits anything.
"""

from __future__ import annotations

import functools
import hashlib
import pickle
from importlib import metadata
from pathlib import Path
from typing import Any

PACKAGE = Path(__file__).resolve().parent  # the installed autograder package


def _package_dirs(folder: Path) -> list[Path]:
    """``folder`` and its subpackages (folders with ``__init__.py``; the course root is none)."""
    found = [folder]
    for sub in sorted(p for p in folder.iterdir() if p.is_dir() and (p / "__init__.py").is_file()):
        found += _package_dirs(sub)
    return found


@functools.lru_cache(maxsize=1)
def code_hash() -> str:
    """A hash of every module of the installed ``autograder`` package (names and contents)."""
    h = hashlib.sha256(b"cnnlab-grader\0")
    for folder in _package_dirs(PACKAGE):
        for path in sorted(folder.glob("*.py")):
            h.update(path.relative_to(PACKAGE).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def version() -> str:
    """The installed distribution's version (``cnnlab``), or ``"not installed"``."""
    try:
        return metadata.version("cnnlab")
    except metadata.PackageNotFoundError:
        return "not installed"


def capabilities(sandbox: bool = True) -> dict[str, Any]:
    """This machine's grader: its version and code hash and, for a worker (``sandbox``), the
    sandbox it can give student code."""
    info: dict[str, Any] = {"version": version(), "code": code_hash()}
    if sandbox:
        try:
            from autograder.sandbox import sandbox_mode

            mode = sandbox_mode()
            info.update(confined=mode.confined, sandbox=mode.description)
        except Exception as exc:  # reported to the client, which stops the run
            info.update(confined=False, sandbox=f"the sandbox cannot start ({type(exc).__name__}: {exc})")
    return info


def grade(
    job: bytes, release: tuple[tuple[str, bytes], ...], reference: tuple[tuple[str, bytes], ...]
) -> dict[str, Any]:
    """On a worker: one pickled :class:`~autograder.batch.judge.Job`, graded with the release and
    the reference the client sent (each scattered once to every worker)."""
    from autograder import reference as ref

    ref.use(ref.ReferenceFiles(tuple(reference)))
    from autograder.batch.judge import Release, grade_job  # the judge imports the reference

    one = pickle.loads(job)
    one.release = Release(tuple(release), one.release.digest)
    return grade_job(one)
