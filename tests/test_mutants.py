"""Testing the tests: every known mistake (autograder/mistakes.py) loses points on its own task only,
and both the hidden grader and the visible checks name it. Also hostile student functions."""

from __future__ import annotations

import importlib
import json
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from autograder import build, cases, hidden, mistakes
from autograder.reference import REFERENCE_DIR, ROOT, load_package, load_reference

TASK_IDS = cases.TASK_IDS
SEED = 12345


@pytest.fixture(scope="session")
def ref() -> ModuleType:
    return load_reference()


@pytest.fixture(scope="session")
def cases_file(ref: ModuleType, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cases") / "check_cases.json"
    path.write_text(json.dumps(build.visible_cases(ref), indent=1, sort_keys=True))
    return path


def test_the_mistake_list() -> None:
    ids = [m.id for m in mistakes.MISTAKES]
    assert len(ids) == len(set(ids)) >= 15
    assert {m.task for m in mistakes.MISTAKES} == set(TASK_IDS)
    for m in mistakes.MISTAKES:
        assert m.module == load_reference().tasks.TASKS[m.task].module


@pytest.mark.parametrize("mistake", mistakes.MISTAKES, ids=lambda m: m.id)
def test_patch_applies_exactly_once(mistake: mistakes.Mistake) -> None:
    source = (REFERENCE_DIR / f"{mistake.module}.py").read_text()
    assert source.count(mistake.old) == 1
    mutated = mistakes.apply(mistake)
    assert mutated != source and mistake.new in mutated


def test_a_stale_patch_fails_loudly() -> None:
    stale = mistakes.Mistake("stale", "2.1", "no such text", "x", "m")
    with pytest.raises(ValueError, match="occurs 0 times"):
        mistakes.apply(stale)


@pytest.mark.parametrize("mistake", mistakes.MISTAKES, ids=lambda m: m.id)
def test_mutant_loses_points_on_its_task_only_and_is_named(
    mistake: mistakes.Mistake, ref: ModuleType
) -> None:
    mutant = mistakes.load_mutant(mistake)
    for task_id in TASK_IDS:
        result = hidden.grade_function(task_id, mutant, ref, SEED)
        if task_id == mistake.task:
            assert result.fraction < 1
            assert any(mistake.message in m for m in result.messages), result.messages
            others = [o.id for o in mistakes.for_task(task_id) if o is not mistake]
            wrongly = [o for o in others if any(mistakes.BY_ID[o].message in m for m in result.messages)]
            assert not wrongly, f"{mistake.id} was also diagnosed as {wrongly}"
        else:  # grading isolation: a mistake in conv2d_forward costs nothing in 4.1 or 4.2
            assert result.fraction == 1.0, (task_id, result.messages)


@pytest.mark.parametrize("mistake", mistakes.MISTAKES, ids=lambda m: m.id)
def test_visible_checks_name_the_mutant(
    mistake: mistakes.Mistake, cases_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    checks = importlib.import_module(mistakes.load_mutant(mistake).__name__ + ".checks")
    monkeypatch.setattr(checks, "CASES_FILE", cases_file)
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    with pytest.raises(AssertionError) as failed:
        checks.check_task(mistake.task)
    assert mistake.message in str(failed.value)


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_reference_gets_full_marks(task_id: str, ref: ModuleType) -> None:
    result = hidden.grade_function(task_id, ref, ref, SEED)
    assert (result.fraction, result.n_passed, result.messages) == (1.0, result.n_total, [])
    assert 5 <= result.n_total <= 16  # a few written cases and more drawn per student


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_stubs_get_nothing(task_id: str, ref: ModuleType) -> None:
    if not (ROOT / "cnnlab" / "conv.py").exists():
        pytest.fail("cnnlab/ has not been built: run `python -m tools.build` (make release) first")
    stubs = load_package(ROOT / "cnnlab", "cnnlab_student_stubs")
    result = hidden.grade_function(task_id, stubs, ref, SEED)
    assert result.fraction == 0.0
    assert any(f"Task {task_id} is not implemented yet" in m for m in result.messages)


# --------------------------------------------------------------------------- hostile students


@pytest.fixture
def student(tmp_path: Path) -> Iterator[ModuleType]:
    """A fresh copy of the reference under a unique name, whose functions a test can replace."""
    name = f"cnnlab_hostile_{tmp_path.name.replace('-', '_')}"
    shutil.copytree(REFERENCE_DIR, tmp_path / "cnnlab", ignore=shutil.ignore_patterns("__pycache__"))
    package = load_package(tmp_path / "cnnlab", name)
    yield package
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def _forward(ref: ModuleType) -> Callable[..., tuple[np.ndarray, object]]:
    return ref.conv.conv2d_forward


HOSTILE: dict[str, tuple[Callable[[ModuleType], Callable[..., object]], str]] = {
    "returns None": (lambda ref: lambda *a: None, "returned None"),
    "wrong shape": (lambda ref: lambda *a: (_forward(ref)(*a)[0][:, :, :-1], None), "has shape"),
    "float32": (lambda ref: lambda *a: (_forward(ref)(*a)[0].astype(np.float32), None), "dtype float32"),
    "NaN": (lambda ref: lambda *a: (_forward(ref)(*a)[0] * np.nan, None), "contains nan"),
    "raises": (lambda ref: lambda *a: (_ for _ in ()).throw(ValueError("boom")), "raised ValueError: boom"),
    "exits": (lambda ref: lambda *a: sys.exit(3), "raised SystemExit: 3"),
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_hostile_results_get_zero_with_the_right_message(
    kind: str, student: ModuleType, ref: ModuleType
) -> None:
    make, fragment = HOSTILE[kind]
    student.conv.conv2d_forward = make(ref)
    result = hidden.grade_function("2.1", student, ref, SEED)
    assert result.fraction == 0.0
    assert any(fragment in m for m in result.messages), result.messages


def test_a_modified_input_fails_even_with_the_right_output(student: ModuleType, ref: ModuleType) -> None:
    def conv2d_forward(x, w, b, stride=1, pad=0):
        out = ref.conv.conv2d_forward(x, w, b, stride, pad)
        x[...] = 0.0
        return out

    student.conv.conv2d_forward = conv2d_forward
    result = hidden.grade_function("2.1", student, ref, SEED)
    assert result.fraction == 0.0
    assert any("modified its input x" in m for m in result.messages)


def test_a_modified_cache_fails(student: ModuleType, ref: ModuleType) -> None:
    def maxpool2d_backward(dout, cache):
        dx = ref.pool.maxpool2d_backward(dout, cache)
        cache[0][...] = -1.0
        return dx

    student.pool.maxpool2d_backward = maxpool2d_backward
    result = hidden.grade_function("3.2", student, ref, SEED)
    assert result.fraction == 0.0
    assert any("modified its input cache[0]" in m for m in result.messages)


def test_isolation_is_undone_after_grading(student: ModuleType, ref: ModuleType) -> None:
    mine = student.residual.conv2d_forward
    hidden.grade_function("4.1", student, ref, SEED)
    assert student.residual.conv2d_forward is mine
    assert student.conv.pad2d is not ref.conv.pad2d


def test_grade_task_is_quiet_and_clamped(
    student: ModuleType, ref: ModuleType, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """In the grading kernel: stderr stays empty (nbgrader zeroes a cell that writes there)."""

    def noisy(x, w, b, stride=1, pad=0):
        print("debug output", file=sys.stderr)
        warnings.warn("a student warning", stacklevel=1)
        np.float64(1.0) / np.float64(0.0)  # a numpy RuntimeWarning
        return ref.conv.conv2d_forward(x, w, b, stride, pad)

    student.conv.conv2d_forward = noisy
    monkeypatch.setitem(sys.modules, "cnnlab", student)
    monkeypatch.setenv(hidden.SEED_ENV, "99")
    points = hidden.grade_task("2.1")
    out = capsys.readouterr()
    assert points == hidden.max_points("2.1") == 5.0
    assert out.err == ""
    assert "passed 6 of 6 hidden cases" in out.out


def test_grade_task_on_the_stubs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    stubs = load_package(ROOT / "cnnlab", "cnnlab_student_stubs")
    monkeypatch.setitem(sys.modules, "cnnlab", stubs)
    assert hidden.grade_task("4.2") == 0.0
    out = capsys.readouterr()
    assert "Task 4.2 is not implemented yet" in out.out and out.err == ""
    assert "Traceback" not in out.out


def test_clamp() -> None:
    assert cases.clamp_points(float("nan"), 5.0) == 0.0
    assert cases.clamp_points(7.0, 5.0) == 5.0
    assert cases.clamp_points(-1.0, 5.0) == 0.0
    assert cases.clamp_points(10 / 3, 5.0) == 3.33


# --------------------------------------------------------------------------- fair backward grading

# the backward tasks (their forward pass makes the cache), from the task table
DICT_CACHE = {
    t.id: (t.module, t.forward, t.function) for t in load_reference().tasks.TASKS.values() if t.forward
}


def _dict_cache(student: ModuleType, ref: ModuleType, task_id: str, forward_too: bool) -> None:
    """The student keeps the cache as a dict of its own (the reference's entries by position)."""
    module_name, fwd, bwd = DICT_CACHE[task_id]
    module, ref_module = getattr(student, module_name), getattr(ref, module_name)
    ref_fwd, ref_bwd = getattr(ref_module, fwd), getattr(ref_module, bwd)

    def forward(*args: object) -> tuple[object, dict[str, object]]:
        out, cache = ref_fwd(*args)
        return out, {f"part{i}": part for i, part in enumerate(cache)}

    def backward(dout: object, cache: dict[str, object]) -> object:
        return ref_bwd(dout, tuple(cache[f"part{i}"] for i in range(len(cache))))

    if forward_too:
        setattr(module, fwd, forward)
    setattr(module, bwd, backward)


@pytest.mark.parametrize("task_id", sorted(DICT_CACHE))
def test_a_consistent_cache_layout_of_ones_own_is_not_a_mistake(
    task_id: str, student: ModuleType, ref: ModuleType
) -> None:
    _dict_cache(student, ref, task_id, forward_too=True)
    result = hidden.grade_function(task_id, student, ref, SEED)
    assert result.fraction == 1.0, result.messages
    assert any("graded on the cache of your own" in m for m in result.messages), result.messages


@pytest.mark.parametrize("task_id", sorted(DICT_CACHE))
def test_a_backward_that_misreads_the_documented_cache_is_told_the_layout(
    task_id: str, student: ModuleType, ref: ModuleType
) -> None:
    _dict_cache(student, ref, task_id, forward_too=False)  # the forward returns the documented tuple
    result = hidden.grade_function(task_id, student, ref, SEED)
    assert result.fraction == 0.0
    note = [m for m in result.messages if "as documented" in m]
    assert note and "(array (" in note[0], result.messages


def test_the_own_cache_cannot_rescue_a_wrong_gradient(student: ModuleType, ref: ModuleType) -> None:
    _dict_cache(student, ref, "2.2", forward_too=True)
    right = student.conv.conv2d_backward
    student.conv.conv2d_backward = lambda dout, cache: tuple(2 * g for g in right(dout, cache))
    result = hidden.grade_function("2.2", student, ref, SEED)
    assert result.fraction == 0.0


def test_a_broken_check_conv_args_of_the_student_stays_in_the_students_file(
    student: ModuleType, ref: ModuleType
) -> None:
    """Provided code takes its checks from ``cnnlab/_internal/validate.py``: a student's ``conv.py`` that
    breaks ``check_conv_args`` reaches no other task (the residual block runs ``cnnlab.fast``)."""
    path = Path(student.conv.__file__)
    path.write_text(
        path.read_text()
        + "\n\ndef check_conv_args(x, w, b, stride, pad):\n    raise ValueError('broken on purpose')\n"
    )
    for name in [k for k in sys.modules if k.startswith(student.__name__ + ".")]:
        del sys.modules[name]
    fresh = importlib.import_module(student.__name__ + ".conv")
    fast = importlib.import_module(student.__name__ + ".fast")
    assert fast.check_conv_args is not fresh.check_conv_args
    package = sys.modules[student.__name__]
    for attr in ("conv", "fast", "residual", "pool"):
        setattr(package, attr, importlib.import_module(f"{student.__name__}.{attr}"))
    for task_id in ("3.1", "3.2", "4.1", "4.2"):
        result = hidden.grade_function(task_id, package, ref, SEED)
        assert result.fraction == 1.0, (task_id, result.messages)
