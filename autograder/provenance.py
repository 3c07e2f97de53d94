"""Which grader wrote a submission's scores into the gradebook: nbgrader's ``autograde`` or the batch grader.

Both graders write the same gradebook and the same ``autograded/<student>/<assignment>/`` folder; the
one that ran last owns both. The batch grader marks the notebooks it writes there with a stamp in
their metadata (``metadata.cnnlab.graded_by``): an HMAC of the course secret, the student and the
assignment, so that a student cannot forge it by editing the notebook's metadata (nbgrader copies a
submitted notebook's metadata into ``autograded/``). ``nbgrader autograde`` rewrites the folder
without the stamp. :func:`grader_of` reads it back for the grade table.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

BATCH = "batch grader"
NBGRADER = "nbgrader"


def stamp(root: Path, student: str, assignment: str) -> str:
    """The batch grader's stamp for one submission (needs the course secret)."""
    from autograder.secret import course_secret

    message = f"graded-by-batch\0{student}\0{assignment}".encode()
    return hmac.new(course_secret(root), message, hashlib.sha256).hexdigest()


def mark_batch(nb: dict[str, Any], root: Path, student: str, assignment: str) -> dict[str, Any]:
    """``nb`` (a notebook dict) with the batch grader's stamp in its metadata (a new dict)."""
    metadata = dict(nb.get("metadata") or {})
    metadata["cnnlab"] = {"graded_by": {"grader": "batch", "stamp": stamp(root, student, assignment)}}
    return {**nb, "metadata": metadata}


def grader_of(root: Path, student: str, assignment: str, notebooks: Iterable[str]) -> str | None:
    """:data:`BATCH` when the batch grader wrote this submission's ``autograded/`` notebooks (a
    valid stamp), :data:`NBGRADER` when they exist without it, None when nothing was graded."""
    folder = Path(root) / "autograded" / student / assignment
    if not folder.is_dir():
        return None
    for name in notebooks:
        try:
            nb = json.loads((folder / name).read_text())
            found = nb["metadata"]["cnnlab"]["graded_by"]["stamp"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if isinstance(found, str) and hmac.compare_digest(found, stamp(root, student, assignment)):
            return BATCH
    return NBGRADER
