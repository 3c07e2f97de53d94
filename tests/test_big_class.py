"""Big classes: the batch grader on a Dask cluster, a PostgreSQL gradebook, deadlines, LMS export.

Real components: a throwaway PostgreSQL server (``tests/pg.py``: Debian's binaries, a cluster in a
temporary folder, a unix socket only), ``dask scheduler`` and ``dask worker`` processes on 127.0.0.1
(one of them SIGKILLed mid-batch), a ``LocalCluster``. Scores are compared with a local-pool run of
the same submissions, never with numbers written here.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import shlex
import signal
import string
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from autograder import batch, course, database, deadlines, lms
from autograder.manifest import ManifestError, load_manifest
from autograder.reference import ROOT

sys.path.insert(0, str(Path(__file__).parent))
import course_env  # noqa: E402
import installs  # noqa: E402
import pg  # noqa: E402

A = "02_conv_layer"
CONV = "cnnlab/conv.py"
SECRET = "big-class-secret"


# --- deadlines: pure functions, hand-worked ------------------------------------------------------------


def test_late_policies_follow_nbgrader_semantics() -> None:
    assert deadlines.LatePolicy("none").penalty(7.0, 3600) == 0.0
    assert deadlines.LatePolicy("zero").penalty(7.0, 1) == 7.0
    assert deadlines.LatePolicy("zero").penalty(7.0, 0) == 0.0
    per_hour = deadlines.LatePolicy("per_hour", 1.5)
    assert per_hour.penalty(7.0, 1) == 1.5  # a started hour counts
    assert per_hour.penalty(7.0, 3600) == 1.5
    assert per_hour.penalty(7.0, 3601) == 3.0
    assert per_hour.penalty(2.0, 10 * 3600) == 2.0  # never below zero


def test_seconds_late_with_an_extension() -> None:
    due = "2026-12-10T23:59:00+00:00"
    assert deadlines.seconds_late("2026-12-11 00:09:00.000000 UTC", due) == 600.0
    assert deadlines.seconds_late("2026-12-11 00:09:00.000000 UTC", due, extension_hours=1) == 0.0
    assert deadlines.seconds_late("2026-12-10T22:00:00Z", due) == 0.0
    assert deadlines.seconds_late(None, due) == 0.0 and deadlines.seconds_late("2026-12-11", None) == 0.0


def test_a_penalty_is_applied_once() -> None:
    policy = deadlines.LatePolicy("per_hour", 1.0)
    first = deadlines.late_fields(10.0, "2026-12-11T02:00:00Z", "2026-12-10T23:59:00Z", 0.0, policy)
    again = deadlines.late_fields(10.0, "2026-12-11T02:00:00Z", "2026-12-10T23:59:00Z", 0.0, policy)
    assert first == again == {"late_seconds": 7260.0, "penalty": 3.0, "score": 7.0}


def test_manifest_due_dates_need_a_zone(tmp_path: Path) -> None:
    text = '[assignments.x]\nnotebooks = ["x.ipynb"]\npoints = { "1.1" = 1 }\ndue = 2026-12-10T23:59:00\n'
    (tmp_path / "m.toml").write_text(text)
    with pytest.raises(ManifestError, match="time zone"):
        load_manifest(tmp_path / "m.toml")
    (tmp_path / "m.toml").write_text(text.replace(":00\n", ":00Z\n"))
    assert load_manifest(tmp_path / "m.toml")["x"].due == "2026-12-10T23:59:00+00:00"


def test_a_bad_late_policy_is_refused(tmp_path: Path) -> None:
    (tmp_path / "m.toml").write_text('[late]\nmethod = "half"\n')
    with pytest.raises(ValueError, match="late.method"):
        deadlines.load_policy(tmp_path / "m.toml")


# --- the course, in PostgreSQL ---------------------------------------------------------------------------


def _students() -> dict[str, str]:
    """Twelve submissions: complete, half done, and classic mistakes (reference variants)."""
    full = course.reference_variant("conv", None, ())
    half = course.reference_variant("conv", ["1.1", "1.2", "2.1"], ())
    stride = course.reference_variant("conv", None, ("conv2d_stride_ignored",))
    kinds = [full, half, stride]
    return {f"s{i:02d}": kinds[i % 3] for i in range(12)}


@pytest.fixture(scope="module")
def postgres() -> Any:
    if pg.binaries() is None:
        pytest.skip("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    with pg.server(("cnnlab", "other")) as urls:
        yield urls


@pytest.fixture(scope="module")
def pg_course(tmp_path_factory: pytest.TempPathFactory, postgres: dict[str, str]) -> Any:
    """A released course whose gradebook is the throwaway PostgreSQL, with twelve submissions and a
    local-pool run of them as the reference for every other engine."""
    root = tmp_path_factory.mktemp("pgcourse")
    with course_env.course(root, SECRET, **{database.ENV: postgres["cnnlab"]}):
        yield _graded_locally(root)


def _graded_locally(root: Path) -> tuple[Path, dict[str, Any]]:
    manifest = load_manifest()
    course.release(root, {A: manifest[A]}, log=lambda _: None)
    for student, text in _students().items():
        batch.fabricate_submission(root, student, manifest[A], {CONV: text})
    local = batch.grade_assignment(
        A,
        root,
        batch.Options(workers=2, progress=False, log=lambda _: None, gradebook=False, out=root / "out-local"),
    )
    return root, {r["student"]: r for r in local.rows}


def _gradebook_points(root: Path) -> dict[str, dict[str, float]]:
    table = course.grade_table(root, None, {A: load_manifest()[A]})
    return {s: {t: table.points(s, t) for t in ("2.1", "2.2")} for s in table.rows}


def _points(rows: dict[str, Any]) -> dict[str, dict[str, float]]:
    return {s: {t: r["tasks"][t]["points"] for t in ("2.1", "2.2")} for s, r in rows.items()}


def _cli(
    args: list[str], env: dict[str, str] | None = None, timeout: float = 300
) -> subprocess.CompletedProcess:
    full = {**_client_env(), **(env or {})}  # the editable install, no PYTHONPATH
    return subprocess.run(
        [sys.executable, "-m", "autograder", *args],
        cwd=ROOT,
        env=full,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.slow
def test_the_batch_grader_writes_the_postgresql_gradebook(pg_course: Any) -> None:
    root, local = pg_course
    run = _cli(["grade", A, "--quiet"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert _gradebook_points(root) == _points(local)
    # the partial credit is real, not all-or-nothing
    assert any(0 < r["total"] < 10 for r in local.values())


@pytest.mark.slow
def test_two_graders_at_once_lose_nothing(pg_course: Any) -> None:
    root, local = pg_course
    procs = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "autograder",
                "grade",
                A,
                "--force",
                "--quiet",
                "--out",
                str(root / f"twin{i}"),
            ],
            cwd=ROOT,
            env=_client_env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err[-3000:]
    assert _gradebook_points(root) == _points(local)


@pytest.mark.slow
def test_an_unreachable_postgresql_is_an_error_not_sqlite(
    tmp_path: Path, postgres: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = postgres["cnnlab"].replace(f"port={pg.PORT}", f"port={pg.PORT + 1}")
    monkeypatch.setenv("CNNLAB_DB_URL", bad)
    monkeypatch.setenv("CNNLAB_COURSE_ROOT", str(tmp_path))
    run = _cli(["table"])
    assert run.returncode == 1 and "cannot be reached" in run.stderr, run.stderr
    # nbgrader's own commands load nbgrader_config.py, which refuses the same way
    nb = course.run_nbgrader(["db", "student", "list"], tmp_path)
    assert not nb.ok and "cannot be reached" in nb.output, nb.output[-2000:]
    assert not (tmp_path / "gradebook.db").exists()


@pytest.mark.slow
def test_every_command_names_its_database(
    tmp_path: Path, postgres: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CNNLAB_COURSE_ROOT", str(tmp_path))
    monkeypatch.setenv("CNNLAB_DB_URL", postgres["other"])
    run = _cli(["table"])
    assert "gradebook: postgresql database 'other'" in run.stderr, run.stderr
    assert (
        "gradebook: postgresql database 'other'"
        in course.run_nbgrader(["db", "student", "list"], tmp_path).output
    )
    monkeypatch.delenv("CNNLAB_DB_URL")
    run = _cli(["table"])
    assert "gradebook: SQLite" in run.stderr, run.stderr


@pytest.mark.slow
def test_late_penalty_extension_and_lms_export(pg_course: Any, tmp_path: Path) -> None:
    """A due date, a per-hour policy, an extension for one student: the batch grader's CSV, the
    gradebook and the Canvas export agree, and a re-run does not penalise twice."""
    root, local = pg_course
    manifest_text = (ROOT / "autograder" / "assignments.toml").read_text()
    manifest_text = manifest_text.replace(
        '[late]\nmethod = "none"', '[late]\nmethod = "per_hour"\nper_hour = 1.0'
    )
    manifest_text = manifest_text.replace(
        "[assignments.02_conv_layer]", "[assignments.02_conv_layer]\ndue = 2026-11-26T08:30:00Z"
    )  # the fabricated timestamps are 2026-11-26 10:00 UTC: 1.5 h late
    manifest = tmp_path / "assignments.toml"
    manifest.write_text(manifest_text)
    (root / deadlines.EXTENSIONS).write_text("student,assignment,hours\ns00,02_conv_layer,2\n")
    env = {"CNNLAB_MANIFEST": str(manifest)}
    try:
        for _ in range(2):  # the second run is cached: the penalty is recomputed, not added again
            run = _cli(["grade", A, "--quiet", "--out", str(root / "late")], env)
            assert run.returncode == 0, run.stderr[-3000:]
        with open(root / "late" / "grades.csv", newline="") as fh:
            rows = {r["student_id"]: r for r in csv.DictReader(fh)}
        for student, row in rows.items():
            raw = local[student]["total"]
            expected = 0.0 if student == "s00" else min(raw, 2.0)
            assert float(row["penalty"]) == expected, (student, row)
            assert float(row["score"]) == raw - expected
        plain, canvas = lms.write_exports(root, tmp_path / "export")
        with open(canvas, newline="") as fh:
            lines = list(csv.reader(fh))
        assert lines[0][:5] == ["Student", "ID", "SIS User ID", "SIS Login ID", "Section"]
        assert lines[1][0] == "Points Possible" and lines[1][5 + list(load_manifest()).index(A)] == "10"
        col = 5 + list(load_manifest()).index(A)
        exported = {line[3]: float(line[col]) for line in lines[2:] if line[col]}
        assert exported == {s: float(r["score"]) for s, r in rows.items()}
        with open(plain, newline="") as fh:
            assert {r["student_id"] for r in csv.DictReader(fh) if r["assignment"] == A} == set(rows)
    finally:
        (root / deadlines.EXTENSIONS).unlink()


# --- Dask ------------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_dask_local_cluster_grades_like_the_local_pool(pg_course: Any) -> None:
    """Identical submissions (every third student) are graded as tasks of their own: none is lost."""
    root, local = pg_course
    options = batch.Options(
        scheduler="local", workers=2, progress=False, log=lambda _: None, gradebook=False, out=root / "out-lc"
    )
    rows = {r["student"]: r for r in batch.grade_assignment(A, root, options).rows}
    assert _points(rows) == _points(local)
    assert [r["reason"] for r in rows.values()] == [r["reason"] for r in local.values()]


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- a cluster started as docs/big-classes.md says ------------------------------------------------------

DOC = ROOT / "docs" / "big-classes.md"


def documented_commands(**values: str) -> dict[str, list[str]]:
    """The commands of docs/big-classes.md's "Starting a cluster by hand", its variables set to
    ``values``: ``{"venv", "install", "scheduler", "worker", "grade"}`` -> argv."""
    text = DOC.read_text()
    block = text.split("### Starting a cluster by hand", 1)[1].split("```bash\n", 1)[1].split("```", 1)[0]
    found: dict[str, list[str]] = {}
    for line in block.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        argv = shlex.split(string.Template(line).substitute(values), comments=True)
        kinds = {
            "venv": argv[1:3] == ["-m", "venv"],
            "install": argv[1:2] == ["install"],
            "scheduler": argv[1:4] == ["-m", "dask", "scheduler"],
            "worker": argv[1:4] == ["-m", "dask", "worker"],
            "grade": argv[1:4] == ["-m", "autograder", "grade"],
        }
        (kind,) = [k for k, hit in kinds.items() if hit]
        found[kind] = argv
    assert set(found) == {"venv", "install", "scheduler", "worker", "grade"}, found
    return found


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return installs.wheel_once(tmp_path_factory)


@pytest.fixture(scope="module")
def machine(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A cluster machine's venv: the distribution installed from its wheel, no checkout on its path."""
    return installs.machine_venv(tmp_path_factory.mktemp("machine") / "venv", wheel)


