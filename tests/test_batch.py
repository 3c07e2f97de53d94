"""The batch grader (``python -m autograder grade``): sandboxed, parallel, resumable, in the gradebook.

One temporary course root, released for ``02_conv_layer`` only. A module fixture fabricates honest,
hostile and broken students (fixtures of this file, written from the release and the reference) and
grades them all in one batch with small limits; the tests read its rows. ``nbgrader autograde`` runs
once, on two honest students only (the slow part), to prove both graders agree.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import zipfile
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest

from autograder import batch, cases, course, hidden, sandbox, secret
from autograder.manifest import load_manifest
from autograder.reference import ROOT, load_reference
from autograder.sandbox import child, wire

sys.path.insert(0, str(Path(__file__).parent))
import course_env  # noqa: E402
from probes import PROBES  # noqa: E402

pytestmark = pytest.mark.skipif(
    shutil.which("nbgrader", path=str(Path(sys.executable).parent)) is None,
    reason="nbgrader is not installed in this environment",
)

A = "02_conv_layer"
CONV = "cnnlab/conv.py"
TIMEOUT, MEMORY_MB = 8.0, 600
SECRET = "test-course-secret"


def _conv(tasks: list[str] | None = None, mistakes: tuple[str, ...] = ()) -> str:
    return course.reference_variant("conv", tasks, mistakes)


def _stub() -> str:
    return (ROOT / "cnnlab" / "conv.py").read_text()


def _with(base: str, code: str) -> str:
    """``base`` with ``code`` appended: later definitions replace the earlier ones."""
    return base + "\n\n# --- appended by tests/test_batch.py ---\n" + textwrap.dedent(code)


ZEROS = """
def conv2d_forward(x, w, b, stride=1, pad=0):
    Ho, Wo = check_conv_args(x, w, b, stride, pad)
    return np.zeros((x.shape[0], w.shape[0], Ho, Wo)), (x, w, b, stride, pad)

def conv2d_backward(dout, cache):
    x, w, b, stride, pad = cache
    return np.zeros_like(x), np.zeros_like(w), np.zeros_like(b)
