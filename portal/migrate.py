"""Schema management with the Alembic migrations shipped in portal/migrations."""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine

SCRIPT_LOCATION = "portal:migrations"


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config for the packaged migrations, optionally bound to CONNECTION."""
    config = Config()
    config.set_main_option("script_location", SCRIPT_LOCATION)
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revisions() -> tuple[str, ...]:
    """The head revision(s) of the shipped migrations (exactly one when healthy)."""
    return tuple(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at, or None for an empty database."""
    with engine.connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def keep_sqlite_private(engine: Engine) -> None:
    """Make a SQLite database readable by its owner only, like the secrets beside it.

    A new file is created 0600 before SQLite opens it (SQLite would create it 0644 under
    the usual umask); SQLite gives its -wal and -shm files the database file's mode, so
    they follow. Files left group- or world-readable by an earlier version are tightened.
    Other databases, in-memory and URI-style SQLite databases are left alone.
    """
    database = engine.url.database
    if engine.dialect.name != "sqlite" or not database or database == ":memory:":
        return
    if database.startswith("file:") or "uri" in engine.url.query:
        return
    # An existing database, or a missing folder SQLite will report, is not created here.
    with contextlib.suppress(FileExistsError, FileNotFoundError):
        os.close(os.open(database, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for path in (database, f"{database}-wal", f"{database}-shm", f"{database}-journal"):
        try:
            mode = stat.S_IMODE(os.stat(path).st_mode)
            if mode & 0o077:
                os.chmod(path, mode & 0o700)
        except (FileNotFoundError, PermissionError):
            continue  # not there, or not ours to change


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Create or upgrade the schema to head; returns (revision before, revision after)."""
    keep_sqlite_private(engine)
    before = current_revision(engine)
    with engine.begin() as connection:
        command.upgrade(alembic_config(connection), "head")
    return before, current_revision(engine)


def autogenerate_revision(message: str) -> None:
    """Write a new revision for the model changes, diffed against a scratch database at head."""
    from portal.database import make_engine

    with tempfile.TemporaryDirectory() as scratch:
        engine = make_engine(f"sqlite:///{scratch}/scratch.sqlite3")
        upgrade(engine)
        with engine.begin() as connection:
            command.revision(alembic_config(connection), message=message, autogenerate=True)
        engine.dispose()


if __name__ == "__main__":  # python -m portal.migrate "what changed"
    autogenerate_revision(" ".join(sys.argv[1:]) or "schema change")