class Cluster:
    """``dask scheduler`` and ``dask worker`` processes started with the documented commands, from a
    folder outside the repository, with a clean environment; every process is killed at the end."""

    def __init__(self, folder: Path, env: dict[str, str]) -> None:
        self.folder, self.env = folder, env
        self.port = _free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.procs: list[subprocess.Popen] = []
        (folder / "logs").mkdir(parents=True)

    def commands(self, venv: Path, name: str = "w0") -> dict[str, list[str]]:
        values = {"VENV": str(venv), "HOST": "127.0.0.1", "PORT": str(self.port), "WORKER_HOST": "127.0.0.1"}
        return documented_commands(**values, NAME=name)

    def start(self, argv: list[str], log: str) -> subprocess.Popen:
        with open(self.folder / "logs" / f"{log}.log", "w") as out:
            proc = subprocess.Popen(argv, cwd=self.folder, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                    start_new_session=True)  # fmt: skip
        self.procs.append(proc)
        return proc

    def scheduler(self, venv: Path) -> subprocess.Popen:
        return self.start(self.commands(venv)["scheduler"], "scheduler")

    def worker(self, venv: Path, name: str) -> subprocess.Popen:
        return self.start(self.commands(venv, name)["worker"], name)

    def wait_for_workers(self, n: int) -> None:
        from distributed import Client

        with Client(self.address, timeout="60s") as client:
            client.wait_for_workers(n, timeout=60)

    def logs(self) -> str:
        return "\n".join(
            f"--- {p.name}\n{p.read_text()[-2000:]}" for p in sorted((self.folder / "logs").iterdir())
        )

    def stop(self) -> None:
        for proc in self.procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the nanny and its worker process
            proc.wait(timeout=30)
        deadline = time.monotonic() + 20
        for proc in self.procs:  # nothing of a process group is left running
            while _group_alive(proc.pid):
                assert time.monotonic() < deadline, f"process group {proc.pid} is still running"
                time.sleep(0.1)


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def cluster(tmp_path: Path) -> Any:
    folder = tmp_path / "elsewhere"  # outside the repository
    folder.mkdir()
    assert not folder.resolve().is_relative_to(ROOT)
    env = installs.clean_env(CNNLAB_JUDGE_TEST_DELAY="0.7")  # no PYTHONPATH, nothing of the course
    one = Cluster(folder, env)
    try:
        yield one
    finally:
        one.stop()


