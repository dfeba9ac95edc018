"""Alembic environment: runs against the connection portal.migrate hands over."""

from __future__ import annotations

from typing import Any

from alembic import context
from sqlalchemy import create_engine

from portal.models import Base, UTCDateTime

config = context.config
target_metadata = Base.metadata


def render_item(type_: str, obj: object, autogen_context: Any) -> str | bool:
    """Write our UTC timestamp type as a plain timezone-aware DateTime in revisions."""
    if type_ == "type" and isinstance(obj, UTCDateTime):
        return "sa.DateTime(timezone=True)"
    return False


def run_migrations(connection: object) -> None:
    """Run the migrations on CONNECTION (batch mode lets SQLite alter tables)."""
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=True,
        compare_type=True,
        render_item=render_item,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    run_migrations(connection)
else:
    # `alembic -x url=...` from a checkout, for authors writing new revisions.
    url = context.get_x_argument(as_dictionary=True).get("url", "sqlite:///instance/portal.sqlite3")
    with create_engine(url).begin() as new_connection:
        run_migrations(new_connection)
