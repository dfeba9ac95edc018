"""The throwaway database: SQLite in a temp folder, or a new schema in a given PostgreSQL."""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Engine, func, inspect, select, text
from sqlalchemy.engine import make_url

from portal.database import make_engine
from portal.migrate import upgrade
from portal.models import Base


class TargetRefusedError(RuntimeError):
    """The given database holds portal data: the bench will not run beside it."""


@dataclass
class Target:
    """Where the bench writes: URL (with its schema) and how to clean up."""

    url: str
    kind: str  # sqlite or postgresql
    schema: str | None = None  # the throwaway PostgreSQL schema, dropped at the end
    admin_url: str | None = None

    def engine(self) -> Engine:
        """A new engine on the throwaway database."""
        return make_engine(self.url)

    def drop(self) -> None:
        """Remove the throwaway schema (SQLite files go with their temp folder)."""
        if self.schema is None or self.admin_url is None:
            return
        admin = make_engine(self.admin_url)
        try:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{self.schema}" CASCADE'))
        finally:
            admin.dispose()


def open_target(database_url: str | None, folder: Path) -> Target:
    """Create the throwaway database and bring it to the newest schema (as `portal init`)."""
    if not database_url:
        target = Target(f"sqlite:///{folder / 'bench.sqlite3'}", "sqlite")
    elif database_url.startswith("sqlite"):
        refuse_if_in_use(database_url)
        target = Target(database_url, "sqlite")
    else:
        refuse_if_in_use(database_url)
        target = _postgres_schema(database_url)
    engine = target.engine()
    try:
        upgrade(engine)
    except Exception:
        engine.dispose()
        target.drop()
        raise
    engine.dispose()
    return target


def refuse_if_in_use(database_url: str) -> None:
    """TargetRefusedError when a portal table at DATABASE_URL has rows (never touched)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            present = set(inspect(connection).get_table_names())
            for table in Base.metadata.sorted_tables:
                if table.name not in present:
                    continue
                rows = connection.scalar(select(func.count()).select_from(table))
                if rows:
                    raise TargetRefusedError(
                        f"{make_url(database_url).render_as_string(hide_password=True)} holds "
                        f"portal data ({table.name} has {rows} rows); point --database-url at "
                        "an empty database."
                    )
    finally:
        engine.dispose()


def _postgres_schema(database_url: str) -> Target:
    """A new schema in the PostgreSQL at DATABASE_URL; the bench's URL searches only it."""
    schema = f"portal_bench_{secrets.token_hex(6)}"
    admin = make_engine(database_url)
    try:
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
    finally:
        admin.dispose()
    url = make_url(database_url).update_query_dict({"options": f"-csearch_path={schema}"})
    return Target(url.render_as_string(hide_password=False), "postgresql", schema, database_url)
