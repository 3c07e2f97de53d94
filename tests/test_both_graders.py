"""Both graders follow one rule, end to end, and the grade table says which one wrote each score.

One released assignment (02) and two submissions:

* ``dora``: the classic ``db`` mistake in ``conv2d_backward`` (``dx`` and ``dw`` right): the per-part
  rule of ``autograder/partial.py`` gives Task 2.2 two thirds of its 5 points, 3.33, in both graders,
  and both reports name the right parts;
* ``eve``: correct code, but the check cell of Task 2.1 deleted from the notebook: the course's rule
  (README) restores it and grades it, in both graders (nbgrader left it for manual grading, "?", the
  batch grader gave 5/5), and both say so.

Then the table: nbgrader wrote every score; after the batch grader, the batch grader; after nbgrader
again for one student, each submission names its own grader.
"""

from __future__ import annotations

import json
from pathlib import Path

import course_env
import pytest

from autograder import batch, course, provenance, sandbox
from autograder.manifest import load_manifest

pytestmark = pytest.mark.slow

A = "02_conv_layer"
NB = f"{A}.ipynb"
SECRET = "both-graders-test-secret"


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory):
    root = tmp_path_factory.mktemp("course")
    with course_env.course(root, SECRET, CNNLAB_NBGRADER_SECRET=SECRET):  # one value: same cases
        manifest = load_manifest()
        course.release(root, {A: manifest[A]}, log=lambda _: None)
        dora = course.reference_variant("conv", None, ("conv2d_backward_db_no_batch",))
        batch.fabricate_submission(root, "dora", manifest[A], {"cnnlab/conv.py": dora})
        batch.fabricate_submission(
            root,
            "eve",
            manifest[A],
            {"cnnlab/conv.py": course.reference_variant("conv")},
            {"delete_cells": ["task2_1"]},
        )
        yield root


def _table(root: Path) -> course.Table:
    return course.grade_table(root, ["dora", "eve"], {A: load_manifest()[A]})


def _autograde(root: Path, student: str) -> None:
    run = course.run_nbgrader(["autograde", A, f"--student={student}", "--force"], root)
    assert run.ok, run.output[-3000:]


NBGRADER_NOTEBOOKS: dict[str, str] = {}  # student -> the autograded notebook nbgrader wrote


@pytest.fixture(scope="module")
def by_nbgrader(root: Path) -> course.Table:
    with course_env.course(root, SECRET, CNNLAB_NBGRADER_SECRET=SECRET):  # one value: same cases
        _autograde(root, "*")
        for student in ("dora", "eve"):  # before the batch grader rewrites them
            NBGRADER_NOTEBOOKS[student] = (root / "autograded" / student / A / NB).read_text()
        return _table(root)


@pytest.fixture(scope="module")
def by_batch(root: Path, by_nbgrader: course.Table) -> tuple[batch.BatchResult, course.Table]:
    options = batch.Options(
        workers=1,
        limits=sandbox.Limits(timeout=30, memory_mb=600),
        progress=False,
        log=lambda _: None,
        allow_unconfined=True,
    )
    with course_env.course(root, SECRET, CNNLAB_NBGRADER_SECRET=SECRET):  # one value: same cases
        result = batch.grade_assignment(A, root, options)
        return result, _table(root)


def _rows(result: batch.BatchResult) -> dict:
    return {r["student"]: r for r in result.rows}


@pytest.mark.task2_2
def test_part_credit_is_the_same_in_both_graders(root, by_nbgrader, by_batch):
    result, _ = by_batch
    dora = _rows(result)["dora"]
    assert by_nbgrader.points("dora", "2.2") == pytest.approx(3.33)  # 5 * 2/3, by the rule
    assert dora["tasks"]["2.2"]["points"] == by_nbgrader.points("dora", "2.2")
    assert dora["tasks"]["2.1"]["points"] == by_nbgrader.points("dora", "2.1") == 5.0
    feedback = (result.out / "feedback" / "dora.md").read_text()
    assert "parts right: dx in" in feedback and "db in 0 of" in feedback, feedback


def test_nbgrader_names_the_right_parts(root, by_nbgrader):
    notebook = NBGRADER_NOTEBOOKS["dora"]
    assert "parts right: dx in" in notebook and "db in 0 of" in notebook


@pytest.mark.task2_1
def test_a_deleted_check_cell_is_restored_and_graded_by_nbgrader(root, by_nbgrader):
    assert by_nbgrader.rows["eve"]["2.1"] == 5.0, by_nbgrader.format()
    assert by_nbgrader.rows["eve"]["2.2"] == 5.0
    nb = json.loads(NBGRADER_NOTEBOOKS["eve"])
    restored = [
        c for c in nb["cells"] if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "task2_1"
    ]
    assert len(restored) == 1
    assert "was missing from your notebook: it was restored" in "".join(restored[0]["source"])


@pytest.mark.task2_1
def test_the_batch_grader_gives_the_same_and_says_so(root, by_nbgrader, by_batch):
    result, table = by_batch
    eve = _rows(result)["eve"]
    assert eve["tasks"]["2.1"]["points"] == by_nbgrader.rows["eve"]["2.1"] == 5.0
    assert table.rows["eve"] == by_nbgrader.rows["eve"]
    feedback = (result.out / "feedback" / "eve.md").read_text()
    assert "was deleted: restored from the course's notebook and graded" in feedback, feedback


def test_the_table_says_which_grader_wrote_each_score(root, by_nbgrader, by_batch):
    assert by_nbgrader.graders == {"dora": {A: provenance.NBGRADER}, "eve": {A: provenance.NBGRADER}}
    assert "scores written by: nbgrader (every submission)" in by_nbgrader.format()
    _, table = by_batch
    assert table.graders == {"dora": {A: provenance.BATCH}, "eve": {A: provenance.BATCH}}
    with course_env.course(root, SECRET, CNNLAB_NBGRADER_SECRET=SECRET):  # one value: same cases
        _autograde(root, "eve")
        mixed = _table(root)
    assert mixed.graders == {"dora": {A: provenance.BATCH}, "eve": {A: provenance.NBGRADER}}
    text = mixed.format()
    assert (
        f"scores written by batch grader: dora {A}" in text and f"scores written by nbgrader: eve {A}" in text
    )


def test_a_forged_stamp_is_not_believed(root, by_batch):
    """A student who copies the batch grader's metadata key into a notebook gains nothing."""
    folder = root / "autograded" / "dora" / A
    nb = json.loads((folder / NB).read_text())
    nb["metadata"]["cnnlab"]["graded_by"]["stamp"] = "0" * 64
    (folder / NB).write_text(json.dumps(nb))
    with course_env.course(root, SECRET, CNNLAB_NBGRADER_SECRET=SECRET):  # one value: same cases
        assert provenance.grader_of(root, "dora", A, [NB]) == provenance.NBGRADER