def _grade_argv(cluster: Cluster, out: Path, *more: str) -> list[str]:
    argv = cluster.commands(Path("unused"))["grade"]
    assert argv[0] == "python"
    return [sys.executable, *argv[1:], "--force", "--quiet", "--out", str(out), *more]


def _client_env() -> dict[str, str]:
    """The instructor's machine: this environment (course root, secret, PostgreSQL), no PYTHONPATH."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def test_the_documented_install_is_the_wheel_with_the_grader_extras(wheel: Path) -> None:
    install = documented_commands(VENV="v", HOST="h", PORT="1", WORKER_HOST="w", NAME="n")["install"]
    target = install[-1]
    assert target.endswith("[grader,dask]") and Path(target.split("[")[0]).name == wheel.name, target


@pytest.mark.slow
def test_a_worker_killed_mid_batch_loses_no_row(pg_course: Any, machine: Path, cluster: Cluster) -> None:
    """The documented commands: a scheduler and two workers from a wheel-installed venv, started
    outside the repository with a clean environment; one worker (nanny and all) is SIGKILLed while
    it grades: every student is in the PostgreSQL gradebook exactly once, with the points of the
    local pool."""
    root, local = pg_course
    venv = machine.parent.parent
    cluster.scheduler(venv)
    workers = [cluster.worker(venv, f"w{i}") for i in range(2)]
    cluster.wait_for_workers(2)
    out = root / "out-dask"
    grader = subprocess.Popen(_grade_argv(cluster, out), cwd=cluster.folder, env=_client_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while len(list((out / "results").glob("*.json"))) < 3:
        assert grader.poll() is None, grader.communicate()[1][-3000:] + cluster.logs()
        assert time.monotonic() < deadline, "no results\n" + cluster.logs()
        time.sleep(0.05)
    os.killpg(workers[0].pid, signal.SIGKILL)  # the nanny and its worker: a lost machine
    _, err = grader.communicate(timeout=300)
    assert grader.returncode == 0, err[-3000:] + cluster.logs()
    results = sorted(p.stem for p in (out / "results").glob("*.json"))
    assert results == sorted(local)
    assert _gradebook_points(root) == _points(local)
    with open(out / "grades.csv", newline="") as fh:
        students = [r["student_id"] for r in csv.DictReader(fh)]
    assert sorted(students) == sorted(local)  # every student exactly once
    # the workers judged with the reference the jobs brought, imported under its private name
    assert "No module named" not in cluster.logs()


@pytest.fixture(scope="module")
def bare(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A machine with Dask but without the grader."""
    return installs.machine_venv(tmp_path_factory.mktemp("bare") / "venv", None)


