"""A throwaway PostgreSQL server for the tests: Debian's ``postgresql`` binaries, a cluster made in a
temporary folder with ``initdb``, listening on a unix socket only (no TCP), stopped at the end.

``initdb`` refuses to run as root: as root the cluster belongs to the ``postgres`` user (``runuser``).
"""

from __future__ import annotations

import contextlib
import glob
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

PORT = 5499


def binaries() -> Path | None:
    """The folder of ``initdb`` and ``pg_ctl`` (Debian keeps them out of PATH), or None."""
    versions = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    if versions:
        return Path(versions[-1]).parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _as_owner(argv: list[str]) -> list[str]:
    if os.geteuid() == 0:
        return ["runuser", "-u", "postgres", "--", *argv]
    return argv


@contextlib.contextmanager
def server(dbnames: tuple[str, ...] = ("cnnlab",)) -> Iterator[dict[str, str]]:
    """Start a server; yields ``{dbname: SQLAlchemy URL}``."""
    bindir = binaries()
    if bindir is None:
        raise RuntimeError("PostgreSQL is not installed (Debian: apt-get install postgresql)")
    folder = Path(tempfile.mkdtemp(prefix="cnnlab-pg-"))
    data, sock = folder / "data", folder / "sock"
    sock.mkdir()
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres")
        shutil.chown(sock, "postgres")
    folder.chmod(0o755)
    env = {**os.environ, "LC_ALL": "C.UTF-8"}
    run = {"check": True, "capture_output": True, "text": True, "env": env, "timeout": 120}
    subprocess.run(
        _as_owner([str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"]), **run
    )
    options = f"-k {sock} -c listen_addresses='' -p {PORT} -c fsync=off"
    ctl = str(bindir / "pg_ctl")
    subprocess.run(
        _as_owner([ctl, "-D", str(data), "-l", str(sock / "pg.log"), "-w", "-o", options, "start"]), **run
    )
    try:
        urls = {}
        for name in dbnames:
            subprocess.run(
                _as_owner(
                    [str(bindir / "createdb"), "-h", str(sock), "-p", str(PORT), "-U", "postgres", name]
                ),
                **run,
            )
            urls[name] = f"postgresql+psycopg://postgres@/{name}?host={sock}&port={PORT}"
        yield urls
    finally:
        subprocess.run(
            _as_owner([ctl, "-D", str(data), "-m", "immediate", "-w", "stop"]), env=env, check=False
        )
        shutil.rmtree(folder, ignore_errors=True)


def copy_gradebook(sqlite_path: Path, url: str) -> int:
    """Copy nbgrader's gradebook at ``sqlite_path`` into the empty database at ``url``: nbgrader's
    tables (its SQLAlchemy models) and its migration stamp (``alembic_version``), then every row,
    parents first. Returns the rows copied. What the SQLite tests autograded is then the PostgreSQL
    tests' course too."""
    import sqlalchemy
    from nbgrader.api import Base

    source = sqlalchemy.create_engine(f"sqlite:///{sqlite_path}")
    target = sqlalchemy.create_engine(url)
    copied = 0
    try:
        Base.metadata.create_all(target)
        with source.connect() as src, target.begin() as dst:
            (stamp,) = src.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).one()
            dst.execute(sqlalchemy.text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            dst.execute(sqlalchemy.text("INSERT INTO alembic_version VALUES (:v)"), {"v": stamp})
            for table in Base.metadata.sorted_tables:
                rows = [dict(row._mapping) for row in src.execute(table.select())]
                if rows:
                    dst.execute(table.insert(), rows)
                    copied += len(rows)
    finally:
        source.dispose()
        target.dispose()
    return copied