"""

# student -> (files, notebook, expected points of 2.1 and 2.2 or None (not fixed), reason fragments)
STUDENTS: dict[str, tuple[dict[str, str | None], Any, tuple[float | None, float | None], list[str]]] = {}


def _students() -> None:
    outside = "/tmp/cnnlab-test-pwned"
    STUDENTS.update(
        {
            "h_complete": ({CONV: _conv()}, "release", (5.0, 5.0), ["ok"]),
            "p_partial": (
                {CONV: _conv(["1.1", "1.2", "2.1"])},
                "release",
                (5.0, 0.0),
                ["Task 2.2: not implemented"],
            ),
            "h_mistakes": (
                {CONV: _conv(None, ("conv2d_stride_ignored", "conv2d_backward_stride_ignored"))},
                "release",
                (None, None),
                ["looks like conv2d_stride_ignored"],
            ),
            "x_allclose": (
                {
                    CONV: _with(
                        _stub(),
                        textwrap.dedent(
                            """
                            import numpy, numpy.testing
                            numpy.allclose = lambda *a, **k: True
                            numpy.isclose = lambda *a, **k: True
                            numpy.array_equal = lambda *a, **k: True
                            numpy.testing.assert_allclose = lambda *a, **k: None
                            """
                        )
                        + ZEROS,
                    )
                },
                "release",
                (0.0, 0.0),
                ["6 of 6 cases failed"],
            ),
            "x_reference": (
                {
                    CONV: _with(
                        _stub(),
                        f"""
                        import sys, types
                        fake = types.ModuleType("cnnlab_reference")
                        fake.conv = sys.modules[__name__]
                        sys.modules["cnnlab_reference"] = fake
                        sys.modules["autograder"] = types.ModuleType("autograder")
                        sys.modules["autograder.reference"] = types.SimpleNamespace(
                            load_reference=lambda: fake
                        )
                        try:  # the reference itself, if the child could read it
                            _src = open({str(ROOT / "solutions" / "cnnlab" / "conv.py")!r}).read()
                            _ns = {{"__name__": "cnnlab.conv_ref"}}
                            exec(_src.replace("from __future__ import annotations", ""), _ns)
                            conv2d_forward, conv2d_backward = _ns["conv2d_forward"], _ns["conv2d_backward"]
                            READ_REFERENCE = True
                        except Exception:
                            READ_REFERENCE = False
                        """,
                    )
                },
                "release",
                (0.0, 0.0),
                ["not implemented"],
            ),
            "x_sysexit": (
                {CONV: _with(_conv(), "def conv2d_forward(*args):\n    import sys\n    sys.exit(3)\n")},
                "release",
                (0.0, 5.0),
                ["Task 2.1: 6 of 6 cases failed"],
            ),
            "x_osexit": (
                {CONV: _with(_conv(), "def conv2d_forward(*args):\n    import os\n    os._exit(7)\n")},
                "release",
                (0.0, 5.0),
                ["Task 2.1: the code ended the grading process"],
            ),
            "x_loop": (
                {CONV: _with(_conv(), "def conv2d_forward(*args):\n    while True:\n        pass\n")},
                "release",
                (0.0, 5.0),
                [f"Task 2.1: time limit ({TIMEOUT:g} s) exceeded"],
            ),
            "x_memory": (
                {CONV: _with(_conv(), "def conv2d_forward(*args):\n    return np.ones((1 << 31,)), None\n")},
                "release",
                (0.0, 5.0),
                [f"Task 2.1: memory limit ({MEMORY_MB} MB) exceeded"],
            ),
            "x_print": (
                {
                    CONV: _with(
                        _conv(),
                        """
                        _forward = conv2d_forward
                        def conv2d_forward(*args):
                            import sys
                            print("x" * 5_000_000)
                            print("y" * 5_000_000, file=sys.stderr)
                            return _forward(*args)
                        """,
                    )
                },
                "release",
                (5.0, 5.0),
                ["ok"],
            ),
            "x_syntax": (
                {CONV: _conv() + "\ndef broken(:\n"},
                "release",
                (0.0, 0.0),
                ["Task 2.1: the cnnlab package does not import"],
            ),
            "x_import_exit": (
                {CONV: "import sys\nsys.exit(0)\n"},
                "release",
                (0.0, 0.0),
                ["the cnnlab package does not import"],
            ),
            "x_missing": ({CONV: None}, "release", (0.0, 0.0), [f"{CONV} is missing from the submission"]),
            "x_builtins": (
                {
                    CONV: _with(
                        _stub(),
                        "import builtins\n"
                        "builtins.isinstance = lambda *a: True\n"
                        "builtins.len = lambda x: 0\n",
                    )
                },
                "release",
                (0.0, 0.0),
                [],
            ),
            "x_write": (
                {
                    CONV: _with(
                        _conv(),
                        f"""
                        import os, pathlib
                        for _target in [{outside!r}, os.environ.get("HOME", ".") + "/../../PWNED",
                                        {str(ROOT / "PWNED")!r}, "/root/PWNED"]:
                            try:
                                pathlib.Path(_target).write_text("pwned")
                            except Exception:
                                pass
                        pathlib.Path("inside.txt").write_text("writing in the sandbox works")
                        """,
                    )
                },
                "release",
                (5.0, 5.0),
                ["ok"],
            ),
            "x_kill": (
                {
                    CONV: _with(
                        _conv(),
                        """
                        import os, signal
                        for _pid in (os.getppid(), 1):
                            try:
                                os.kill(_pid, signal.SIGKILL)
                            except Exception:
                                pass
                        """,
                    )
                },
                "release",
                (5.0, 5.0),
                ["ok"],
            ),
            # its own cache layout (a dict), used consistently: full marks on the backward task too,
            # graded on the cache of its own forward inside the sandbox
            "f_own_cache": (
                {
                    CONV: _with(
                        _conv(),
                        """
                        _forward, _backward = conv2d_forward, conv2d_backward

                        def conv2d_forward(x, w, b, stride=1, pad=0):
                            out, cache = _forward(x, w, b, stride, pad)
                            return out, {"x": cache[0], "w": cache[1], "b": cache[2], "s": stride, "p": pad}

                        def conv2d_backward(dout, cache):
                            c = cache
                            return _backward(dout, (c["x"], c["w"], c["b"], c["s"], c["p"]))
                        """,
                    )
                },
                "release",
                (5.0, 5.0),
                ["ok"],
            ),
            "x_fork": (
                {
                    CONV: _with(
                        _conv(),
                        """
                        import os, time
                        if os.fork() == 0:
                            os.setsid()
                            time.sleep(600)
                            os._exit(0)
                        """,
                    )
                },
                "release",
                (0.0, 0.0),
                # student code may start no process (seccomp): the fork fails, and so does the import
                ["does not import"],
            ),
            "x_nb_invalid": (
                {CONV: _conv()},
                "invalid_json",
                (5.0, 5.0),
                ["02_conv_layer.ipynb is not valid JSON"],
            ),
            "x_nb_missing": ({CONV: _conv()}, "missing", (5.0, 5.0), ["02_conv_layer.ipynb is missing"]),
            "x_nb_cells": (
                {CONV: _conv()},
                {"delete_cells": ["task2_1"], "duplicate_cells": ["task2_2"]},
                (5.0, 5.0),
                ["Task 2.1 (task2_1) was deleted", "Task 2.2 (task2_2) appears 2 times"],
            ),
            "x_nb_retyped": (
                {CONV: _conv()},
                {"markdown_cells": ["task2_1"], "replace_cells": {"task2_2": "print(5)"}},
                (5.0, 5.0),
                ["changed into a markdown cell", "Task 2.2 (task2_2) was edited"],
            ),
        }
    )


_students()
HONEST = ["h_complete", "h_mistakes"]  # nbgrader autograde --student=h_*: complete, and partial credit


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A released course (02_conv_layer only) with every student of :data:`STUDENTS` submitted."""
    root = tmp_path_factory.mktemp("course")
    # each grading path has its own secret; this course gives nbgrader's the batch grader's value on
    # purpose, so that both graders draw the same cases and their points can be compared
    with course_env.course(root, SECRET, CNNLAB_NBGRADER_SECRET=SECRET):
        manifest = load_manifest()
        course.release(root, {A: manifest[A]}, log=lambda _: None)
        for student, (files, notebook, _, _) in STUDENTS.items():
            batch.fabricate_submission(root, student, manifest[A], files, notebook)
        yield root


