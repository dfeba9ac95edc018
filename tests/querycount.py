"""Count the SQL statements a request sends, to prove a page's cost does not grow with data.

Used as `with counting(connection) as statements: client.get(...)`, then compare
`len(statements)` for the same page over a small and a larger data set. Statements are
recorded on the test's connection (the app is bound to it), so only this test's SQL counts.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection

# Savepoint bookkeeping of the test harness, not the page's own work.
_HARNESS = ("SAVEPOINT", "RELEASE SAVEPOINT", "ROLLBACK TO SAVEPOINT")


@contextmanager
def counting(connection: Connection) -> Iterator[list[str]]:
    """Collect the SQL text of every statement CONNECTION executes inside the block."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(_HARNESS):
            statements.append(statement)

    event.listen(connection, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        event.remove(connection, "before_cursor_execute", record)


def describe(statements: list[str]) -> str:
    """The statements, numbered, for an assertion message."""
    return "\n".join(f"{n}. {' '.join(s.split())[:200]}" for n, s in enumerate(statements, 1))
