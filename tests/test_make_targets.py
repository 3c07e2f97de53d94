"""The Makefile's user-facing targets, run with stand-ins for the programs they start.

``make lab`` as root (a container) must start JupyterLab with ``--allow-root`` and say so in one line,
and must not pass it otherwise; ``make demo`` grades with both graders and runs no benchmark. A fake
``id`` on ``PATH`` plays root (or not), a fake ``jupyter`` records its arguments: the real programs
are tested in ``test_lab.py`` and ``test_nbgrader.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _script(path: Path, text: str) -> None:
    path.write_text("#!/bin/sh\n" + text)
    path.chmod(0o755)


def _make_lab(tmp_path: Path, uid: int) -> tuple[subprocess.CompletedProcess, list[str]]:
    venv, fakes = tmp_path / "venv", tmp_path / "bin"
    (venv / "bin").mkdir(parents=True)
    fakes.mkdir()
    record = tmp_path / "jupyter-args"
    _script(venv / "bin" / "python", "exit 0\n")
    _script(venv / "bin" / "jupyter", f'for a in "$@"; do echo "$a"; done > "{record}"\n')
    _script(fakes / "id", f'if [ "$1" = -u ]; then echo {uid}; else echo "uid={uid}"; fi\n')
    stamp = venv / ".installed-student"
    stamp.touch()
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL")}
    env["PATH"] = f"{fakes}{os.pathsep}{env.get('PATH', '')}"
    cmd = ["make", "-s", "-C", str(ROOT), "-o", str(stamp), "lab", f"VENV={venv}", "ARGS=--no-browser"]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60)
    args = record.read_text().split("\n")[:-1] if record.exists() else []
    return done, args


def test_make_lab_as_root_passes_allow_root_and_says_so(tmp_path):
    done, args = _make_lab(tmp_path, 0)
    assert done.returncode == 0, done.stderr
    assert args[0] == "lab" and "--no-browser" in args, args
    assert "--allow-root" in args, f"make lab as root must pass --allow-root to Jupyter; it passed {args}"
    said = [line for line in done.stdout.splitlines() if "--allow-root" in line]
    assert len(said) == 1 and "root" in said[0], done.stdout


def test_make_lab_as_a_user_does_not_allow_root(tmp_path):
    done, args = _make_lab(tmp_path, 1000)
    assert done.returncode == 0, done.stderr
    assert args[0] == "lab" and "--allow-root" not in args, args
    assert "--allow-root" not in done.stdout


def test_make_demo_grades_with_both_graders_and_runs_no_benchmark():
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MAKELEVEL")}
    done = subprocess.run(
        ["make", "-n", "-C", str(ROOT), "-o", ".venv/.installed-dev", "demo"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    commands = done.stdout
    assert "bench" not in commands, f"make demo must not run a benchmark:\n{commands}"
    assert "-m autograder demo" in commands, commands


def test_the_demo_prints_both_graders_totals_side_by_side():
    from autograder.course import Table, compare_totals

    table = Table(
        tasks=["1.1", "1.2"],
        max_points={"1.1": 2.0, "1.2": 3.0},
        rows={"ada": {"1.1": 2.0, "1.2": 3.0}, "bobby": {"1.1": 0.0, "1.2": "?"}},
    )
    text = compare_totals(table, {"ada": 5.0, "bobby": 3.0})
    rows = {line.split()[0]: line.split()[1:] for line in text.splitlines() if line[:1].isalpha()}
    assert rows["ada"] == ["5", "5"] and rows["bobby"] == ["0", "3"], text
    assert "nbgrader" in text and "batch grader" in text
    assert "disagree on: bobby" in text, text
    assert "bobby: nbgrader left 1.2 for manual grading" in text, text
    assert "agree on every student" in compare_totals(table, {"ada": 5.0, "bobby": 0.0})