@pytest.fixture(scope="module")
def nbgrader_scores(root: Path) -> dict[str, dict[str, float]]:
    """``nbgrader autograde`` of the honest students (``--student=h_*``), read from the gradebook."""
    run = course.run_nbgrader(["autograde", A, "--student=h_*", "--force"], root)
    assert run.ok, run.output[-3000:]
    table = course.grade_table(root, HONEST, {A: load_manifest()[A]})
    return {s: {t: table.points(s, t) for t in ("2.1", "2.2")} for s in HONEST}


@pytest.fixture(scope="module")
def graded(root: Path, nbgrader_scores: dict[str, dict[str, float]]) -> batch.BatchResult:
    options = batch.Options(
        workers=2,
        limits=sandbox.Limits(timeout=TIMEOUT, memory_mb=MEMORY_MB),
        progress=False,
        log=lambda _: None,
    )
    return batch.grade_assignment(A, root, options)


def _rows(result: batch.BatchResult) -> dict[str, dict[str, Any]]:
    return {r["student"]: r for r in result.rows}


# --- scores and reasons -------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("student", list(STUDENTS))
def test_every_submission_gets_its_score_and_reason(graded: batch.BatchResult, student: str) -> None:
    row = _rows(graded)[student]
    _, _, expected, fragments = STUDENTS[student]
    assert row["grader_error"] is None, row["grader_error"]
    for task, points in zip(("2.1", "2.2"), expected, strict=True):
        if points is not None:
            assert row["tasks"][task]["points"] == points, (task, row["reason"], row["tasks"][task]["report"])
    for fragment in fragments:
        assert fragment in row["reason"], row["reason"]
    assert row["total"] == round(sum(t["points"] for t in row["tasks"].values()), 2)


@pytest.mark.slow
def test_the_batch_is_complete_and_every_child_was_sandboxed(graded: batch.BatchResult) -> None:
    assert sorted(r["student"] for r in graded.rows) == sorted(STUDENTS)
    assert graded.grader_errors == []
    for row in graded.rows:
        hello = row["sandbox"]["hello"]
        assert hello["landlock"] >= 1 or hello["uid"] != 0, row["student"]
        if hello["uid"] == 0:
            assert hello.get("caps_dropped")


@pytest.mark.slow
def test_writes_outside_the_sandbox_fail(graded: batch.BatchResult, root: Path) -> None:
    assert _rows(graded)["x_write"]["total"] == 10.0
    for path in [Path("/tmp/cnnlab-test-pwned"), ROOT / "PWNED", Path("/root/PWNED"), root / "PWNED"]:
        assert not path.exists(), f"{path} was written by student code"