@pytest.fixture(scope="module")
def other(tmp_path_factory: pytest.TempPathFactory, wheel: Path) -> Path:
    """A machine with another grader version (one module of the installed grader differs)."""
    python = installs.machine_venv(tmp_path_factory.mktemp("other") / "venv", wheel)
    (module,) = python.parent.parent.glob("lib/python*/site-packages/autograder/remote.py")
    module.write_text(module.read_text() + "\n# another version of the grader\n")
    return python


@pytest.mark.slow
@pytest.mark.parametrize(
    ("lacking", "expected"),
    [
        ("worker", r"Dask worker w1 at tcp://127\.0\.0\.1:\d+ \(host [^)]+\) cannot import the grader "
                   r"\(ModuleNotFoundError: No module named 'autograder'\)"),
        ("scheduler", r"the Dask scheduler at tcp://127\.0\.0\.1:\d+ \(host [^)]+\) cannot import the "
                      r"grader \(ModuleNotFoundError: No module named 'autograder'\)"),
        ("version", r"Dask worker w1 at tcp://127\.0\.0\.1:\d+ \(host [^)]+\) runs another grader "
                    r"\(cnnlab 0\.1\.0, code [0-9a-f]{12}; this client: cnnlab 0\.1\.0, code [0-9a-f]{12}\)"),
    ],
)  # fmt: skip
def test_a_machine_that_cannot_grade_stops_the_run_at_once(
    pg_course: Any, machine: Path, bare: Path, other: Path, cluster: Cluster, lacking: str, expected: str
) -> None:
    """A scheduler or a worker without the grader, or a worker with another grader version: the run
    stops before any job is submitted, with one line naming that machine and what it lacks; no
    result, no grader-error row per submission."""
    root, local = pg_course
    good = machine.parent.parent
    bad = {"worker": bare, "scheduler": bare, "version": other}[lacking].parent.parent
    cluster.scheduler(bad if lacking == "scheduler" else good)
    cluster.worker(good, "w0")
    cluster.worker(good if lacking == "scheduler" else bad, "w1")
    cluster.wait_for_workers(2)
    out = root / f"out-{lacking}"
    run = subprocess.run(_grade_argv(cluster, out), cwd=cluster.folder, env=_client_env(),
                         capture_output=True, text=True, timeout=300)  # fmt: skip
    lines = [line for line in run.stderr.splitlines() if line.strip()]
    assert run.returncode == 1, run.stderr[-3000:]
    assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr[-3000:]
    assert re.search(expected, lines[0]), lines[0]
    assert "GRADER ERROR" not in run.stdout + run.stderr
    assert not list((out / "results").glob("*.json"))  # nothing was graded


