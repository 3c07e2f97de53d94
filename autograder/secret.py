"""Per-student grading seeds from a course secret, shared by nbgrader's kernel and the batch grader.

Every student gets their own hidden cases: the seed of Task ``t`` for student ``s`` is an HMAC-SHA256
of the course secret over ``s`` and ``t`` (:func:`student_seed`). Without the secret nobody can compute
the inputs beforehand, and two students' inputs have nothing in common but their shapes.

The secret is, in this order:

* the environment variable ``CNNLAB_COURSE_SECRET`` (any non-empty string), or
* the file ``<course root>/.cnnlab-secret``, created on first use with :func:`secrets.token_hex`
  (mode 0600; the default course root ``autograder/course`` is gitignored: never commit the file,
  and keep it when you re-grade, or every student's hidden cases change).

Inside nbgrader's grading kernel the working directory is ``<root>/autograded/<student>/<assignment>``:
:func:`kernel_context` reads the course root and the student id from it, so the hidden ``grade_task``
and ``python -m autograder grade`` (:mod:`autograder.batch`) draw the same cases for the same student.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

SECRET_ENV = "CNNLAB_COURSE_SECRET"
SECRET_FILE = ".cnnlab-secret"


@dataclass(frozen=True)
class KernelContext:
    """Where nbgrader grades: ``<root>/autograded/<student>/<assignment>``."""

    root: Path
    student: str
    assignment: str


def kernel_context(cwd: str | Path | None = None) -> KernelContext | None:
    """The course root, student and assignment of an nbgrader grading folder; None elsewhere."""
    try:
        here = Path(cwd if cwd is not None else os.getcwd()).resolve()
    except OSError:
        return None
    if len(here.parts) < 4 or here.parent.parent.name != "autograded":
        return None
    return KernelContext(here.parent.parent.parent, here.parent.name, here.name)


def secret_path(root: str | Path) -> Path:
    return Path(root) / SECRET_FILE


def course_secret(root: str | Path) -> bytes:
    """The course secret: ``$CNNLAB_COURSE_SECRET``, else ``<root>/.cnnlab-secret`` (created if absent).

    Creation is atomic (a complete temporary file is hard-linked into place), so concurrent first
    uses agree on one secret.
    """
    env = os.environ.get(SECRET_ENV, "")
    if env.strip():
        return env.strip().encode()
    path = secret_path(root)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{SECRET_FILE}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32) + "\n")
        with contextlib.suppress(FileExistsError):
            os.link(tmp, path)  # fails if another process was first: its secret wins
    finally:
        tmp.unlink(missing_ok=True)
    return _read(path)


def _read(path: Path) -> bytes:
    text = path.read_text().strip()
    if not text:
        raise ValueError(f"{path} is empty: delete it to create a new course secret")
    return text.encode()


def student_seed(secret: bytes, student: str, task_id: str) -> int:
    """The seed of ``task_id``'s hidden cases for ``student``: 63 bits of HMAC-SHA256(secret, ...)."""
    message = f"cnnlab-grading-seed\0{student}\0{task_id}".encode()
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") % 2**63