@pytest.mark.slow
def test_hostile_tricks_earn_nothing(graded: batch.BatchResult) -> None:
    rows = _rows(graded)
    # np.allclose patched to always True: the comparison happens in the parent, with the real numpy
    assert rows["x_allclose"]["total"] == 0.0
    assert any("largest error" in m for m in rows["x_allclose"]["tasks"]["2.1"]["messages"])
    # faking cnnlab_reference / autograder.reference in the child changes nothing, and the child cannot
    # read solutions/ (if it could, its conv2d_forward would be the reference and score 5)
    assert rows["x_reference"]["total"] == 0.0
    assert rows["x_builtins"]["total"] == 0.0


@pytest.mark.slow
def test_timeout_and_memory_limit_are_reported(graded: batch.BatchResult) -> None:
    rows = _rows(graded)
    loop, memory = rows["x_loop"]["tasks"]["2.1"], rows["x_memory"]["tasks"]["2.1"]
    assert loop["status"] == "timeout" and "time limit" in loop["messages"][-1]
    assert loop["seconds"] <= TIMEOUT
    assert memory["status"] == "memory"
    assert any("MemoryError" in m for m in memory["messages"])
    assert rows["x_osexit"]["tasks"]["2.1"]["status"] == "crashed"
    # the next task runs in a new child, with the time that is left
    assert rows["x_loop"]["sandbox"]["children"] == 2


@pytest.mark.slow
def test_honest_scores_equal_nbgrader_autograde(
    graded: batch.BatchResult, nbgrader_scores: dict[str, Any]
) -> None:
    rows = _rows(graded)
    for student in HONEST:
        ours = {t: rows[student]["tasks"][t]["points"] for t in ("2.1", "2.2")}
        assert ours == nbgrader_scores[student], student
    # named mistakes earn only what they never touch, in both graders alike (scoring.grade_runs: the
    # cases a recognised mistake also passes cannot tell the function from it; the backward's db,
    # which ignoring the stride leaves right, keeps its third of the failed cases)
    assert 0 < rows["h_mistakes"]["total"] <= 5 / 3


@pytest.mark.slow
def test_gradebook_round_trip_with_nbgrader_export(
    graded: batch.BatchResult, root: Path, tmp_path: Path
) -> None:
    run = course.run_nbgrader(["export", "--to", str(tmp_path / "export.csv")], root)
    assert run.ok, run.output[-2000:]
    exported = {s: v for (s, a), v in course.read_csv_totals(tmp_path / "export.csv").items() if a == A}
    with open(graded.out / "grades.csv", newline="") as fh:
        ours = {row["student_id"]: float(row["total"]) for row in csv.DictReader(fh)}
    assert ours == pytest.approx(exported, abs=1e-9)  # nbgrader sums the task scores in floats
    # the autograded notebooks carry the reports as the check cells' outputs, hidden tests restored
    nb = json.loads((root / "autograded" / "p_partial" / A / f"{A}.ipynb").read_text())  # batch-graded only
    texts = ["".join(o.get("text", "")) for c in nb["cells"] for o in c.get("outputs", [])]
    assert any("Task 2.2 conv2d_backward: passed 0 of" in t for t in texts)


@pytest.mark.slow
def test_exports_feedback_and_class_summary(graded: batch.BatchResult) -> None:
    out = graded.out
    feedback = (out / "feedback" / "h_mistakes.md").read_text()
    assert "Task 2.1" in feedback and "This looks like" in feedback
    for text in [p.read_text() for p in (out / "feedback").glob("*.md")]:
        assert "grade_task" not in text and "HIDDEN TESTS" not in text and "cnnlab_reference" not in text
    summary = json.loads((out / "summary.json").read_text())
    assert summary["tasks"]["2.1"]["most_common_mistake"] == "conv2d_stride_ignored"
    assert summary["tasks"]["2.1"]["lost_points"] >= 10
    svg = (out / "summary.svg").read_text()
    assert "<desc" in svg and "conv2d_stride_ignored" in svg


@pytest.mark.slow
def test_a_rerun_is_idempotent_and_cached(graded: batch.BatchResult, root: Path) -> None:
    options = batch.Options(
        workers=2,
        limits=sandbox.Limits(timeout=TIMEOUT, memory_mb=MEMORY_MB),
        progress=False,
        log=lambda _: None,
        gradebook=False,
        students=["h_complete", "h_mistakes", "x_loop"],
    )
    again = batch.grade_assignment(A, root, options)
    assert again.graded == 0 and again.cached == 3
    before = _rows(graded)
    for row in again.rows:
        assert row == before[row["student"]]


