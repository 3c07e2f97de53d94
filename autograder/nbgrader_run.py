"""Running nbgrader's own commands for the course: in ``autograder/`` (so that ``nbgrader_config.py``
applies), with the course root and this venv, and their output filtered to what matters."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from autograder import database
from autograder.errors import CnnlabError

REPO = Path(__file__).resolve().parent.parent
AUTOGRADER_DIR = REPO / "autograder"
SOLUTIONS_PKG = REPO / "solutions" / "cnnlab"
SOLUTIONS_NB = REPO / "solutions" / "notebooks"


class CourseError(CnnlabError):
    """A step of the course pipeline failed; the message says what and where."""


# Harmless output of every nbgrader run (see the team's nbgrader notes).
_NOISE = (
    re.compile(r"SAWarning: Object of type <\w+> not in session"),
    re.compile(r"Kernel is running over TCP without encryption"),
    # released check cells lack the hidden tests, so their checksum always differs from the source's
    re.compile(r"Attribute 'checksum' for cell \w+ has changed"),
    re.compile(r"Removing existing assignment"),
)


_RECORD = re.compile(r"^\[(?P<app>\w+)(?: \| (?P<level>[A-Z]+))?\](?: (?P<level2>[A-Z]+) \|)?")


_PY_WARNING = re.compile(r"^\S+\.py:\d+: \w*Warning: ")


@dataclass
class NbgraderRun:
    """The result of one nbgrader command."""

    args: list[str]
    returncode: int
    output: str  # stdout and stderr, interleaved
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def problems(self) -> list[str]:
        """The output without nbgrader's harmless noise: errors and unexpected warnings only."""
        return filter_output(self.output)


def filter_output(output: str) -> list[str]:
    """Log records of ``output`` at WARNING or above, minus known noise, with their continuation lines."""
    kept: list[str] = []
    keep = True  # output before the first log record (a crash, say) is shown
    for line in output.splitlines():
        record = _RECORD.match(line)
        if line.startswith(("cnnlab:", "[cnnlab]")):  # this course's own messages (nbgrader_config.py)
            keep = True
        elif record or _PY_WARNING.match(line):
            level = (record.group("level") or record.group("level2") or "") if record else "WARNING"
            keep = level in ("WARNING", "ERROR", "CRITICAL") and not any(p.search(line) for p in _NOISE)
        if keep and line.strip():
            kept.append(line)
    return kept


def summarize(lines: list[str]) -> list[str]:
    """Each log record's first line and, for a traceback, its last line (the exception)."""
    out: list[str] = []
    tail: str | None = None
    for line in lines:
        if _RECORD.match(line) or line.startswith(("cnnlab:", "[cnnlab]")):
            if tail:
                out.append(f"    {tail.strip()}")
            out.append(line)
            tail = None
        else:
            tail = line
    if tail:
        out.append(f"    {tail.strip()}")
    return out


def nbgrader_env(root: Path) -> dict[str, str]:
    """The environment nbgrader runs in: this venv first on PATH, the course root, config errors fatal."""
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)
    # nbgrader runs `alembic` (gradebook migrations) by name: it must be on PATH
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    env["CNNLAB_COURSE_ROOT"] = str(root)
    # traitlets only logs an exception in nbgrader_config.py and goes on without the file
    env["TRAITLETS_APPLICATION_RAISE_CONFIG_FILE_ERROR"] = "1"
    env.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")  # debugpy's frozen-modules notice in kernels
    # the grading kernels inherit this environment, and IPython puts PYTHONPATH before the kernel's
    # working folder: the repository on it would shadow each student's cnnlab/ with the release stubs
    # (every student graded 0). nbgrader_config.py gives the kernels what they need of the repository.
    env.pop("PYTHONPATH", None)
    env.pop("CNNLAB_COURSE_SECRET", None)  # the batch grader's: never in a kernel running student code
    return env


def run_nbgrader(args: Sequence[str], root: Path, verbose: bool = False) -> NbgraderRun:
    """Run ``nbgrader <args>`` in ``autograder/`` (so its config applies) for course ``root``."""
    exe = Path(sys.executable).parent / "nbgrader"
    cmd = [str(exe) if exe.exists() else "nbgrader", *args]
    start = time.perf_counter()
    proc = subprocess.run(
        cmd,
        cwd=AUTOGRADER_DIR,
        env=nbgrader_env(root),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    run = NbgraderRun(list(args), proc.returncode, proc.stdout, time.perf_counter() - start)
    if verbose:
        print(run.output, end="")
    return run


def _require(run: NbgraderRun, what: str) -> NbgraderRun:
    if not run.ok:
        details = "\n".join(run.problems()[-40:]) or run.output[-4000:]
        raise CourseError(f"{what} failed (nbgrader {' '.join(run.args)}, exit {run.returncode}):\n{details}")
    return run


def db_url(root: Path) -> str:
    """The gradebook URL, as ``nbgrader_config.py`` sets it (:mod:`autograder.database`)."""
    return database.db_url(root)


def course_root() -> Path:
    """The nbgrader course root: ``$CNNLAB_COURSE_ROOT`` or ``autograder/course``."""
    return Path(os.environ.get("CNNLAB_COURSE_ROOT") or AUTOGRADER_DIR / "course").resolve()
