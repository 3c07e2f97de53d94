"""nbgrader configuration of the cnnlab course (traitlets config; no change to nbgrader itself).

nbgrader loads this file when it runs with ``autograder/`` as its working directory, which is what
``python -m autograder ...`` does. By hand::

    cd autograder && ../.venv/bin/nbgrader autograde 02_conv_layer

Environment variables:

* ``CNNLAB_COURSE_ROOT``: the nbgrader course root (default ``autograder/course``, gitignored);
  the tests grade in a temporary copy.
* ``CNNLAB_DB_URL``: the gradebook's SQLAlchemy URL (default ``sqlite:///<root>/gradebook.db``).
* ``CNNLAB_MANIFEST``: another manifest instead of ``autograder/assignments.toml`` (tests).

A manifest entry that nbgrader would silently ignore (a directory, a glob, ``./``, a missing file)
stops every nbgrader command here, before anything is graded: otherwise the instructor's copy of
the file would be graded instead of the student's.
"""

import importlib.util
import os
import sys
from pathlib import Path

from nbconvert.preprocessors import CSSHTMLHeaderPreprocessor
from nbgrader.preprocessors import ClearHiddenTests, GetGrades

c = get_config()  # noqa: F821 (provided by traitlets when it runs this file)

HERE = Path(__file__).resolve().parent  # autograder/
REPO = HERE.parent


def _load_module(stem: str):
    """``autograder/<stem>.py``, loaded by path: nbgrader's own ``sys.path`` stays as it is."""
    name = f"_cnnlab_{stem}"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / f"{stem}.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


# --- the course ----------------------------------------------------------------------------------
ROOT = Path(os.environ.get("CNNLAB_COURSE_ROOT") or HERE / "course").resolve()
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "cnnlab"
# --- the secrets: grading kernels run student code unconfined and inherit this environment, so the
# batch grader's secret never reaches them (nbgrader's kernels use their own: autograder/secret.py)
os.environ.pop("CNNLAB_COURSE_SECRET", None)
# --- the gradebook: SQLite in the course root, or $CNNLAB_DB_URL (PostgreSQL) -------------------------
# A configured database that cannot be reached stops the command: never a silent SQLite instead.
_database = _load_module("database")
_db_url = _database.db_url(ROOT)
if os.environ.get(_database.ENV):
    c.CourseDirectory.db_url = _db_url
    try:
        _database.check(_db_url)
    except _database.DatabaseError as err:
        raise SystemExit(f"[cnnlab] {err}") from None
print(f"[cnnlab] gradebook: {_database.describe(_db_url)}", file=sys.stderr)

# nbgrader runs the `alembic` command (gradebook migrations) by name: without the venv's bin/ on PATH
# (nbgrader started as .venv/bin/nbgrader from a shell without the venv activated) creating the
# gradebook fails.
_bindir = str(Path(sys.executable).parent)
if _bindir not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = os.pathsep.join([_bindir, os.environ.get("PATH", "")])

# --- grade the student's files, never the instructor's copy ---------------------------------------
# autograde copies submitted/<student>/<a>/, then overwrites every non-notebook file with the copy in
# source/<a>/ except the exact relative paths listed here (derived from assignments.toml).
# traitlets only logs an exception raised by a config file, and nbgrader then goes on WITHOUT this
# file (course root = the working directory, nothing excluded): SystemExit stops the command instead.
try:
    _manifest = _load_module("manifest")
except Exception as err:
    raise SystemExit(f"[cnnlab] nbgrader_config.py: cannot load autograder/manifest.py: {err}") from err
try:
    c.Autograde.exclude_overwriting = _manifest.exclude_overwriting(ROOT / "source")
except Exception as err:
    raise SystemExit(f"[cnnlab] nbgrader_config.py: {err} (manifest: {_manifest.MANIFEST_PATH})") from err

