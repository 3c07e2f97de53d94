"""``make lab`` in a student's copy of the course, for the tests.

:func:`student_copy` makes what a student's clone holds for ``make lab`` (``Makefile``,
``pyproject.toml``, ``jupyter-config/``, ``cnnlab/``, ``notebooks/`` with its ``cnnlab`` link) in a
temporary folder, so that a test may edit the student's files. :func:`make_lab` runs ``make lab`` there
with this interpreter's virtualenv (``VENV=``; never reinstalled: ``make -o``), extra server arguments in
``ARGS``, and isolated Jupyter user folders (an empty ``~/.jupyter``: the student's Lab must come from the
project's ``jupyter-config/``), and yields the server's base URL once it answers.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from chromium import wait_for_server

ROOT = Path(__file__).resolve().parent.parent
VENV = Path(sys.prefix)
STARTUP_SECONDS = 120


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def student_copy(dest: Path) -> Path:
    """The parts of a clone that ``make lab`` uses, copied into ``dest`` (links kept as links)."""
    if not (ROOT / "notebooks" / "cnnlab").is_symlink():
        pytest.fail("notebooks/cnnlab is not a link to ../cnnlab: run `make release`")
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    if not (VENV / "bin" / "jupyter").exists():
        pytest.skip(f"JupyterLab is not installed in {VENV}")
    dest.mkdir(parents=True, exist_ok=True)
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy2(ROOT / name, dest / name)
    ignore = shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints")
    for name in ("jupyter-config", "cnnlab", "notebooks"):
        shutil.copytree(ROOT / name, dest / name, symlinks=True, ignore=ignore)
    return dest


def write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, indent=1))


@contextlib.contextmanager
def make_lab(course: Path, home: Path, args: list[str]) -> Iterator[tuple[str, Path]]:
    """``make lab ARGS="--no-browser --port=... <args>"`` in ``course``; yields (base URL, log file).

    ``home`` holds the Jupyter user folders (config, data, runtime); a test may put user settings
    into ``home / "config" / "lab" / "user-settings"`` first. The server and everything it started
    are stopped at the end (the process group of ``make``).
    """
    port = free_port()
    server_args = [
        "--no-browser",
        f"--port={port}",
        "--ServerApp.ip=127.0.0.1",
        "--ServerApp.port_retries=0",
        "--IdentityProvider.token=",
        "--ServerApp.password=",
        *args,
    ]
    # as root (a container) the Makefile itself passes --allow-root (tests/test_make_targets.py)
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "MPLBACKEND", "NBGRADER_EXECUTION", "JUPYTER_CONFIG_PATH", "MAKEFLAGS")
    }
    env.update(
        JUPYTER_CONFIG_DIR=str(home / "config"),
        JUPYTER_DATA_DIR=str(home / "data"),
        JUPYTER_RUNTIME_DIR=str(home / "runtime"),
        IPYTHONDIR=str(home / "ipython"),
        PYDEVD_DISABLE_FILE_VALIDATION="1",
    )
    (home / "config").mkdir(parents=True, exist_ok=True)
    stamp = VENV / ".installed-student"
    cmd = ["make", "-o", str(stamp), "lab", f"VENV={VENV}", "ARGS=" + " ".join(server_args)]
    log = home / "make-lab.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            cmd, cwd=course, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for_server(proc, base, log, STARTUP_SECONDS, "make lab")
        yield base, log
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as r:
        return json.loads(r.read())
