"""The visible checks (``cnnlab/_internal/checks.py``): the comparison and diagnosis core on hand-made arrays,
and ``check_task`` on the reference (passes), on the generated stubs (NotImplementedError naming the
task) and in nbgrader's autograde mode (prints, never raises)."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from autograder import build, cases, mistakes
from autograder.reference import ROOT, load_package, load_reference

TASK_IDS = cases.TASK_IDS


@pytest.fixture(scope="session")
def ref() -> ModuleType:
    return load_reference()


@pytest.fixture(scope="session")
def checks(ref: ModuleType) -> ModuleType:
    return importlib.import_module(f"{ref.__name__}.checks")


@pytest.fixture(scope="session")
def cases_file(ref: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """check_cases.json as the current code generates it (independent of the committed release)."""
    path = tmp_path_factory.mktemp("cases") / "check_cases.json"
    path.write_text(json.dumps(build.visible_cases(ref), indent=1, sort_keys=True))
    return path


@pytest.fixture
def ref_checks(checks: ModuleType, cases_file: Path, monkeypatch: pytest.MonkeyPatch) -> ModuleType:
    monkeypatch.setattr(checks, "CASES_FILE", cases_file)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    return checks


@pytest.fixture(scope="session")
def stubs() -> ModuleType:
    """The generated student package (``make release`` / ``python -m tools.build``)."""
    if not (ROOT / "cnnlab" / "conv.py").exists():
        pytest.fail("cnnlab/ has not been built: run `python -m tools.build` (make release) first")
    load_package(ROOT / "cnnlab", "cnnlab_student_stubs")
    return importlib.import_module("cnnlab_student_stubs.checks")


# --------------------------------------------------------------------------- compare_arrays


def test_compare_arrays_accepts_equal_and_tiny_differences(checks: ModuleType) -> None:
    a = np.linspace(-1, 1, 12).reshape(3, 4)
    assert checks.compare_arrays(a.copy(), a) is None
    assert checks.compare_arrays(a + 1e-12, a) is None
    assert checks.compare_arrays(np.zeros(3), np.zeros(3)) is None


def test_compare_arrays_reports_largest_error_where_and_tolerance(checks: ModuleType) -> None:
    expected = np.zeros((2, 3))
    got = expected.copy()
    got[1, 2] = 0.5
    got[0, 0] = 0.1
    message = checks.compare_arrays(got, expected, name="out")
    assert message is not None
    assert "out" in message and "(1, 2)" in message
    assert "largest error 0.5" in message and "tolerance 1e-07" in message


@pytest.mark.parametrize(
    ("got", "fragment"),
    [
        (None, "is None"),
        ([0.0, 0.0], "a list"),
        (np.zeros(3), "shape (3,), expected (2,)"),
        (np.zeros(2, dtype=np.float32), "dtype float32, expected float64"),
        (np.zeros(2, dtype=np.int64), "dtype int64"),
        (np.array([0.0, np.nan]), "contains nan at index (1,)"),
        (np.array([np.inf, 0.0]), "contains inf at index (0,)"),
    ],
)
def test_compare_arrays_names_the_problem(checks: ModuleType, got: object, fragment: str) -> None:
    message = checks.compare_arrays(got, np.zeros(2))
    assert message is not None and fragment in message


def test_compare_values_on_ints(checks: ModuleType) -> None:
    assert checks.compare_values(3, 3) is None
    assert checks.compare_values(np.int64(3), 3) is None
    assert "expected 3" in checks.compare_values(4, 3)
    assert "float" in checks.compare_values(3.0, 3)
    assert checks.compare_values(True, 1) is not None


def test_relative_error(checks: ModuleType) -> None:
    assert checks.relative_error(np.zeros(3), np.zeros(3)) == 0.0
    assert checks.relative_error(np.array([1.0, 2.0]), np.array([1.0, 3.0])) == pytest.approx(
        1 / 5
    )  # 1 / (2 + 3)


# --------------------------------------------------------------------------- outcomes and variants


def test_split_result_reports_malformed_results(checks: ModuleType) -> None:
    assert "returned None" in checks.split_result("2.1", None).message
    assert "(out, cache)" in checks.split_result("2.1", np.zeros(2)).message
    assert "(dx, dw, db)" in checks.split_result("2.2", (1, 2)).message
    assert "'w1'" in checks.split_result("4.2", (np.zeros(1), {"w1": 1})).message
    assert checks.split_result("2.2", (1, 2, 3)) == {"dx": 1, "dw": 2, "db": 3}


def test_problems_for_exceptions(checks: ModuleType) -> None:
    expected = {"out": np.zeros(2)}
    stub = checks.Raised("NotImplementedError", "Task 2.1: implement conv2d_forward in cnnlab/conv.py")
    assert checks.problems("2.1", stub, expected) == [
        "Task 2.1 is not implemented yet (NotImplementedError: Task 2.1: implement conv2d_forward in "
        "cnnlab/conv.py)"
    ]
    assert checks.problems("2.1", checks.Raised("IndexError", "boom"), expected) == [
        "raised IndexError: boom"
    ]
    must_raise = checks.Raised("ValueError", "too big")
    assert checks.problems("1.1", checks.Raised("ValueError", "other words"), must_raise) == []
    assert "must raise ValueError" in checks.problems("1.1", {"M": 3}, must_raise)[0]


def test_match_variants_full_partial_and_uninformative(checks: ModuleType) -> None:
    expected = {"dx": np.ones(3), "dw": np.ones(2), "db": np.ones(1)}
    variants = {
        "same_as_expected": dict(expected),
        "bad_db": {**expected, "db": np.full(1, 2.0)},
        "bad_dx": {**expected, "dx": np.zeros(3)},
    }
    got = {**expected, "db": np.full(1, 2.0)}
    assert checks.match_variants(got, expected, variants) == [("bad_db", None)]
    # two mistakes at once: each wrong part is matched on its own
    got = {**expected, "db": np.full(1, 2.0), "dx": np.zeros(3)}
    assert sorted(checks.match_variants(got, expected, variants)) == [("bad_db", "db"), ("bad_dx", "dx")]
    # the right answer matches nothing, even a variant that equals it
    assert checks.match_variants(expected, expected, variants) == []


def test_exceptions_name_only_consistent_mistakes(checks: ModuleType) -> None:
    err = checks.Raised("ValueError", "shape-mismatch for sum")
    ok1, ok2 = {"out": np.zeros(2)}, {"out": np.ones(2)}
    results = [  # (got, expected, variants) for two cases
        (ok1, ok1, {"a": err}),  # mistake a crashes where the student is right
        (err, ok2, {"a": err, "b": err}),
    ]
    assert checks.consistent_mistakes(results) == {"b"}
    got, expected, variants = results[1]
    assert checks.match_variants(got, expected, variants) == [("a", None), ("b", None)]
    assert checks.match_variants(got, expected, variants, consistent={"b"}) == [("b", None)]


def test_diagnose_appends_the_mistake_message(checks: ModuleType) -> None:
    expected = {"out": np.ones((1, 1, 2, 2))}
    variants = {"conv2d_no_bias": {"out": np.zeros((1, 1, 2, 2))}}
    messages = {"conv2d_no_bias": "You forgot the bias."}
    found = checks.diagnose("2.1", {"out": np.zeros((1, 1, 2, 2))}, expected, variants, messages)
    assert found is not None and found.hints == ["You forgot the bias."]
    assert "This looks like: You forgot the bias." in found.text()
    assert checks.diagnose("2.1", expected, expected, variants, messages) is None


def test_find_mutation_in_nested_arguments(checks: ModuleType) -> None:
    before = (np.zeros(2), (np.ones(3), 2, 1))
    after = (np.zeros(2), (np.array([1.0, 0.0, 1.0]), 2, 1))
    message = checks.find_mutation("3.2", before, after)
    assert message is not None and "cache[0]" in message and "copy" in message
    assert checks.find_mutation("3.2", before, (np.zeros(2), (np.ones(3), 2, 1))) is None
    params = {"w1": np.zeros(2)}
    assert "params['w1']" in checks.find_mutation(
        "4.1", (np.zeros(1), params, 1.0), (np.zeros(1), {"w1": np.ones(2)}, 1.0)
    )


def test_json_round_trip(checks: ModuleType) -> None:
    value = [
        np.arange(6.0).reshape(2, 3),
        (1, 2.5, None),
        {"w1": np.zeros(1)},
        checks.Raised("ValueError", "x"),
    ]
    back = checks.from_json(json.loads(json.dumps(checks.to_json(value))))
    assert checks.close_enough(back[0], value[0]) and back[0].dtype == np.float64
    assert back[1] == (1, 2.5, None) and back[3] == value[3]
    assert back[2].keys() == {"w1"}


def test_visible_cases_are_deterministic_small_and_complete(ref: ModuleType) -> None:
    first = json.dumps(build.visible_cases(ref), sort_keys=True, allow_nan=False)
    assert first == json.dumps(build.visible_cases(ref), sort_keys=True, allow_nan=False)
    assert len(first) < 200_000
    data = json.loads(first)
    assert set(data["tasks"]) == set(TASK_IDS)
    assert set(data["mistakes"]) == {m.id for m in mistakes.MISTAKES}


# --------------------------------------------------------------------------- check_task


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_check_task_passes_on_the_reference(
    ref_checks: ModuleType, task_id: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ref_checks.check_task(task_id)
    out = capsys.readouterr()
    assert f"Task {task_id} " in out.out and "checks passed." in out.out
    assert out.err == ""


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_check_task_on_a_stub_raises_not_implemented(
    stubs: ModuleType, task_id: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    task = load_reference().tasks.TASKS[task_id]
    with pytest.raises(NotImplementedError, match=rf"^Task {task_id}: implement {task.function} in"):
        stubs.check_task(task_id)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_check_task_never_raises_while_autograding(
    stubs: ModuleType, task_id: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    stubs.check_task(task_id)
    out = capsys.readouterr()
    assert f"Task {task_id} is not implemented yet" in out.out
    assert out.err == ""


def test_check_task_prints_the_diagnosis_while_autograding(
    cases_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    mistake = mistakes.BY_ID["conv2d_flipped_kernel"]
    checks = importlib.import_module(mistakes.load_mutant(mistake).__name__ + ".checks")
    monkeypatch.setattr(checks, "CASES_FILE", cases_file)
    monkeypatch.setenv("NBGRADER_EXECUTION", "autograde")
    checks.check_task("2.1")
    out = capsys.readouterr()
    assert mistake.message in out.out and "checks failed" in out.out
    assert out.err == ""


def test_check_task_rejects_an_unknown_task(ref_checks: ModuleType) -> None:
    with pytest.raises(ValueError, match="unknown task"):
        ref_checks.check_task("9.9")


# --------------------------------------------------------------------------- checks never go stale

# Task 2.1's classic mistake, made in the reference's conv2d_forward: the kernel is flipped.
RIGHT = "np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3]))"
FLIPPED = "np.tensordot(window, w[:, :, ::-1, ::-1], axes=([1, 2, 3], [1, 2, 3]))"


def _student_folder(root: Path) -> Path:
    """A student's folder: the released ``cnnlab/`` with the reference's ``conv.py`` (Task 2.1 done)."""
    import shutil

    shutil.copytree(ROOT / "cnnlab", root / "cnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    conv = (ROOT / "solutions" / "cnnlab" / "conv.py").read_text()
    assert RIGHT in conv, "the reference's conv2d_forward changed: update RIGHT"
    (root / "cnnlab" / "conv.py").write_text(conv)
    return root


def _make_mistake(folder: Path) -> None:
    path = folder / "cnnlab" / "conv.py"
    path.write_text(path.read_text().replace(RIGHT, FLIPPED))


def test_check_task_sees_the_file_as_saved_now(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """check -> edit the file to a classic mistake -> check again, in one process, no autoreload."""
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    folder = _student_folder(tmp_path)
    package = load_package(folder / "cnnlab", "cnnlab_stale_check")
    checks = importlib.import_module("cnnlab_stale_check.checks")
    checks.check_task("2.1")  # passes
    _make_mistake(folder)
    with pytest.raises(AssertionError, match="flips the kernel"):
        checks.check_task("2.1")
    # residual.py-style imports by name see the new function too
    assert package.conv.conv2d_forward.__code__.co_filename == str(folder / "cnnlab" / "conv.py")


def test_check_task_in_a_fresh_kernel_without_autoreload(tmp_path: Path) -> None:
    """The same in a real IPython kernel started fresh, running only check cells (no autoreload cell):
    the second check fails with the diagnosis, and its traceback holds none of the checks' frames."""
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    folder = _student_folder(tmp_path)
    source = (
        'import cnnlab\nfrom cnnlab.checks import check_task\n\nprint(cnnlab.__file__)\ncheck_task("2.1")'
    )
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(source) for _ in range(2)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    client = nbclient.NotebookClient(nb, timeout=120, resources={"metadata": {"path": str(folder)}})
    with client.setup_kernel(env={"NBGRADER_EXECUTION": "", "PYTHONPATH": ""}):
        client.execute_cell(nb.cells[0], 0)
        first = "".join(o.get("text", "") for o in nb.cells[0].outputs)
        assert str(folder / "cnnlab") in first, f"the kernel imported another cnnlab: {first}"
        assert "Task 2.1 conv2d_forward: all 4 checks passed." in first, first
        _make_mistake(folder)
        with pytest.raises(nbclient.exceptions.CellExecutionError):
            client.execute_cell(nb.cells[1], 1)
    error = next(o for o in nb.cells[1].outputs if o.output_type == "error")
    assert error.ename == "AssertionError" and "flips the kernel" in error.evalue, error.evalue
    assert "and 3 more cases fail the same way" in error.evalue, error.evalue