# --- kill and resume ----------------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_and_resume(root: Path, graded: batch.BatchResult, tmp_path: Path) -> None:
    """SIGKILL the grader after two results; the re-run keeps them and grades only the rest."""
    students = ["h_complete", "p_partial", "h_mistakes", "x_allclose", "x_nb_invalid", "x_sysexit"]
    out = tmp_path / "resume"
    cmd = [sys.executable, "-m", "autograder.batch", "grade", A, "--out", str(out), "--workers", "1"]
    cmd += ["--no-gradebook", "--quiet", "--timeout", str(TIMEOUT)] + [f"--student={s}" for s in students]
    env = {**os.environ, batch.TEST_DELAY_ENV: "1.0", "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 90
    while len(list((out / "results").glob("*.json"))) < 2:
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]  # type: ignore[union-attr]
        assert time.monotonic() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = {p.name: p.stat().st_mtime_ns for p in (out / "results").glob("*.json")}
    assert 2 <= len(kept) < len(students)
    env.pop(batch.TEST_DELAY_ENV)
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    results = {p.name: p for p in (out / "results").glob("*.json")}
    assert sorted(results) == sorted(f"{s}.json" for s in students)
    assert {n: results[n].stat().st_mtime_ns for n in kept} == kept  # not graded again
    assert not list((out / "results").glob(".*.tmp"))
    # identical to the uninterrupted batch of the fixture
    full = _rows(graded)
    for student in students:
        row = json.loads(results[f"{student}.json"].read_text())
        for task in ("2.1", "2.2"):
            assert row["tasks"][task]["points"] == full[student]["tasks"][task]["points"]
            assert row["tasks"][task]["messages"] == full[student]["tasks"][task]["messages"]
        assert row["reason"] == full[student]["reason"]


# --- zip files from a learning management system --------------------------------------------------------


def _zip(path: Path, members: dict[str, bytes | str]) -> Path:
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _released(root: Path) -> dict[str, str]:
    folder = root / "release" / A
    return {p.relative_to(folder).as_posix(): p.read_text() for p in folder.rglob("*") if p.is_file()}


def test_zip_names() -> None:
    assert batch.zip_student("ada.zip") == ("ada", -1)
    assert batch.zip_student("lovelaceada_12345_67890_02_conv_layer.zip") == ("lovelaceada", 67890)
    assert batch.zip_student("lovelaceada_LATE_12345_67891_my_work.zip") == ("lovelaceada", 67891)
    assert batch.zip_student("two words.zip") == (None, -1)


@pytest.mark.slow
def test_zips_are_unpacked_safely_and_graded(root: Path, graded: batch.BatchResult, tmp_path: Path) -> None:
    zips = tmp_path / "zips"
    zips.mkdir()
    files = _released(root)
    files[CONV] = _conv()
    _zip(zips / "zada.zip", files)  # files at the top
    nested = {f"Submission folder/{A}/{k}": v for k, v in files.items()}
    nested["__MACOSX/._conv.py"] = b"\x00junk"
    nested[f"Submission folder/{A}/.DS_Store"] = b"junk"
    _zip(zips / "zcanvas_111_222_assignment.zip", nested)  # Canvas name, nested two levels
    _zip(zips / "zcanvas_111_100_assignment.zip", {CONV: "older"})  # an older Canvas submission
    _zip(zips / "zevil.zip", {"../../../../tmp/cnnlab-zip-escape": "x", **files})
    bomb = tmp_path / "zbomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr(CONV, "")
        for i in range(11):  # 11 x 10 MB of zeros: 110 MB unpacked from about 100 kB
            zf.writestr(f"cnnlab/big{i}.bin", b"\0" * (10 * 2**20))
    shutil.move(bomb, zips / "zbomb.zip")
    _zip(zips / "znothing.zip", {"readme.txt": "hello"})
    (zips / "not a student.zip").write_bytes(b"not a zip")
    options = batch.Options(
        workers=2,
        limits=sandbox.Limits(timeout=TIMEOUT, memory_mb=MEMORY_MB),
        progress=False,
        log=lambda _: None,
        zips=zips,
        students=["zada", "zcanvas", "zevil", "zbomb", "znothing"],
        out=tmp_path / "out",
    )
    result = batch.grade_assignment(A, root, options)
    rows = _rows(result)
    assert rows["zada"]["total"] == 10.0 and rows["zcanvas"]["total"] == 10.0
    assert (root / "submitted" / "zcanvas" / A / CONV).read_text() == files[CONV]
    assert not (root / "submitted" / "zcanvas" / A / "__MACOSX").exists()
    assert not Path("/tmp/cnnlab-zip-escape").exists()
    assert "unsafe path" in rows["zevil"]["reason"] and rows["zevil"]["total"] == 0
    assert "more than 100 MB" in rows["zbomb"]["reason"] and rows["zbomb"]["total"] == 0
    assert "holds no file of 02_conv_layer" in rows["znothing"]["reason"]
    assert not (root / "submitted" / "zevil").exists() and not (root / "submitted" / "zbomb").exists()
    skipped = [i for i in result.intakes if i.student is None]
    assert [i.zip.name for i in skipped] == ["not a student.zip"]
    canvas = next(i for i in result.intakes if i.student == "zcanvas")
    assert canvas.zip.name == "zcanvas_111_222_assignment.zip"


