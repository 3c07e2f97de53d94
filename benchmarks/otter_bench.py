"""Otter-Grader beside nbgrader in ``benchmarks/grade_bench.py``: its own virtualenv, an autograder for
the assignment, and Otter's ``grade_submission`` timed on the same submissions.

* :func:`otter_python`: a virtualenv for Otter only, ``benchmarks/.otter-venv/`` (gitignored, kept
  between runs), with ``otter-grader`` (:data:`OTTER_VERSION`) and what the notebook's kernel needs
  at the project's versions (:data:`KERNEL_PACKAGES`). Never the project's ``.venv``: Otter's pins
  could break nbgrader's.
* :func:`build_autograder`: Otter's autograder zip, made by Otter's own ``otter generate`` from a
  ``tests/`` folder of OK-format test files (one per task, points from ``autograder/assignments.toml``)
  and the support file ``cnnlab_otter.py`` (the course's hidden grading, see that file).
* :func:`grade_all`: ``otter.api.grade_submission`` on each student's submitted folder (zipped, as a
  student hands it in), one after another in one process of that virtualenv (:func:`drive`, this file
  run as a script there), as Otter grades without containers (``otter run``).

Otter's non-containerized grading executes the notebook in a local Jupyter kernel with the rights
and the environment of whoever runs it; only ``otter grade`` isolates, in Docker containers.
"""

from __future__ import annotations

import json
import os
import pprint
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
VENV = HERE / ".otter-venv"
OTTER_VERSION = "7.0.0"
STAMP = "cnnlab-requirements.txt"  # in the venv: what it was made with
ISOLATION = (
    "none: grade_submission (otter run, no container) executes the notebook in a local Jupyter "
    "kernel with the grader's rights and environment; only otter grade isolates (Docker)"
)
sys.path.insert(0, str(HERE))
import cnnlab_otter  # noqa: E402


@dataclass
class OtterRun:
    """Otter on every submission: the driver's wall time, each submission's time and points per
    task (test file name -> points), and errors by student."""

    seconds: float
    per_submission: dict[str, float] = field(default_factory=dict)
    points: dict[str, dict[str, float]] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)


#: what the notebook's kernel needs (cnnlab's and the student tools' packages the notebook imports)
KERNEL_PACKAGES = ("numpy", "matplotlib", "ipykernel", "ipython", "ipywidgets")


def requirements() -> list[str]:
    """What the Otter venv gets: otter-grader, and :data:`KERNEL_PACKAGES` at the project's versions
    (the notebook runs on the same numpy, matplotlib and kernel as in nbgrader's)."""
    wanted = [f"otter-grader=={OTTER_VERSION}"]
    for name in KERNEL_PACKAGES:
        try:
            wanted.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            wanted.append(name)
    return wanted


