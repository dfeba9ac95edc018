"""Adding a row the database may refuse, as a concurrent writer can make it do at any time.

Checks before a write cannot see a twin another transaction is writing at the same moment;
the database's constraints (unique keys, mostly) can. The row is flushed in a savepoint,
so a refusal undoes only that row and leaves the caller's transaction usable.
"""

from __future__ import annotations

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.services.errors import ConflictError


def try_add(session: Session, row: object) -> bool:
    """Add ROW and flush it in a savepoint; False, nothing written, if a constraint refuses it."""
    try:
        with session.begin_nested():
            session.add(row)
            session.flush()
    except IntegrityError:
        return False
    return True


def add_or_conflict(
    session: Session, row: object, message: str, *, field: str | None = None
) -> None:
    """Add ROW and flush it; a refusal by a constraint becomes ConflictError(MESSAGE, FIELD)."""
    if not try_add(session, row):
        raise ConflictError(message, field=field)