# --- pieces -------------------------------------------------------------------------------------------


def test_each_grading_path_has_its_own_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """nbgrader's kernel (student code unconfined beside it) draws from a secret of its own: what a
    student reads there predicts nothing of the batch grader's cases."""
    monkeypatch.delenv(hidden.SEED_ENV, raising=False)
    for variable, _ in secret.GRADERS.values():
        monkeypatch.delenv(variable, raising=False)
    folder = tmp_path / "autograded" / "ada" / A
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    kernel = hidden.grading_seed(None, "2.1")  # creates nbgrader's secret on first use
    nb_file = tmp_path / secret.GRADERS["nbgrader"][1]
    assert nb_file.stat().st_mode & 0o077 == 0
    assert not (tmp_path / secret.SECRET_FILE).exists()  # the batch grader's is not touched
    batch_seed = batch.student_seeds(tmp_path, "ada", ["2.1"])["2.1"]
    assert (tmp_path / secret.SECRET_FILE).stat().st_mode & 0o077 == 0
    assert batch_seed != kernel
    # knowing nbgrader's secret gives nbgrader's seed, never the batch grader's
    leaked = nb_file.read_text().strip().encode()
    assert secret.student_seed(leaked, "ada", "2.1") == kernel != batch_seed
    assert batch.student_seeds(tmp_path, "bob", ["2.1"])["2.1"] != batch_seed
    assert hidden.grading_seed(None, "2.2") != kernel
    monkeypatch.chdir(tmp_path)
    assert hidden.grading_seed(None, "2.1") == hidden.DEFAULT_SEED  # outside nbgrader
    monkeypatch.setenv(hidden.SEED_ENV, "99")
    assert hidden.grading_seed(None, "2.1") == 99


def test_nbgrader_never_passes_the_batch_secret_to_its_kernels(monkeypatch: pytest.MonkeyPatch) -> None:
    from autograder.nbgrader_run import nbgrader_env

    monkeypatch.setenv(secret.SECRET_ENV, "batch-only")
    assert secret.SECRET_ENV not in nbgrader_env(Path("."))
    config = (ROOT / "autograder" / "nbgrader_config.py").read_text()
    assert 'os.environ.pop("CNNLAB_COURSE_SECRET"' in config


@pytest.mark.parametrize("task_id", cases.TASK_IDS)
def test_most_hidden_cases_are_drawn_per_student(task_id: str) -> None:
    """Reading the grader's source does not give the answers: for two students, most of a task's
    hidden cases differ (arguments compared value by value)."""
    checks = cases.verdicts_module(load_reference())
    one = cases.task_inputs(task_id, cases.task_rng(task_id, 11))
    two = cases.task_inputs(task_id, cases.task_rng(task_id, 12))
    assert len(one) == len(two)
    same = sum(checks.same_values(list(a.args), list(b.args)) for a, b in zip(one, two, strict=True))
    assert same < len(one) / 2, f"Task {task_id}: {same} of {len(one)} hidden cases are the same for everyone"


