"""Per-student grading seeds from a course secret, shared by nbgrader's kernel and the batch grader.

Every student gets their own hidden cases: the seed of Task ``t`` for student ``s`` is an HMAC-SHA256
of the course secret over ``s`` and ``t`` (:func:`student_seed`). Without the secret nobody can compute
the inputs beforehand, and two students' inputs have nothing in common but their shapes.

Each grading path has a secret of its own (:data:`GRADERS`), so that a leak from one predicts nothing
of the other's cases: student code in nbgrader's kernel runs unconfined, as the instructor, and can
read whatever that kernel can. The batch grader's secret is, in this order:

* the environment variable ``CNNLAB_COURSE_SECRET`` (any non-empty string), or
* the file ``<course root>/.cnnlab-secret``, created on first use with :func:`secrets.token_hex`
  (mode 0600; the default course root ``autograder/course`` is gitignored: never commit the file,
  and keep it when you re-grade, or every student's hidden cases change).

nbgrader's kernel uses ``CNNLAB_NBGRADER_SECRET`` or ``<course root>/.cnnlab-secret-nbgrader`` the
same way, and ``nbgrader_config.py`` removes ``CNNLAB_COURSE_SECRET`` from nbgrader's environment so
that no grading kernel inherits it. A file in the course root can still be read by student code in
nbgrader's kernel: for a class graded by both paths keep the batch secret in ``CNNLAB_COURSE_SECRET``
(set only where ``python -m autograder grade`` runs), not on disk.

Inside nbgrader's grading kernel the working directory is ``<root>/autograded/<student>/<assignment>``:
:func:`kernel_context` reads the course root and the student id from it.
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
#: each grading path's secret: (environment variable, file in the course root)
GRADERS = {
    "batch": (SECRET_ENV, SECRET_FILE),
    "nbgrader": ("CNNLAB_NBGRADER_SECRET", ".cnnlab-secret-nbgrader"),
}


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


def secret_path(root: str | Path, grader: str = "batch") -> Path:
    return Path(root) / GRADERS[grader][1]


def course_secret(root: str | Path, grader: str = "batch") -> bytes:
    """The secret of one grading path (``"batch"`` or ``"nbgrader"``): its environment variable,
    else its file in ``root`` (created if absent).

    Creation is atomic (a complete temporary file is hard-linked into place), so concurrent first
    uses agree on one secret.
    """
    variable, name = GRADERS[grader]
    env = os.environ.get(variable, "")
    if env.strip():
        return env.strip().encode()
    path = secret_path(root, grader)
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
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
