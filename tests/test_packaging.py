"""The distribution: ``pip install 'cnnlab[grader,dask]'`` is all a cluster machine needs.

The wheel is built from a copy of the checkout (``tests/installs.py``) and compared with the files of
the checkout; the installed grader runs from a venv that has no checkout on its path, in a folder
outside the repository, with a clean environment; the editable install of ``make setup-dev`` exposes
``autograder`` to a process whose working folder is elsewhere, without putting the repository root
on ``sys.path``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import installs  # noqa: E402

ROOT = installs.ROOT


def _checkout_files(package: str) -> set[str]:
    """The files of ``package`` in the checkout (not the course root, caches or compiled files)."""
    base = ROOT / package
    found = set()
    for path in base.rglob("*"):
        rel = path.relative_to(ROOT)
        if rel.parts[:2] == ("autograder", "course") or "__pycache__" in rel.parts or not path.is_file():
            continue
        if path.suffix == ".pyc" or ".ipynb_checkpoints" in rel.parts:
            continue
        found.add(rel.as_posix())
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installs.wheel_once(tmp_path_factory)


def test_the_wheel_carries_the_grader_and_its_data(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as zf:
        names = set(zf.namelist())
        texts = {n: zf.read(n) for n in names if n.endswith(".py")}
    packaged = {n for n in names if not n.startswith("cnnlab-")}  # without the .dist-info
    # every file of the grader (its modules, subpackages, the runner, the manifest, the sample
    # students) and of the student package is in the wheel, and nothing else
    assert packaged == _checkout_files("autograder") | _checkout_files("cnnlab")
    for data in ("autograder/assignments.toml", "autograder/sandbox/child.py", "autograder/sandbox/wire.py",
                 "autograder/samples/ada.toml", "cnnlab/_internal/check_cases.json", "cnnlab/digits.txt",
                 "cnnlab/_internal/checks.py"):  # fmt: skip
        assert data in names, data
    # the reference never ships: no solution region, no solutions/ folder, no course root
    assert not [n for n, text in texts.items() if b"### BEGIN SOLUTION" in text and n.startswith("cnnlab/")]
    assert not [n for n in names if n.startswith(("solutions/", "tests/", "autograder/course/"))]


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    return installs.machine_venv(tmp_path_factory.mktemp("machine") / "venv", wheel)


_ON_A_MACHINE = r"""
import json, sys
from pathlib import Path
import autograder, cnnlab
from autograder import reference, remote
from autograder.manifest import load_manifest

out = {"autograder": autograder.__file__, "cnnlab": cnnlab.__file__, "code": remote.code_hash(),
       "points": load_manifest()["02_conv_layer"].points, "path": sys.path}
try:
    reference.load_reference()
except reference.ReferenceMissing as exc:
    out["missing"] = str(exc)
files = reference.ReferenceFiles(tuple((k, bytes.fromhex(v)) for k, v in json.loads(sys.stdin.read())))
ref = reference.use(files)
from autograder import cases  # the judge's case code imports the reference: the one sent
out["reference"] = [ref.__name__, ref.__file__, reference.load_reference() is ref, cases.TASK_IDS]
folder = Path(ref.__file__).parent
out["private"] = [oct(p.stat().st_mode & 0o777) for p in (folder, folder.parent)]
print(json.dumps(out))
"""


def test_the_installed_grader_runs_without_the_checkout(machine: Path, tmp_path: Path) -> None:
    """A machine installed from the wheel: the grader, its manifest and its code hash are there;
    the reference is not, until a job brings it (then it is imported under a private name)."""
    from autograder import remote
    from autograder.manifest import load_manifest
    from autograder.reference import REFERENCE_DIR, ReferenceFiles

    sent = ReferenceFiles.read(REFERENCE_DIR)
    run = subprocess.run(
        [str(machine), "-c", _ON_A_MACHINE],
        input=json.dumps([(name, data.hex()) for name, data in sent.files]),
        cwd=tmp_path,
        env=installs.clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    out = json.loads(run.stdout)
    venv = machine.parent.parent
    for package in ("autograder", "cnnlab"):
        assert Path(out[package]).is_relative_to(venv), out[package]
    # nothing of the checkout on its path but the dependencies (this venv's, which may lie inside it)
    checkout = [Path(p).resolve() for p in out["path"] if p and Path(p).resolve().is_relative_to(ROOT)]
    assert not [p for p in checkout if not p.is_relative_to(Path(sys.prefix).resolve())], out["path"]
    assert out["points"] == load_manifest()["02_conv_layer"].points
    assert out["code"] == remote.code_hash()  # the same grader, installed or checked out
    assert "reference solutions are not on this machine" in out["missing"]
    name, file, active, task_ids = out["reference"]
    assert name.startswith("cnnlab_reference_") and name != "cnnlab"
    assert not Path(file).is_relative_to(ROOT) and not Path(file).is_relative_to(venv)
    assert active and task_ids == list(load_manifest_tasks())
    assert out["private"] == ["0o700", "0o700"]  # only the worker's user can read the reference


def load_manifest_tasks() -> list[str]:
    """Every task id of the course, from the task table of the reference in the checkout."""
    from autograder.reference import load_reference

    return list(load_reference().tasks.TASKS)


def test_the_editable_install_exposes_the_grader_elsewhere(tmp_path: Path) -> None:
    """``make setup-dev`` installs with ``pip install -e``: from any folder, with no PYTHONPATH,
    ``autograder`` and ``cnnlab`` import from the checkout, and the checkout's root is not on the
    path (setuptools' editable finder maps the two packages only)."""
    code = (
        "import importlib.util, json, sys, autograder, autograder.batch.dask_engine, cnnlab; "
        "print(json.dumps([autograder.__file__, cnnlab.__file__, sys.path, "
        "[m for m in ('tests', 'tools', 'solutions', 'benchmarks') if importlib.util.find_spec(m)]]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=installs.clean_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    grader, student, path, others = json.loads(run.stdout)
    assert Path(grader) == ROOT / "autograder" / "__init__.py"
    assert Path(student) == ROOT / "cnnlab" / "__init__.py"
    assert str(ROOT) not in [str(Path(p).resolve()) for p in path if p]
    assert others == []