def test_the_child_restores_the_same_functions_as_the_hidden_grader(tmp_path: Path) -> None:
    ref = load_reference()
    own = {m: [t.function for t in ref.tasks.TASKS.values() if t.module == m] for m in cases.ISOLATED_MODULES}
    shutil.copytree(ROOT / "cnnlab", tmp_path / ".release" / "cnnlab")
    sys.path.insert(0, str(tmp_path))
    try:
        child._bare_package(child.RELEASE_PACKAGE, str(tmp_path / ".release" / "cnnlab"))
        isolation = child._Isolation(list(cases.ISOLATED_MODULES), own)
        got = {name: sorted(restore) for name, restore in isolation.pairs}
    finally:
        sys.path.remove(str(tmp_path))
        for key in [k for k in sys.modules if k.startswith(child.RELEASE_PACKAGE)]:
            del sys.modules[key]
    expected = {
        m: sorted(cases.restored_functions(getattr(ref, m), m, ref.tasks.TASKS))
        for m in cases.ISOLATED_MODULES
    }
    assert got == expected
    assert "pad2d" in got["conv"] and "conv2d_forward" not in got["conv"]
    assert "conv2d_forward" in got["residual"]  # the provided fast convolution


def test_the_wire_format_never_unpickles_and_caps_sizes() -> None:
    blobs: list[bytes] = []
    value = (np.arange(6.0).reshape(2, 3), {"w1": np.float64(2.5), "n": 3}, [None, "s", float("nan")])
    tree = wire.encode(value, blobs)
    back = wire.decode(json.loads(json.dumps(tree)), blobs)
    assert np.array_equal(back[0], value[0]) and back[1]["w1"] == 2.5 and back[1]["n"] == 3
    assert isinstance(back[1]["w1"], np.float64) and np.isnan(back[2][2])
    buf = io.BytesIO()
    np.save(buf, np.array([object()], dtype=object), allow_pickle=True)
    with pytest.raises(wire.ProtocolError, match="Python objects"):
        wire.load_npy(buf.getvalue())
    lie = wire.npy_bytes(np.zeros(4))
    lie = lie.replace(b"(4,)", b"(8,)")  # the header claims more data than there is
    with pytest.raises(wire.ProtocolError):
        wire.load_npy(lie)
    with pytest.raises(wire.ProtocolError):
        wire.decode({"$pickle": "cos\nsystem\n"}, [])
    with pytest.raises(wire.ProtocolError):
        wire.FrameReader(max_frame=100).feed((10**6).to_bytes(8, "big"))
    assert isinstance(wire.decode(wire.encode(SimpleNamespace(), []), []), wire.Opaque)


@pytest.mark.parametrize(
    "array",
    [
        np.float64(2.5),
        np.zeros(0),
        np.arange(6.0).reshape(2, 3),
        np.arange(6).reshape(3, 2).T,  # not C-contiguous
        np.array([True, False]),
        np.zeros((2, 0, 3), np.float32),
        np.arange(4.0).astype(np.complex128),
        np.array(7, dtype=np.int8),
        np.zeros(3, dtype=">f8"),  # big-endian: numpy writes it
        np.zeros(2, dtype=[("a", "<f8")]),  # structured: numpy writes it
    ],
    ids=lambda a: f"{a.dtype.str}{a.shape}",
)
def test_arrays_cross_the_wire_as_numpy_reads_and_writes_them(array: Any) -> None:
    data = wire.npy_bytes(array)
    expected = io.BytesIO()
    np.save(expected, np.asarray(array).copy(order="C") if np.ndim(array) else np.asarray(array))
    assert data == expected.getvalue()  # the very bytes numpy writes
    back = wire.load_npy(data)
    assert back.dtype == np.asarray(array).dtype and back.shape == np.shape(array)
    assert np.array_equal(back, array)


@pytest.mark.parametrize(
    "header",
    [
        "{'descr': '|O', 'fortran_order': False, 'shape': (1,), }",  # objects: numpy's parser, refused
        "{'descr': '<f8', 'fortran_order': False, 'shape': (99999999999,), }",  # more than the data
        "{'descr': '<f8', 'fortran_order': False, 'shape': (-1,), }",
        "{'descr': '<f8', 'fortran_order': False, 'shape': (__import__('os'),), }",
        "not a header at all",
    ],
)
def test_a_forged_array_header_is_refused(header: str) -> None:
    body = header + " " * (-(10 + len(header) + 1) % 64) + "\n"
    data = b"\x93NUMPY\x01\x00" + len(body).to_bytes(2, "little") + body.encode() + bytes(8)
    with pytest.raises(wire.ProtocolError):
        wire.load_npy(data)