def test_a_stub_traceback_shows_only_the_students_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The NotImplementedError of a stub: the frames of checks.py are cut, the stub's line stays."""
    import shutil
    import traceback

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    shutil.copytree(ROOT / "cnnlab", tmp_path / "cnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    load_package(tmp_path / "cnnlab", "cnnlab_stub_traceback")
    checks = importlib.import_module("cnnlab_stub_traceback.checks")
    with pytest.raises(NotImplementedError) as info:
        checks.check_task("1.2")
    frames = traceback.extract_tb(info.value.__traceback__)
    files = [Path(f.filename).name for f in frames]
    # the test's frame, check_task's raise (hidden in IPython by __tracebackhide__), then the student's
    assert files[-1] == "conv.py" and "raise NotImplementedError" in frames[-1].line
    assert [f.name for f in frames if Path(f.filename).name == "checks.py"] == ["check_task"], files


def test_failures_are_grouped_and_the_hand_worked_case_comes_first(cases_file: Path, monkeypatch) -> None:
    mistake = mistakes.BY_ID["conv1d_correlation"]
    checks = importlib.import_module(mistakes.load_mutant(mistake).__name__ + ".checks")
    monkeypatch.setattr(checks, "CASES_FILE", cases_file)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    with pytest.raises(AssertionError) as info:
        checks.check_task("1.2")
    message = str(info.value)
    n_checks = len(checks.hand_cases("1.2")) + len(checks.fixed_cases("1.2"))
    assert message.count(mistake.message) == 1, message
    assert message.splitlines()[1].startswith("- check 1 (conv1d([1, 2, 3], [0, 1, 0.5])"), message
    assert f"and {n_checks - 1} more cases fail the same way" in message, message
    assert message.count("\n- check ") == 1, message


@pytest.mark.parametrize(
    ("message", "passes"),
    [
        ("f=5 is larger than the padded input n + 2*pad = 4", True),
        ("f=5 does not fit in n + 2*pad = 4", False),  # the words of the issue: not the specified ones
    ],
)
def test_the_visible_check_demands_the_specified_words(
    ref_checks: ModuleType, message: str, passes: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A conv_output_size raising ValueError with other words fails the check, as pytest -m task1_1 does."""
    right = ref_checks._MODULES["conv"].conv_output_size

    def student(n, f, stride=1, pad=0):
        if isinstance(n, int) and isinstance(f, int) and n + 2 * pad < f and n >= 1 and f >= 1:
            raise ValueError(message)
        return right(n, f, stride, pad)

    monkeypatch.setattr(ref_checks, "reload_student_modules", lambda: None)
    monkeypatch.setattr(ref_checks._MODULES["conv"], "conv_output_size", student)
    if passes:
        ref_checks.check_task("1.1")
    else:
        with pytest.raises(AssertionError, match="must contain 'f=5 is larger than the padded input'"):
            ref_checks.check_task("1.1")


def test_an_error_in_the_students_code_is_chained_with_only_the_students_frames(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import traceback

    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    folder = _student_folder(tmp_path)
    path = folder / "cnnlab" / "conv.py"
    source = path.read_text()
    assert "full[t] += x[t - a] * w[a]" in source, "the reference's conv1d changed"
    path.write_text(source.replace("full[t] += x[t - a] * w[a]", "full[t] += x[t - a + 1] * w[a]"))
    load_package(folder / "cnnlab", "cnnlab_chained_error")
    checks = importlib.import_module("cnnlab_chained_error.checks")
    with pytest.raises(AssertionError, match="raised IndexError") as info:
        checks.check_task("1.2")
    cause = info.value.__cause__
    assert isinstance(cause, IndexError)
    frames = traceback.extract_tb(cause.__traceback__)
    assert frames and all(Path(f.filename) == path for f in frames), [(f.filename, f.name) for f in frames]
    assert "x[t - a + 1]" in frames[-1].line


@pytest.mark.parametrize("task_id", ["5.1", "5.2"])
def test_hand_worked_variants_are_what_the_mutants_return(task_id: str, ref: ModuleType) -> None:
    """The known-wrong outputs written by hand into the visible checks equal the mutants' outputs."""
    checks = importlib.import_module(f"{ref.__name__}.checks")
    hand = checks.hand_cases(task_id)
    assert hand
    for case in hand:
        expected = cases.expected_outcome(task_id, case.args, ref)
        assert not checks.problems(task_id, expected, case.expected), case.label
        for mistake_id, variant in case.variants.items():
            mutant = mistakes.load_mutant(mistakes.BY_ID[mistake_id])
            got = cases.run(task_id, cases.task_function(mutant, task_id), case.args, ref)
            assert checks.close_enough(got, variant), (case.label, mistake_id, got)