# --- the grading kernel ----------------------------------------------------------------------------
# The kernel starts in autograded/<student>/<a>/ and `import cnnlab` must find the student's copy
# there, and nothing else. Two traps (checked with ipykernel 7.4 / IPython 9.18):
# * IPython puts the working directory ('') on sys.path AFTER the standard library and any PYTHONPATH
#   entries: the repo root on PYTHONPATH would shadow the student's cnnlab/ with the repo's stubs.
#   So the repo root (for `from autograder.hidden import grade_task`) is appended at the END.
# * The editable install of the repo's cnnlab is a meta-path finder behind the path finder. It does
#   not shadow the student's package, but it serves any submodule missing from it from the repo
#   (`cnnlab.conv` -> /repo/cnnlab/conv.py when the student's conv.py is missing). It is removed.
_kernel_setup = (
    "import sys as _s; "
    "_s.meta_path[:] = [f for f in _s.meta_path "
    "if not getattr(f, '__module__', '').startswith('__editable__')]; "
    f"_s.path.append({str(REPO)!r}); "
    "del _s"
)
c.Execute.extra_arguments = [
    f"--InteractiveShellApp.exec_lines={_kernel_setup}",
    # Plain tracebacks show only the failing line of each frame, not the lines around it: an error
    # in a check cell must not print the hidden-test lines below it into the feedback.
    "--InteractiveShell.xmode=Plain",
]
c.Execute.timeout = 120  # seconds per cell

# --- late submissions: the policy of assignments.toml's [late] table (autograder/deadlines.py) -------
_deadlines = _load_module("deadlines")
try:
    _policy = _deadlines.load_policy()
except ValueError as err:
    raise SystemExit(f"[cnnlab] {err}") from None
if _policy.method in ("none", "zero"):
    c.LateSubmissionPlugin.penalty_method = _policy.method
else:
    from nbgrader.plugins import LateSubmissionPlugin

    class CnnlabLatePenalty(LateSubmissionPlugin):
        """``per_hour`` points off per started hour late (nbgrader's own hook, the course's policy)."""

        def late_submission_penalty(self, student_id, score, total_seconds_late):
            return _policy.penalty(score, total_seconds_late)

    c.AssignLatePenalties.plugin_class = CnnlabLatePenalty

# --- a deleted check cell: restored from the gradebook and graded, by both graders ---------------------
# The course's rule (README, "Grading"): a check cell deleted from a submitted notebook is put back from
# the source notebook (nbgrader's own OverwriteCells.add_missing_cells) and graded like any other, with
# a first line saying so; the batch grader grades every task from cnnlab/ anyway and says the same in
# its feedback. Without this nbgrader left the task ungraded, for manual grading.
c.OverwriteCells.add_missing_cells = True
c.OverwriteCells.missing_cell_notification = (
    "This check cell ({cell_id}) was missing from your notebook: it was restored from the course's "
    "notebook and graded.\n"
)

# --- feedback --------------------------------------------------------------------------------------
# nbgrader's feedback shows the restored hidden tests unless they are cleared again.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
# MathJax inlined from node_modules (npm ci), not loaded from a CDN: feedback renders offline. Only for
# GenerateFeedback's exporter (nested config), so formgrader and the other commands are unchanged.
_feedback = _load_module("feedback_assets")
_nbgrader_templates = Path(importlib.util.find_spec("nbgrader").origin).parent / "server_extensions"
c.GenerateFeedback.HTMLExporter.template_name = "cnnlab_feedback"
c.GenerateFeedback.HTMLExporter.extra_template_basedirs = [
    str(HERE / "templates"),
    str(_nbgrader_templates / "formgrader" / "templates"),
]
c.GenerateFeedback.HTMLExporter.filters = {"cnnlab_inline_mathjax": _feedback.inline_mathjax}
if _feedback.mathjax_problem() and "generate_feedback" in sys.argv[1:2]:
    print(f"[cnnlab] warning: {_feedback.mathjax_problem()}", file=sys.stderr)