@pytest.mark.parametrize("kind", ["bubblewrap", "fallback", "zygote"])
def test_the_sandbox_confines_the_child(tmp_path: Path, kind: str) -> None:
    """Probes run as a student's function; what they report comes back as data."""
    course_root = tmp_path / "course"
    (course_root / "submitted" / "bob" / A / "cnnlab").mkdir(parents=True)
    (course_root / "submitted" / "bob" / A / CONV).write_text("# bob's work")
    (course_root / secret.SECRET_FILE).write_text("s3cret")
    (course_root / "gradebook.db").write_text("grades")
    submission = tmp_path / "me"
    (submission / "cnnlab").mkdir(parents=True)
    (submission / CONV).write_text(_stub() + "\n" + PROBES)
    limits = sandbox.Limits(timeout=30, memory_mb=600, fsize_mb=1)
    probes = {
        "the reference": ("read", str(ROOT / "solutions" / "cnnlab" / "conv.py")),
        "the grader": ("read", str(ROOT / "autograder" / "hidden.py")),
        "the course secret": ("read", str(course_root / secret.SECRET_FILE)),
        "another submission": ("read", str(course_root / "submitted" / "bob" / A / CONV)),
        "the parent's environment": ("read", f"/proc/{os.getpid()}/environ"),
        "the gradebook": ("read", str(course_root / "gradebook.db")),
        "the secret, by a relative path": ("relative", str(course_root / secret.SECRET_FILE)),
        "the secret, through /proc/*/cwd": ("proc cwd", secret.SECRET_FILE),
        "the course, by an inherited descriptor": ("inherited fds", str(tmp_path)),
        "write in /tmp": ("write", str(tmp_path / "outside.txt")),
        "write into the course": ("write", str(course_root / "PWNED")),
        "write in the sandbox": ("write", "inside.txt"),
        "a file over RLIMIT_FSIZE": ("big file", 2 * 2**20),
        "TCP": ("connect", 22),
        "signal the parent": ("signal", os.getpid()),
        "chown (a capability)": ("chown", 0),
        "import the reference": ("import", "cnnlab_reference"),
        "2 GB of memory": ("memory", 2 * 2**30),
    }
    spec = sandbox.TaskSpec("1.1", "conv", "conv_output_size", list(probes.values()))
    bubblewrap = kind != "fallback"
    mode = sandbox.sandbox_mode(bubblewrap=bubblewrap)
    if bubblewrap and not mode.bwrap:
        pytest.skip(f"bubblewrap does not work here: {mode.advice}")
    if kind == "zygote" and not mode.zygote:
        pytest.skip(f"no zygote here: {mode.advice}")
    mode = dataclasses.replace(mode, zygote=kind == "zygote")
    if not bubblewrap and not mode.landlock:
        pytest.skip("no Landlock in this kernel: the fallback's confinement is Landlock's")
    box = sandbox.Sandbox(ROOT / "cnnlab", limits, mode=mode)
    [outcome], info = box.run(sandbox.Work({CONV: (submission / CONV).read_bytes()}, [spec], {}, ["conv"]))
    assert info["zygote"] == (kind == "zygote"), info
    got = dict(zip(probes, [value for value, _ in outcome.cases], strict=True))
    assert got.pop("write in the sandbox") == "allowed"
    assert got.pop("a file over RLIMIT_FSIZE") == "EFBIG"
    assert got.pop("import the reference") == "ModuleNotFoundError"
    assert got.pop("2 GB of memory") == "MemoryError"
    if not bubblewrap and info["hello"]["landlock"] < 6:
        got.pop("signal the parent")
    # not there at all (bubblewrap mounts none of it), refused, or another PID namespace
    bad = {k: v for k, v in got.items() if v not in ("EACCES", "EPERM", "ENOENT", "EROFS", "ESRCH", "EBADF")}
    assert not bad, bad
    assert not (tmp_path / "outside.txt").exists() and not (course_root / "PWNED").exists()


def test_a_stale_release_is_detected(tmp_path: Path) -> None:
    from autograder.reference import REFERENCE_DIR

    for path in REFERENCE_DIR.glob("*.py"):
        (tmp_path / path.name).write_text("# a build banner\n" + path.read_text())
    assert batch.release_drift(tmp_path) == []
    (tmp_path / "fast.py").write_text((tmp_path / "fast.py").read_text().replace("+ b", "+ 0 * b"))
    assert batch.release_drift(tmp_path) == ["fast.py"]
