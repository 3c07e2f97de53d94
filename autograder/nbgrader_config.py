"""nbgrader configuration of the cnnlab course (traitlets config; no change to nbgrader itself).

nbgrader loads this file when it runs with ``autograder/`` as its working directory, which is what
``python -m autograder ...`` does. By hand::

    cd autograder && ../.venv/bin/nbgrader autograde 02_conv_layer

Environment variables:

* ``CNNLAB_COURSE_ROOT``: the nbgrader course root (default ``autograder/course``, gitignored);
  the tests grade in a temporary copy.
* ``CNNLAB_DB_URL``: the gradebook's SQLAlchemy URL (default ``sqlite:///<root>/gradebook.db``).

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


def _load_manifest_module():
    """``autograder/manifest.py``, loaded by path: nbgrader's own ``sys.path`` stays as it is."""
    name = "_cnnlab_manifest"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "manifest.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up there
        spec.loader.exec_module(module)
    return sys.modules[name]


# --- the course ----------------------------------------------------------------------------------
ROOT = Path(os.environ.get("CNNLAB_COURSE_ROOT") or HERE / "course").resolve()
c.CourseDirectory.root = str(ROOT)
c.CourseDirectory.course_id = "cnnlab"
if os.environ.get("CNNLAB_DB_URL"):
    c.CourseDirectory.db_url = os.environ["CNNLAB_DB_URL"]

# --- grade the student's files, never the instructor's copy ---------------------------------------
# autograde copies submitted/<student>/<a>/, then overwrites every non-notebook file with the copy in
# source/<a>/ except the exact relative paths listed here (derived from assignments.toml).
# traitlets only logs an exception raised by a config file, and nbgrader then goes on WITHOUT this
# file (course root = the working directory, nothing excluded): SystemExit stops the command instead.
try:
    c.Autograde.exclude_overwriting = _load_manifest_module().exclude_overwriting(ROOT / "source")
except Exception as err:
    raise SystemExit(f"[cnnlab] nbgrader_config.py: autograder/assignments.toml: {err}") from err

# --- the grading kernel ----------------------------------------------------------------------------
# The kernel starts in autograded/<student>/<a>/, so `import cnnlab` finds the student's copy there
# (the working directory comes first on sys.path; the editable install of the repo's cnnlab is a
# meta-path finder placed after the path finder, so it never shadows it). The hidden tests do
# `from autograder.hidden import grade_task`: the repo root goes on PYTHONPATH, after the working dir.
_paths = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
if str(REPO) not in _paths:
    os.environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *_paths])

c.Execute.timeout = 120  # seconds per cell
# Plain tracebacks show only the failing line of each frame, not the lines around it: a failure
# in a check cell must not print the hidden-test lines below it into the feedback.
c.Execute.extra_arguments = ["--InteractiveShell.xmode=Plain"]

# --- feedback --------------------------------------------------------------------------------------
# nbgrader's feedback shows the restored hidden tests unless they are cleared again.
c.GenerateFeedback.preprocessors = [GetGrades, ClearHiddenTests, CSSHTMLHeaderPreprocessor]
