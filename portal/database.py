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
        # IMMEDIATE takes the write lock up front: a deferred transaction that later
        # writes can fail at once with "database is locked" instead of waiting.
        connection.exec_driver_sql("BEGIN IMMEDIATE")


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
