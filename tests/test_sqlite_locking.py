"""SQLite, the embedded default: reads take no lock, writes wait their turn for the lock.

Each test holds SQLite's write lock in one connection and shows what another connection
can still do; none depends on timing. They run on SQLite only (PostgreSQL has row locks).
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, insert, select, text
from sqlalchemy.orm import Session

from portal.database import make_engine
from portal.migrate import upgrade
from portal.models import AuditEvent, User
from portal.timeutil import utcnow

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("PORTAL_TEST_DATABASE_URL")), reason="SQLite's locking only"
)


@pytest.fixture
def sqlite_engine(fresh_databases) -> Iterator[Engine]:
    engine = make_engine(fresh_databases.new_url())
    upgrade(engine)
    yield engine
    engine.dispose()


def audit_row(action: str) -> dict[str, object]:
    return {
        "occurred_at": utcnow(),
        "actor": "tests",
        "action": action,
        "object_type": "test",
        "object_id": "1",
        "summary": action,
        "details": {},
    }


def holding_the_write_lock(engine: Engine):
    """A connection in the middle of a write transaction (it holds the write lock)."""
    writer = engine.connect()
    writer.begin()
    writer.execute(insert(AuditEvent).values(**audit_row("held")))
    return writer


def test_a_read_is_answered_while_another_request_holds_the_write_lock(sqlite_engine) -> None:
    writer = holding_the_write_lock(sqlite_engine)
    answered: list[int] = []

    def read() -> None:
        with Session(sqlite_engine) as session:
            answered.append(len(session.scalars(select(User)).all()))

    reader = threading.Thread(target=read)
    reader.start()
    # The old BEGIN IMMEDIATE made the read wait for the writer (busy_timeout, 15 s).
    reader.join(timeout=10)
    try:
        assert answered == [0], "the read waited for the write lock"
    finally:
        writer.rollback()
        writer.close()
        reader.join()


def test_a_transaction_that_read_before_another_commit_can_still_write(sqlite_engine) -> None:
    with Session(sqlite_engine) as session:
        session.scalars(select(AuditEvent)).all()  # a read snapshot, taken first
        # Another connection writes and commits after that snapshot was taken.
        with sqlite_engine.begin() as other:
            other.execute(insert(AuditEvent).values(**audit_row("other")))
        # A plain deferred transaction fails here at once ("database is locked"):
        # its snapshot is stale. The first write takes the lock in a fresh transaction.
        session.execute(insert(AuditEvent).values(**audit_row("mine")))
        session.commit()
    with Session(sqlite_engine) as session:
        actions = set(session.scalars(select(AuditEvent.action)))
    assert {"other", "mine"} <= actions


def test_a_write_waits_for_the_lock_instead_of_failing(sqlite_engine) -> None:
    writer = holding_the_write_lock(sqlite_engine)
    outcome: list[str] = []
    started = threading.Event()

    def write() -> None:
        with Session(sqlite_engine) as session:
            session.scalars(select(AuditEvent)).all()
            started.set()
            try:
                session.execute(insert(AuditEvent).values(**audit_row("waited")))
                session.commit()
                outcome.append("written")
            except Exception as error:  # the test reports what happened
                outcome.append(f"failed: {error}")

    thread = threading.Thread(target=write)
    thread.start()
    started.wait(timeout=10)
    writer.commit()  # releases the lock; the waiting writer goes next
    writer.close()
    thread.join(timeout=30)
    assert outcome == ["written"]


def test_reading_rows_for_update_takes_the_write_lock(sqlite_engine) -> None:
    with Session(sqlite_engine) as session:
        session.scalars(select(AuditEvent)).all()
        assert not session.connection().info["portal.sqlite_write_lock"]
        session.scalars(select(AuditEvent).with_for_update()).all()
        assert session.connection().info["portal.sqlite_write_lock"]
        # Another writer now cannot get in: the lock is ours until commit.
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            try_to_take_the_write_lock(sqlite_engine)
        session.rollback()


def test_read_only_requests_leave_no_lock_behind(sqlite_engine) -> None:
    with Session(sqlite_engine) as session:
        session.execute(text("SELECT 1"))
        try_to_take_the_write_lock(sqlite_engine)  # the read holds no write lock


def try_to_take_the_write_lock(engine: Engine) -> None:
    """Take and release the write lock from a plain sqlite3 connection, without waiting."""
    raw = sqlite3.connect(str(engine.url.database), timeout=0, isolation_level=None)
    try:
        raw.execute("BEGIN IMMEDIATE")
        raw.execute("ROLLBACK")
    finally:
        raw.close()
