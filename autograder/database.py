"""The gradebook database, chosen in one place: SQLite in the course root, or ``$CNNLAB_DB_URL``.

``CNNLAB_DB_URL=postgresql+psycopg://user@/cnnlab?host=/run/postgresql`` (the driver: the optional
extra ``pip install -e '.[postgres]'``) serves every command: nbgrader's own (through
``nbgrader_config.py``), the batch grader, the demo and the grade table. Each says which database it
uses (:func:`describe`, password hidden). A configured database that cannot be reached is an error
(:func:`check`), never a silent fallback to SQLite (jupyter/nbgrader#1661).

nbgrader's FAQ: SQLite is not safe for concurrent writers; use PostgreSQL when several graders write
at once. The batch grader writes each student in its own transaction and retries a transaction that
lost a race (:func:`retrying`), so two graders at once lose nothing.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

try:
    from autograder.errors import CnnlabError
except ImportError:  # loaded by path from nbgrader_config.py, where `autograder` is no package
    CnnlabError = Exception  # type: ignore[misc,assignment]

ENV = "CNNLAB_DB_URL"
T = TypeVar("T")


class DatabaseError(CnnlabError):
    """The configured gradebook database cannot be used (the message says which and why)."""


def db_url(root: Path) -> str:
    """The gradebook's SQLAlchemy URL: ``$CNNLAB_DB_URL``, else SQLite in the course root."""
    return os.environ.get(ENV) or f"sqlite:///{Path(root).resolve() / 'gradebook.db'}"


def describe(url: str) -> str:
    """``url`` for a log line: the dialect, the database, no password."""
    from sqlalchemy.engine import make_url

    try:
        parsed = make_url(url)
    except Exception:
        return "an unreadable database URL"
    if parsed.get_backend_name() == "sqlite":
        return f"SQLite {parsed.database}"
    host = parsed.host or parsed.query.get("host") or "localhost"
    return f"{parsed.get_backend_name()} database {parsed.database!r} on {host}" + (
        f" as {parsed.username}" if parsed.username else ""
    )


def check(url: str, timeout: float = 10.0) -> None:
    """Connect once; :class:`DatabaseError` naming the database and the cause when that fails."""
    from sqlalchemy import create_engine, text

    if url.startswith("sqlite"):
        return
    try:
        args = {"connect_timeout": int(timeout)} if url.startswith("postgresql") else {}
        engine = create_engine(url, connect_args=args)
        with engine.connect() as conn:
            conn.execute(text("select 1"))
        engine.dispose()
    except ModuleNotFoundError as exc:
        raise DatabaseError(
            f"the gradebook is {describe(url)} but its driver is missing ({exc.name}): "
            "pip install -e '.[postgres]'"
        ) from None
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(f"the gradebook {describe(url)} cannot be reached: {first[:300]}") from None


def retrying(work: Callable[[], T], attempts: int = 5) -> T:
    """``work()`` (one transaction that rolls itself back on failure), again after a failure: a
    conflict with a concurrent writer (a unique key both inserted, a serialization failure; nbgrader
    reports some as its own ``InvalidEntry``). The last failure is raised."""
    for attempt in range(attempts):
        try:
            return work()
        except Exception:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * 2**attempt)
    raise AssertionError("unreachable")
