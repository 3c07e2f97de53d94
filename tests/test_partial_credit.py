"""Partial credit a student can read (autograder/partial.py): multi-part results judged per part.

The rule: every hidden case is worth the same; within a case each part of the result (``dx, dw,
db``; a residual block's ``dx`` and four gradients) earns an equal share; an exception, a malformed
result or a write into the inputs earns nothing. The expected fractions below follow from the rule
by hand (2 of 3 parts right everywhere: 2/3), not from the grader.

Here nbgrader's hidden grading (``hidden.grade_function``) in process; ``tests/test_both_graders.py``
runs the same submission through ``nbgrader autograde`` and the batch grader.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

from autograder import cases, hidden, mistakes
from autograder.reference import load_package, load_reference

ROOT = Path(__file__).resolve().parent.parent
SEED = 12345


@pytest.fixture(scope="module")
def ref() -> ModuleType:
    return load_reference()


@pytest.fixture
def student(tmp_path: Path) -> Iterator[ModuleType]:
    """A fresh copy of the reference whose functions a test can replace."""
    name = f"cnnlab_partial_{tmp_path.name.replace('-', '_')}"
    shutil.copytree(
        ROOT / "solutions" / "cnnlab", tmp_path / "cnnlab", ignore=shutil.ignore_patterns("__pycache__")
    )
    package = load_package(tmp_path / "cnnlab", name)
    yield package
    for key in [k for k in sys.modules if k == name or k.startswith(name + ".")]:
        del sys.modules[key]


def _report(task_id: str, result: cases.GradeResult, maximum: float) -> tuple[float, str]:
    points, lines = cases.task_report(task_id, result, maximum)
    return points, "\n".join(lines)


@pytest.mark.task2_2
def test_a_backward_with_db_wrong_earns_two_thirds_and_names_the_right_parts(student, ref):
    right = ref.conv.conv2d_backward

    def conv2d_backward(dout, cache):
        dx, dw, db = right(dout, cache)
        return dx, dw, db + 1.0  # db wrong in every case, dx and dw right

    student.conv.conv2d_backward = conv2d_backward
    result = hidden.grade_function("2.2", student, ref, SEED)
    n = result.n_total
    assert result.n_passed == 0
    assert result.fraction == pytest.approx(2 / 3, rel=1e-12)
    points, text = _report("2.2", result, 5.0)
    assert points == pytest.approx(3.33)
    assert f"parts right: dx in {n} of {n} cases, dw in {n} of {n}, db in 0 of {n}" in text, text
    assert "a third of a case" in text and "others in part" in text, text


@pytest.mark.task2_2
def test_the_classic_db_mistake_earns_two_thirds(student, ref):
    mistake = mistakes.BY_ID["conv2d_backward_db_no_batch"]
    student.conv.conv2d_backward = mistakes.load_mutant(mistake).conv.conv2d_backward
    result = hidden.grade_function("2.2", student, ref, SEED)
    assert result.fraction == pytest.approx(2 / 3, rel=1e-12), result.messages
    assert any(mistake.message in m for m in result.messages), result.messages


@pytest.mark.task4_2
def test_a_residual_backward_with_one_gradient_wrong_earns_four_fifths(student, ref):
    right = ref.residual.residual_block_backward

    def residual_block_backward(dout, cache):
        dx, grads = right(dout, cache)
        return dx, {**grads, "b2": grads["b2"] * 2.0 + 1.0}

    student.residual.residual_block_backward = residual_block_backward
    result = hidden.grade_function("4.2", student, ref, SEED)
    n = result.n_total
    assert result.fraction == pytest.approx(4 / 5, rel=1e-12), result.messages
    assert any(f"grads['b2'] in 0 of {n}" in m and f"dx in {n} of {n} cases" in m for m in result.messages)


@pytest.mark.task2_2
def test_a_part_right_in_half_the_cases(student, ref):
    right = ref.conv.conv2d_backward
    calls = []

    def conv2d_backward(dout, cache):
        calls.append(1)
        dx, dw, db = right(dout, cache)
        return (dx, dw, db + 1.0) if len(calls) % 2 else (dx, dw, db)

    student.conv.conv2d_backward = conv2d_backward
    result = hidden.grade_function("2.2", student, ref, SEED)
    n = result.n_total
    odd = (n + 1) // 2  # the 1st, 3rd, ... calls are the wrong ones (one call per case)
    assert result.n_passed == n - odd
    assert result.fraction == pytest.approx(((n - odd) + odd * 2 / 3) / n, rel=1e-12)


@pytest.mark.task2_2
def test_no_part_credit_for_a_write_into_the_inputs_or_a_malformed_result(student, ref):
    right = ref.conv.conv2d_backward

    def writes(dout, cache):
        out = right(dout, cache)
        dout[...] = 0.0
        return out[0], out[1], out[2] + 1.0

    student.conv.conv2d_backward = writes
    assert hidden.grade_function("2.2", student, ref, SEED).fraction == 0.0
    student.conv.conv2d_backward = lambda dout, cache: right(dout, cache)[:2]  # (dx, dw): malformed
    assert hidden.grade_function("2.2", student, ref, SEED).fraction == 0.0


@pytest.mark.task2_1
def test_one_part_tasks_are_right_or_wrong(student, ref):
    right = ref.conv.conv2d_forward
    student.conv.conv2d_forward = lambda x, w, b, stride=1, pad=0: (right(x, w, b, stride, pad)[0] + 1, None)
    result = hidden.grade_function("2.1", student, ref, SEED)
    assert result.fraction == 0.0
    assert not any(m.startswith("parts right") for m in result.messages)
