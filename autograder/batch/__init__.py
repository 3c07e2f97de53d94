"""The batch grader: a whole class, in parallel, each submission in a sandbox; resumable.

``python -m autograder grade ASSIGNMENT`` (:mod:`.cli`). The stages, read top-down, each in one
module, each swappable in one place:

=============  =========================================================================
``intake``     LMS zips into ``submitted/``; submission times; the student's files as bytes
``store``      cache keys and atomic result files (a rerun grades only what changed)
``engine``     how jobs run: :class:`~.engine.LocalPool` (the default), chosen in ``make_engine``
``judge``      one job: the sandbox (:mod:`autograder.sandbox`) runs the student's functions,
               the judge scores what comes back against the reference
``gradebook``  nbgrader's database and the ``autograded/`` notebooks
``reports``    ``grades.csv``, feedback, the class summary, the grade table
=============  =========================================================================

:mod:`.run` ties them together (:func:`grade_assignment`); :mod:`autograder.sample_students`
fabricates submissions for the demo, the tests and the benchmarks.

One submission's path: ``cli.main`` → ``run.grade_assignment`` →
``intake.read_submission`` / ``notebooks.check_notebooks`` → ``store.job_key`` / ``load_cached`` →
``engine.LocalPool.run`` → ``judge.grade_job`` → ``sandbox.Sandbox.run`` (→ ``sandbox/child.py`` inside the
sandbox) → ``cases.grade_runs`` → ``store.save_result`` → ``gradebook.write_gradebook`` →
``reports.write_reports``.
"""

from autograder.batch.cli import main  # noqa: E402, I001 (after run: the CLI imports it)
from autograder.sample_students import fabricate_submission  # noqa: E402 (the one fabricator)
from autograder.batch.intake import Intake, ZipLimits, extract_zip, intake_zips, read_times, zip_student
from autograder.batch.judge import Job, grade_job
from autograder.batch.run import TEST_DELAY_ENV, BatchError, BatchResult, Options, grade_assignment
from autograder.batch.store import grader_hash, release_drift, student_seeds, tree_hash

__all__ = [
    "TEST_DELAY_ENV",
    "BatchError",
    "BatchResult",
    "Intake",
    "Job",
    "Options",
    "ZipLimits",
    "extract_zip",
    "fabricate_submission",
    "grade_assignment",
    "grade_job",
    "grader_hash",
    "intake_zips",
    "main",
    "read_times",
    "release_drift",
    "student_seeds",
    "tree_hash",
    "zip_student",
]
