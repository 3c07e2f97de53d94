"""Environment variables for a test course, set for a while and restored afterwards."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from autograder import hidden, secret


@contextlib.contextmanager
def environment(**values: str | None) -> Iterator[None]:
    """Set each variable (None: unset it) for the ``with`` block, then restore what was there."""
    saved = {k: os.environ.get(k) for k in values}
    try:
        for k, v in values.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def course(root: Path, course_secret: str, **more: str | None) -> contextlib.AbstractContextManager[None]:
    """The course root and its secret (no fixed grading seed), plus ``more``."""
    return environment(
        CNNLAB_COURSE_ROOT=str(root), **{secret.SECRET_ENV: course_secret, hidden.SEED_ENV: None}, **more
    )
