"""Installs of the distribution as a cluster machine gets it, for the packaging and cluster tests.

:func:`build_wheel` builds the wheel from a copy of the checkout (nothing is written into the
repository); :func:`machine_venv` makes a virtual environment that has the distribution installed
from that wheel and *no* checkout anywhere on its path: its other packages (numpy, dask, ...) are
this test venv's, reached through a path file, whose own path files (the editable install's finder)
are not processed there.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
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


#: what the sandboxed child imports: copied into the machine's venv, because the sandbox gives the
#: child only the site-packages of its own Python installation (not folders a path file adds)
CHILD_DISTRIBUTIONS = ("numpy",)


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
    the wheel is installed, the child's numpy copied, every other dependency is this venv's."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120)
    python = path / "bin" / "python"
    site = subprocess.run(
        [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
        env=clean_env(),
    ).stdout.strip()
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]])
    Path(site, "zz-test-dependencies.pth").write_text("".join(f"{d}\n" for d in deps))
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