def otter_python(venv: Path = VENV, log: Callable[[str], None] = print) -> Path | None:
    """The Python of the Otter virtualenv, made (or remade, when :func:`requirements` changed) on
    first use; None, after one line saying why, when it cannot be installed (an offline machine)."""
    python = venv / "bin" / "python"
    wanted = "\n".join(requirements()) + "\n"
    stamp = venv / STAMP
    if python.is_file() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    log(f"Otter-Grader: installing {', '.join(requirements())} into {_shown(venv)} (once; a minute or two)")
    steps = [
        [sys.executable, "-m", "venv", "--clear", str(venv)],
        [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check", *requirements()],
    ]
    for step in steps:
        proc = subprocess.run(step, capture_output=True, text=True)
        if proc.returncode:
            last = (proc.stderr.strip() or proc.stdout.strip() or "no output").splitlines()[-1]
            what = " ".join(step[-3:])
            log(f"Otter-Grader: not compared: `{what}` failed (exit {proc.returncode}): {last}")
            return None
    stamp.write_text(wanted)
    return python


def printable(text: str, limit: int = 300) -> str:
    """``text`` (an error that may quote a student's file) as one printable line of at most ``limit``
    characters: control characters, escape sequences included, become ``?``."""
    return "".join(c if c.isprintable() else "?" for c in " ".join(str(text).split()))[:limit]


def _shown(path: Path) -> str:
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def ok_test(name: str, task_id: str, points: float) -> str:
    """An OK-format test file for Task ``task_id``: one case per weight of
    :func:`cnnlab_otter.cent_weights`, each worth that weight, so that the passed cases add up to the
    points the course's hidden grading gives."""
    total = round(100 * points)
    cases = [
        {
            "code": f">>> import cnnlab_otter\n>>> cnnlab_otter.earns({task_id!r}, {total}, {i})\nTrue",
            "hidden": False,
            "locked": False,
            "points": weight / 100,
        }
        for i, weight in enumerate(cnnlab_otter.cent_weights(total))
    ]
    suite = {"cases": cases, "scored": True, "setup": "", "teardown": "", "type": "doctest"}
    spec = pprint.pformat({"name": name, "suites": [suite]}, sort_dicts=False)  # Python, not JSON
    return f"OK_FORMAT = True\n\ntest = {spec}\n"


def test_name(task_id: str) -> str:
    return "task" + task_id.replace(".", "_")


def build_autograder(python: Path, workdir: Path, points: dict[str, float]) -> Path:
    """Otter's autograder zip for tasks ``points`` (task id -> points), made by ``otter generate``
    in ``workdir``: ``otter_config.json``, ``tests/<task>.py``, ``requirements.txt`` (numpy) and the
    support file ``cnnlab_otter.py``. Returns the zip's path."""
    workdir.mkdir(parents=True, exist_ok=True)
    tests = workdir / "tests"
    tests.mkdir(exist_ok=True)
    for task_id, pts in points.items():
        (tests / f"{test_name(task_id)}.py").write_text(ok_test(test_name(task_id), task_id, pts))
    config = {"name": "cnnlab", "lang": "python", "print_summary": False, "print_score": False}
    (workdir / "otter_config.json").write_text(json.dumps(config, indent=1) + "\n")
    (workdir / "requirements.txt").write_text(f"numpy=={metadata.version('numpy')}\n")
    (workdir / "cnnlab_otter.py").write_bytes((HERE / "cnnlab_otter.py").read_bytes())
    out = workdir / "autograder.zip"
    otter = python.parent / "otter"
    cmd = [str(otter), "generate", "-t", "tests", "-o", out.name, "-c", "otter_config.json"]
    cmd += ["-r", "requirements.txt", "--no-environment", "cnnlab_otter.py"]
    subprocess.run(cmd, cwd=workdir, check=True, capture_output=True, text=True)
    return out


def zip_submission(folder: Path, dest: Path) -> Path:
    """The student's submitted folder as one zip (Otter grades a notebook, a script or a zip)."""
    with zipfile.ZipFile(dest, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return dest


def grade_all(python: Path, autograder: Path, submissions: dict[str, Path], root: Path) -> OtterRun:
    """Otter's ``grade_submission`` on every submission (student -> zip), one after another in one
    process of the Otter venv; the wall time includes that process's start and Otter's import."""
    jobs = root / "otter-jobs.json"
    jobs.write_text(json.dumps({s: str(p) for s, p in submissions.items()}))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "CNNLAB_COURSE_SECRET")}
    env.update({cnnlab_otter.REPO_ENV: str(REPO), "CNNLAB_COURSE_ROOT": str(root)})
    t = time.perf_counter()
    proc = subprocess.run(
        [str(python), str(Path(__file__).resolve()), str(autograder), str(jobs)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
    )
    run = OtterRun(time.perf_counter() - t)
    for line in proc.stdout.splitlines():
        if line.startswith("{"):
            row = json.loads(line)
            if "kernel" in row:
                continue
            run.per_submission[row["student"]] = row["seconds"]
            run.points[row["student"]] = row["points"]
            if row.get("error"):
                run.errors[row["student"]] = row["error"]
    if proc.returncode:
        run.errors["(driver)"] = f"exit {proc.returncode}: {proc.stderr.strip()[-1500:]}"
    return run


def drive(autograder: str, jobs_file: str) -> int:
    """In the Otter venv: ``grade_submission`` on each job, a JSON line per submission on stdout."""
    from jupyter_client.kernelspec import KernelSpecManager
    from otter.api import grade_submission

    kernel = KernelSpecManager().get_kernel_spec("python3").argv[0]
    print(json.dumps({"kernel": kernel}), flush=True)
    # jupyter_client starts a kernel.json's "python"/"python3"/"python3.X" as its own sys.executable
    names = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    if kernel not in names and os.path.abspath(kernel) != os.path.abspath(sys.executable):
        print(f"the python3 kernel is {kernel}, not this venv's {sys.executable}", file=sys.stderr)
        return 2
    for student, path in json.loads(Path(jobs_file).read_text()).items():
        os.environ[cnnlab_otter.STUDENT_ENV] = student
        row: dict = {"student": student, "points": {}, "error": ""}
        t = time.perf_counter()
        try:
            results = grade_submission(path, autograder, quiet=True)
            row["points"] = {name: results.get_score(name) for name in results.test_files}
            if results.catastrophic_error:
                row["error"] = f"{type(results.catastrophic_error).__name__}: {results.catastrophic_error}"
        except Exception as exc:  # a submission Otter cannot grade at all (e.g. a notebook not JSON)
            row["error"] = f"{type(exc).__name__}: {exc}"[:300]
        row["seconds"] = time.perf_counter() - t
        print(json.dumps(row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(drive(*sys.argv[1:3]))
