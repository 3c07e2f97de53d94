"""The class on JupyterHub (issue 22b): ``python -m autograder.hub`` as ``make hub-demo`` runs it.

One run with 5 students (one of each kind of work; ``make hub-demo`` uses 30): real users, JupyterHub
6, nbgrader's exchange, one student in Chromium. The demo checks its own round trip (each student
graded once, the gradebook equal to the batch grader, feedback in every home); this test checks from
outside: the exit status, the grade table against what each kind of work must earn, and that no user,
process or folder of the demo is left. 6.5 minutes here on two cores shared with other work (most of
it nbgrader's start-up, once per command per student); root only.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
STUDENTS = 5
PREFIX = "cnt"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the hub demo makes system users: root only"),
    pytest.mark.skipif(shutil.which("useradd") is None, reason="no useradd"),
    pytest.mark.skipif(
        not (REPO / "node_modules" / ".bin" / "configurable-http-proxy").exists(),
        reason="configurable-http-proxy is not installed (npm ci)",
    ),
]


def _users() -> list[str]:
    return [p.pw_name for p in pwd.getpwall() if p.pw_name.startswith(f"{PREFIX}-")]


def test_hub_round_trip() -> None:
    pytest.importorskip("jupyterhub")
    assert _users() == [], "users of an earlier run are left"
    parent = Path(tempfile.mkdtemp(prefix="cnnlab-hubtest-"))  # not pytest's tmp_path: that is 0700
    parent.chmod(0o755)  # the demo's users reach their homes through it
    work = parent / "hub"
    args = [sys.executable, "-m", "autograder.hub", "--students", str(STUDENTS), "--prefix", PREFIX]
    if not Path("/usr/bin/chromium").exists() and not shutil.which("chromium"):
        args.append("--no-browser")
    run = subprocess.run([*args, "--work", str(work)], cwd=REPO, capture_output=True, text=True, timeout=1500)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-6000:]
    assert "hub demo passed" in run.stdout
    points = tomllib.loads((REPO / "autograder" / "assignments.toml").read_text())["assignments"]
    points = points["02_conv_layer"]["points"]
    total = sum(points.values())
    rows = {}
    for line in run.stdout.splitlines():
        if line.startswith(f"{PREFIX}-s"):
            cells = line.split("  ")
            cells = [c.strip() for c in cells if c.strip()]
            rows[cells[0]] = cells
    assert sorted(rows) == [f"{PREFIX}-s{i:02d}" for i in range(1, STUDENTS + 1)]
    for student, cells in rows.items():
        work_kind, got, gradebook = cells[1], float(cells[4]), float(cells[5])
        assert got == gradebook, f"{student}: batch grader {got}, gradebook {gradebook}"
        assert cells[-1] == "fetched", f"{student}: feedback not fetched"
        expected = {"reference": total, "untouched stubs": 0, "forward only": points["2.1"]}
        for kind, value in expected.items():
            if work_kind.startswith(kind):
                assert got == value, f"{student} ({work_kind}): {got}, expected {value}"
        if work_kind in ("flipped kernel", "no bias"):
            assert 0 < got < total
    if "--no-browser" not in args:
        assert "(Chromium)" in rows[f"{PREFIX}-s01"][1]
        assert "Score: 10.0 / 10.0" in run.stdout  # the feedback page the browser opened
        assert "the formgrader in its own tab lists 02_conv_layer" in run.stdout
    # cleaned up: no user, no process of theirs, no work folder
    assert _users() == []
    assert not work.exists()
    leftover = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if str(work).encode() in (proc / "cmdline").read_bytes():
                    leftover.append(proc.name)
            except OSError:
                continue
    assert leftover == []
    parent.rmdir()
