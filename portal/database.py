"""Engine, request-scoped sessions and the one commit per request.

Services take a Session and only flush; the request (or CLI command) that called
them decides to commit, so a failure leaves nothing half-written.
"""

from __future__ import annotations

from typing import Any

from flask import Flask, Response, g
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, sessionmaker

EXTENSION_KEY = "portal.db"


def make_engine(url: str, **kwargs: Any) -> Engine:
    """Create an engine; SQLite gets foreign keys, WAL, a busy timeout and real savepoints."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"timeout": 15}, **kwargs)
        _configure_sqlite(engine)
        return engine
    return create_engine(url, pool_pre_ping=True, **kwargs)


# Set on a SQLite connection's info while its transaction holds the write lock.
_HOLDS_WRITE_LOCK = "portal.sqlite_write_lock"
# Statements that write, or open a savepoint a write will follow.
_WRITING_VERBS = frozenset(
    {"INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOINT", "CREATE", "DROP", "ALTER"}
)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the sqlite3 module, decide where transactions begin;
        # the module's own handling breaks SAVEPOINT.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=15000")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # Deferred: a transaction that only reads takes no lock, so pages never queue
        # behind one another. The write lock is taken at the first write (below).
        connection.exec_driver_sql("BEGIN")
        connection.info[_HOLDS_WRITE_LOCK] = False

    @event.listens_for(engine, "before_cursor_execute")
    def _lock_before_first_write(
        connection: Connection,
        _cursor: Any,
        statement: str,
        _parameters: Any,
        context: Any,
        _executemany: bool,
    ) -> None:
        if connection.info.get(_HOLDS_WRITE_LOCK, True) or not _needs_write_lock(
            statement, context
        ):
            return
        _take_write_lock(connection)


def _needs_write_lock(statement: str, context: Any) -> bool:
    """Does STATEMENT write, or read rows FOR UPDATE (which SQLite cannot express)?"""
    verb = statement.lstrip().split(None, 1)[0].upper() if statement.strip() else ""
    if verb in _WRITING_VERBS:
        return True
    compiled = getattr(context, "compiled", None)
    # SQLite compiles FOR UPDATE away; the statement object still says it was asked for.
    return getattr(getattr(compiled, "statement", None), "_for_update_arg", None) is not None


def _take_write_lock(connection: Connection) -> None:
    """Turn a read transaction into a write transaction holding SQLite's write lock.

    A deferred transaction cannot safely upgrade itself: if another connection wrote
    since it began, SQLite refuses at once ("database is locked") instead of waiting.
    So the read transaction, which has written nothing, ends, and BEGIN IMMEDIATE
    waits its turn (busy_timeout) for the lock. What runs from here on reads the
    newest data under the lock, as rows locked FOR UPDATE would on PostgreSQL.
    """
    dbapi_connection = connection.connection.dbapi_connection
    assert dbapi_connection is not None  # noqa: S101  (a statement is being executed on it)
    if dbapi_connection.in_transaction:
        dbapi_connection.execute("COMMIT")
    dbapi_connection.execute("BEGIN IMMEDIATE")
    connection.info[_HOLDS_WRITE_LOCK] = True


class Database:
    """Flask extension holding the engine and a session per request or command."""

    def init_app(self, app: Flask) -> None:
        """Create the engine (no connection yet) and the session lifecycle hooks."""
        engine = make_engine(app.config["DATABASE_URL"])
        app.extensions[EXTENSION_KEY] = {
            "engine": engine,
            "sessionmaker": sessionmaker(bind=engine, expire_on_commit=False),
        }
        app.before_request(self._reset_request_flags)
        app.after_request(self._commit_on_success)
        app.teardown_appcontext(self._close_session)

    @staticmethod
    def _state() -> dict[str, Any]:
        from flask import current_app

        state: dict[str, Any] = current_app.extensions[EXTENSION_KEY]
        return state

    @property
    def engine(self) -> Engine:
        """The current app's engine."""
        engine: Engine = self._state()["engine"]
        return engine

    def bind_to(self, app: Flask, bind: Engine | Connection, **options: Any) -> None:
        """Point APP's sessions at BIND (tests pass a connection inside a transaction)."""
        app.extensions[EXTENSION_KEY]["sessionmaker"] = sessionmaker(
            bind=bind, expire_on_commit=False, **options
        )

    @property
    def session(self) -> Session:
        """The session of the current request or command, created on first use."""
        if "db_session" not in g:
            g.db_session = self._state()["sessionmaker"]()
        session: Session = g.db_session
        return session

    @staticmethod
    def commit_despite_status() -> None:
        """Commit this request's work even though it answers with an error status.

        For refusals that must leave a trace (a refused upload is audited) while the
        answer is a 4xx; the services made no other change in such a request.
        """
        g.db_commit_anyway = True

    def end_read(self) -> None:
        """End this request's transaction before slow work (password hashing).

        Only for a transaction that has changed nothing yet: it holds no lock then,
        and ending it keeps a slow step from holding a snapshot open.
        """
        session: Session | None = g.get("db_session")
        if session is None:
            return
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("end_read() with unsaved changes; commit belongs to the request")
        session.commit()

    @staticmethod
    def _reset_request_flags() -> None:
        g.pop("db_commit_anyway", None)

    @staticmethod
    def _commit_on_success(response: Response) -> Response:
        session: Session | None = g.get("db_session")
        if session is not None and (response.status_code < 400 or g.get("db_commit_anyway")):
            session.commit()
        return response

    @staticmethod
    def _close_session(_exc: BaseException | None) -> None:
        session: Session | None = g.pop("db_session", None)
        if session is not None:
            session.close()
