"""The batch grader's process declines an import it never uses (autograder/lean_imports.py), and
nbformat still validates notebooks without it."""

from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from autograder.reference import ROOT

PROBE = """
import sys
{setup}
import nbformat
import nbgrader.api  # noqa: F401  (the gradebook's import)
nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1 + 1")])
nbformat.validate(nb)
broken = nbformat.from_dict({{**nb, "cells": [{{"cell_type": "code"}}]}})
try:
    nbformat.validate(broken)
except nbformat.ValidationError:
    print("invalid notebook refused")
print("loaded" if sys.modules.get("rfc3987_syntax") else "not loaded")
"""


def _probe(setup: str) -> list[str]:
    code = PROBE.format(setup=setup)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return out.stdout.split("\n")


@pytest.mark.skipif(importlib.util.find_spec("rfc3987_syntax") is None, reason="rfc3987_syntax not installed")
def test_the_grader_declines_the_unused_import_and_still_validates() -> None:
    # without the call the module is imported (so the check below can fail)...
    assert "loaded" in _probe("")
    # ...with it, it is not, and nbformat still refuses an invalid notebook
    lines = _probe("from autograder.lean_imports import decline_unused; decline_unused()")
    assert "not loaded" in lines and "invalid notebook refused" in lines


def test_grade_assignment_declines_it_first() -> None:
    """Even a run that stops at once (an unknown assignment) has declined the import: nothing the
    batch grader loads afterwards (nbformat, nbgrader's gradebook) pulls it in."""
    code = (
        "import sys\n"
        "from autograder.batch import run\n"
        "try:\n"
        "    run.grade_assignment('no_such_assignment', '.', run.Options(log=lambda _: None))\n"
        "except run.BatchError:\n"
        "    pass\n"
        "print('declined' if 'rfc3987_syntax' in sys.modules and sys.modules['rfc3987_syntax'] is None "
        "else 'not declined')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "declined", out.stderr