@pytest.mark.slow
def test_the_dashboard_of_a_local_cluster_binds_loopback() -> None:
    from autograder.batch.dask_engine import DaskEngine

    engine = DaskEngine("local", workers=1, log=lambda _: None)
    try:
        link = engine.client.dashboard_link
        assert link.startswith("http://127.0.0.1:"), link
        assert engine.client.scheduler.address.startswith("tcp://127.0.0.1:")
    finally:
        engine.close()


@pytest.mark.slow
@pytest.mark.parametrize("joining", ["other", "bare"])
def test_a_worker_that_joins_mid_batch_without_this_grader(
    pg_course: Any, machine: Path, bare: Path, other: Path, cluster: Cluster, joining: str
) -> None:
    """A worker with another grader version joins mid-batch: the run stops with one line naming
    it (new workers are probed as results come in), before its refusals become rows. A worker
    without the grader at all may instead close at its first task (Dask cannot unpickle it there)
    and Dask grades its jobs elsewhere: then every student has the local pool's points. Never a
    grader-error row."""
    root, local = pg_course
    cluster.env["CNNLAB_JUDGE_TEST_DELAY"] = "1.5"  # the batch outlasts the new worker's start
    cluster.scheduler(machine.parent.parent)
    cluster.worker(machine.parent.parent, "w0")
    cluster.wait_for_workers(1)
    out = root / f"out-joined-{joining}"
    grader = subprocess.Popen(_grade_argv(cluster, out), cwd=cluster.folder, env=_client_env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    deadline = time.monotonic() + 120
    while not list((out / "results").glob("*.json")):
        assert grader.poll() is None, grader.communicate()[1][-3000:] + cluster.logs()
        assert time.monotonic() < deadline, "no results\n" + cluster.logs()
        time.sleep(0.05)
    cluster.worker({"other": other, "bare": bare}[joining].parent.parent, "w1")
    _, err = grader.communicate(timeout=300)
    lines = [line for line in err.splitlines() if line.strip()]
    assert "GRADER ERROR" not in err, err[-3000:]
    if grader.returncode == 0 and joining == "bare":
        assert _points(_rows(out)) == _points(local)
        return
    assert grader.returncode == 1 and len(lines) == 1, err[-3000:] + cluster.logs()
    lacks = {"other": "runs another grader", "bare": "cannot import the grader"}[joining]
    assert re.search(rf"Dask worker w1 at tcp://127\.0\.0\.1:\d+ \(host [^)]+\) {lacks}", lines[0]), lines[0]


def _rows(out: Path) -> dict[str, Any]:
    return {p.stem: json.loads(p.read_text()) for p in sorted((out / "results").glob("*.json"))}


def test_what_keeps_a_machine_from_grading_is_named() -> None:
    """Hand-made probe answers: each lack is one clause naming the machine; a good worker has none."""
    from autograder.batch.dask_engine import machine_problems

    client = {"python": "3.11", "version": "0.1.0", "code": "a" * 64}
    good = {**client, "host": "n1", "confined": True, "sandbox": "bubblewrap"}
    assert machine_problems("Dask worker w1", good, client, True) == []
    assert machine_problems("the scheduler", {**good, "confined": False}, client, False) == []
    lacks = {
        "missing": {"missing": "ModuleNotFoundError: No module named 'autograder'"},
        "python": {**good, "python": "3.12"},
        "code": {**good, "code": "b" * 64},
        "sandbox": {**good, "confined": False, "sandbox": "none: no bubblewrap, no Landlock"},
    }
    expected = {
        "missing": "Dask worker w1 cannot import the grader (ModuleNotFoundError: No module named "
        "'autograder')",
        "python": "Dask worker w1 runs Python 3.12, this client Python 3.11",
        "code": "Dask worker w1 runs another grader (cnnlab 0.1.0, code bbbbbbbbbbbb; this client: cnnlab "
        "0.1.0, code aaaaaaaaaaaa)",
        "sandbox": "Dask worker w1 has no sandbox for student code (none: no bubblewrap, no Landlock): "
        "install bubblewrap",
    }
    for lack, info in lacks.items():
        (problem,) = machine_problems("Dask worker w1", info, client, True)
        assert problem.startswith(expected[lack]), (lack, problem)
