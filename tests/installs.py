"""Installs of the distribution as a cluster machine gets it, for the packaging and cluster tests.

:func:`build_wheel` builds the wheel from a copy of the checkout (nothing is written into the
repository); :func:`machine_venv` makes a virtual environment that has the distribution installed
from that wheel and *no* checkout anywhere on its path: its other packages (numpy, dask, ...) are
this test venv's, reached through a path file, whose own path files (the editable install's finder)
are not processed there.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PIP = [sys.executable, "-m", "pip"]
_NOT_SOURCE = {".git", ".venv", "node_modules", "_build", "build", ".pytest_cache", ".hypothesis",
               ".ruff_cache", "__pycache__", ".ipynb_checkpoints"}  # fmt: skip


def _ignore(folder: str, names: list[str]) -> set[str]:
    skip = {n for n in names if n in _NOT_SOURCE or n.endswith(".egg-info")}
    if Path(folder).resolve() == ROOT / "autograder":
        skip.add("course")  # the course root: submissions and gradebooks, never packaged
    return skip


def _setuptools_major() -> int:
    try:
        return int(metadata.version("setuptools").split(".")[0])
    except (metadata.PackageNotFoundError, ValueError):
        return 0


def build_wheel(dest: Path) -> Path:
    """``pip wheel --no-deps`` of a copy of the checkout into ``dest``; returns the wheel's path."""
    source = dest / "source"
    shutil.copytree(ROOT, source, ignore=_ignore, symlinks=True)
    # a course root as on an instructor's machine (submissions, a gradebook, a released package):
    # the wheel must leave it out
    course = source / "autograder" / "course"
    (course / "source" / "02_conv_layer" / "cnnlab").mkdir(parents=True)
    (course / "source" / "02_conv_layer" / "cnnlab" / "__init__.py").write_text("")
    (course / "gradebook.db").write_text("a gradebook")
    # offline and fast when this venv's setuptools can build it (pyproject: setuptools>=77)
    isolation = ["--no-build-isolation"] if _setuptools_major() >= 77 else []
    run = subprocess.run(
        [*PIP, "wheel", "--no-deps", *isolation, "-q", "-w", str(dest), str(source)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if run.returncode != 0:
        raise RuntimeError(f"pip wheel failed:\n{run.stdout[-2000:]}\n{run.stderr[-2000:]}")
    shutil.rmtree(source, ignore_errors=True)
    (wheel,) = dest.glob("cnnlab-*.whl")
    return wheel


def clean_env(**extra: str) -> dict[str, str]:
    """A machine's environment: no PYTHONPATH, nothing of this test run but PATH, HOME and the locale."""
    keep = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR")
    return {**{k: os.environ[k] for k in keep if k in os.environ}, **extra}


#: the extras a cluster machine installs (docs/big-classes.md)
MACHINE_EXTRAS = ("grader", "dask")
#: what the sandboxed child imports: copied into the machine's venv, because the sandbox gives the
#: child only the site-packages of its own Python installation (not folders a path file adds)
CHILD_DISTRIBUTIONS = ("numpy",)


def requirement_closure(name: str, extras: tuple[str, ...]) -> set[str]:
    """The distributions ``pip install 'name[extras]'`` installs (as installed in this venv),
    without ``name`` itself: its requirements, recursively, with their markers evaluated."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: set[str] = set()
    todo = [(name, tuple(extras))]
    done: set[tuple[str, tuple[str, ...]]] = set()
    while todo:
        dist_name, dist_extras = todo.pop()
        if (dist_name, dist_extras) in done:
            continue
        done.add((dist_name, dist_extras))
        for text in metadata.distribution(dist_name).requires or ():
            req = Requirement(text)
            wanted = [""] + list(dist_extras)
            if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in wanted):
                continue
            key = canonicalize_name(req.name)
            if key != canonicalize_name(name):
                seen.add(key)
            todo.append((req.name, tuple(sorted(req.extras))))
    return seen


def _dependency_view(folder: Path, names: set[str]) -> None:
    """``folder``: links to exactly the files of distributions ``names`` in this venv (their packages,
    modules and metadata), and nothing else of it: a machine has only what its install pulled in."""
    folder.mkdir(parents=True)
    for name in sorted(names):
        dist = metadata.distribution(name)
        tops = {Path(str(f)).parts[0] for f in dist.files or () if not str(f).startswith("..")}
        for top in tops - {"__pycache__", "bin"}:
            source = Path(dist.locate_file(top))
            if source.exists() and not (folder / top).exists():
                (folder / top).symlink_to(source)


def _copy_distribution(name: str, site: Path) -> None:
    dist = metadata.distribution(name)
    for file in dist.files or ():
        source = Path(dist.locate_file(file))
        if source.is_file() and "__pycache__" not in file.parts:
            target = site / file
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def machine_venv(path: Path, wheel: Path | None) -> Path:
    """A venv at ``path`` with ``wheel`` installed (None: without the grader); returns its python.

    Like a machine where ``pip install 'cnnlab[grader,dask]'`` ran, without downloading anything:
    the wheel is installed, the child's numpy copied, and the other distributions that install
    pulls in are linked from this venv (only those: the grader on a machine must need no other)."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout.strip()
    deps = path / "dependencies"
    _dependency_view(deps, requirement_closure("cnnlab", MACHINE_EXTRAS) - set(CHILD_DISTRIBUTIONS))
    Path(site, "zz-test-dependencies.pth").write_text(f"{deps}\n")
    for name in CHILD_DISTRIBUTIONS:
        _copy_distribution(name, Path(site))
    if wheel is not None:
        subprocess.run(
            [*PIP, "install", "-q", "--no-deps", "--no-index", "--target", site, str(wheel)],
            check=True,
            capture_output=True,
            timeout=300,
        )
    return python


_BUILT: dict[str, Path] = {}


def wheel_once(tmp_factory: object) -> Path:
    """The wheel, built once per test session (``tmp_factory``: pytest's ``tmp_path_factory``)."""
    if "wheel" not in _BUILT:
        _BUILT["wheel"] = build_wheel(tmp_factory.mktemp("wheel"))  # type: ignore[attr-defined]
    return _BUILT["wheel"]


@contextlib.contextmanager
def public_python() -> Iterator[tuple[Path, dict[str, str]]]:
    """A copy of this interpreter that other users can read (the one here may live under a private
    home), its site-packages this virtualenv's: ``(python, env)`` for the block, removed afterwards.
    Skips the test where the checkout or the virtualenv itself is not readable by other users."""
    import pytest

    from autograder.sandbox import confine

    site = Path(sysconfig.get_path("purelib")).resolve()
    if not all(confine.readable_by_others(str(p)) for p in (site, ROOT / "autograder", ROOT / "cnnlab")):
        pytest.skip("this checkout or its virtualenv is not readable by other users")
    base = Path(sys.base_prefix).resolve()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    folder = Path(tempfile.mkdtemp(prefix="cnnlab-public-python-"))
    folder.chmod(0o755)
    (folder / "bin").mkdir()
    shutil.copy2(Path(sys.executable).resolve(), folder / "bin" / version)
    shutil.copytree(base / "lib", folder / "lib", symlinks=True, ignore=shutil.ignore_patterns(
        "site-packages", "test", "__pycache__", "idlelib", "tkinter", "ensurepip", "pkgconfig"))  # fmt: skip
    (folder / "lib" / version / "site-packages").symlink_to(site)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LD_LIBRARY_PATH": str(folder / "lib")}
    try:
        yield folder / "bin" / version, env
    finally:
        shutil.rmtree(folder, ignore_errors=True)
