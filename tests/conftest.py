"""Fixtures: a database per run (SQLite, or PostgreSQL when PORTAL_TEST_DATABASE_URL is set),
one rolled-back transaction per test, the app, its clock, clients signed in per role, the CLI
runner."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient, FlaskCliRunner
from sqlalchemy import Connection, Engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session

from portal import create_app
from portal.clock import Clock, app_clock, install_clock
from portal.database import make_engine
from portal.extensions import db
from portal.migrate import upgrade
from portal.models import User
from portal.timeutil import utcnow
from tests import factories

# Fixtures of the approval, schedule and change-window tests (approver, received, ...).
pytest_plugins = ["tests.schedulehelpers"]

POSTGRES_URL = os.environ.get("PORTAL_TEST_DATABASE_URL")
TEST_PASSWORD = "correct horse battery staple"


class FreshDatabases:
    """Hands out empty databases: SQLite files, or PostgreSQL schemas dropped at the end."""

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.schemas: list[str] = []

    def new_url(self) -> str:
        """The URL of a new, empty database."""
        if not POSTGRES_URL:
            return f"sqlite:///{self.tmp / f'portal-{secrets.token_hex(4)}.sqlite3'}"
        schema = f"portal_test_{secrets.token_hex(6)}"
        admin = make_engine(POSTGRES_URL)
        with admin.begin() as connection:
            connection.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        self.schemas.append(schema)
        url = make_url(POSTGRES_URL).update_query_dict({"options": f"-csearch_path={schema}"})
        return url.render_as_string(hide_password=False)

    def drop_all(self) -> None:
        """Remove every schema this run created."""
        if not POSTGRES_URL or not self.schemas:
            return
        admin = make_engine(POSTGRES_URL)
        # One transaction per schema: dropping them all in one holds a lock per table, index
        # and trigger of every schema at once, past PostgreSQL's max_locks_per_transaction.
        for schema in self.schemas:
            with admin.begin() as connection:
                connection.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


@pytest.fixture(scope="session", autouse=True)
def cheap_password_hashing() -> Iterator[None]:
    """argon2id at its cheapest: production cost (~0.2 s a hash) would dominate the suite."""
    from argon2 import PasswordHasher, profiles

    from portal.services import users

    real = users._hasher, users._DUMMY_HASH
    users._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    users._DUMMY_HASH = users._hasher.hash("dummy password")
    yield
    users._hasher, users._DUMMY_HASH = real


@pytest.fixture(scope="session")
def fresh_databases(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FreshDatabases]:
    """Factory of empty databases for tests that need their own (migrations, concurrency)."""
    databases = FreshDatabases(tmp_path_factory.mktemp("databases"))
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def database_url(fresh_databases: FreshDatabases) -> str:
    """The run's shared database, migrated to head once."""
    url = fresh_databases.new_url()
    engine = make_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    """The engine of the run's shared database."""
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    """A connection inside a transaction that is rolled back after the test."""
    connection = engine.connect()
    transaction = connection.begin()
    yield connection
    transaction.rollback()
    connection.close()


def test_settings(tmp_path: Path, database_url: str, **overrides: Any) -> dict[str, Any]:
    """Settings for an app under test; nothing touches the real instance folder."""
    settings: dict[str, Any] = {
        "TESTING": True,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        "SECRET_KEY": secrets.token_urlsafe(32),
        "KEY_ENCRYPTION_KEYS": [factories.new_kek()],
        "WTF_CSRF_ENABLED": False,
        "BASE_URL": "http://portal.test",
        # Test receivers listen on loopback, which production refuses.
        "WEBHOOK_ALLOW_PRIVATE": True,
        # Tests move the clock by days between a signed-in browser's requests: no idle end
        # (SIGNED_IN_FOR). The real timeout is tested in test_session_timeouts.py.
        "SESSION_IDLE_MINUTES": 60 * 24 * 60,
    }
    settings.update(overrides)
    return settings


test_settings.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def reconfigure(app: Flask, **values: Any) -> None:
    """Change settings of APP after it was built (app.config, then the frozen Settings)."""
    from portal.settings import init_settings

    app.config.update(values)
    init_settings(app)


@pytest.fixture
def app(tmp_path: Path, database_url: str, connection: Connection) -> Flask:
    """The app, its sessions bound to the test's transaction (commits become savepoints)."""
    app = create_app(test_settings(tmp_path, database_url))
    db.bind_to(app, connection, join_transaction_mode="create_savepoint")

    @app.before_request
    def _forget_cached_user() -> None:
        # The `session` fixture keeps one app context (so g) for the whole test; production
        # has one per request. Make Flask-Login load the user from each request's cookie.
        from flask import g

        g.pop("_login_user", None)

    return app


class SettableClock(Clock):
    """A clock a test sets and moves; real time until it is first set."""

    def __init__(self) -> None:
        self._moment: datetime | None = None

    def now(self) -> datetime:
        return self._moment if self._moment is not None else utcnow()

    def set(self, moment: datetime) -> None:
        """From now on it is MOMENT (for every request and command of the app)."""
        self._moment = moment

    def advance(self, delta: timedelta) -> None:
        """Move the clock forward by DELTA (from real time if it was not set)."""
        self._moment = self.now() + delta


@pytest.fixture
def clock(app: Flask) -> SettableClock:
    """The app's clock: `clock.set(moment)`, `clock.advance(delta)`; never sleep.

    Web requests and commands read it (portal.clock); services are given `now=` directly.
    """
    settable = SettableClock()
    install_clock(app, settable)
    return settable


@pytest.fixture
def session(app: Flask) -> Iterator[Session]:
    """The database session the app uses, inside an app context."""
    with app.app_context():
        yield db.session


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """An anonymous browser."""
    return app.test_client()


@pytest.fixture
def runner(app: Flask) -> FlaskCliRunner:
    """Runs `portal` commands against the app."""
    return app.test_cli_runner()


@pytest.fixture
def make_user(session: Session) -> Callable[..., User]:
    """Create a user with a role (and the shared test password)."""

    def make(role: str = "viewer", **fields: Any) -> User:
        return factories.user(session, role=role, password=TEST_PASSWORD, **fields)

    return make


# How long the server sessions of signed_in_client last: longer than the app's setting, so
# that tests may move the app's clock by days (the `clock` fixture) and stay signed in. The
# real lifetime is tested through /login (test_staff_sessions.py).
SIGNED_IN_FOR = timedelta(days=60)


def signed_in_client(app: Flask, session: Session, user: User) -> FlaskClient:
    """A browser of APP signed in as USER, with its session open on the server."""
    from portal.services import staff_sessions
    from portal.web.auth.sessions import SESSION_ID_KEY

    client = app.test_client()
    with app.app_context():
        now = app_clock().now()
    token = staff_sessions.open_session(
        session, user, now=now, lifetime=SIGNED_IN_FOR, client_address=None, user_agent=None
    )
    with client.session_transaction() as flask_session:
        flask_session["_user_id"] = user.get_id()
        flask_session["_fresh"] = True
        flask_session[SESSION_ID_KEY] = token
    return client


@pytest.fixture
def login(app: Flask, session: Session) -> Callable[[User], FlaskClient]:
    """A browser signed in as the given user, with its session open on the server."""
    return lambda user: signed_in_client(app, session, user)


@pytest.fixture
def client_as(make_user: Callable[..., User], login: Callable[[User], FlaskClient]) -> Any:
    """Factory: a browser signed in as a new user of ROLE."""

    def as_role(role: str) -> FlaskClient:
        return login(make_user(role))

    return as_role


@pytest.fixture
def admin_client(client_as: Callable[[str], FlaskClient]) -> FlaskClient:
    """A browser signed in as an admin."""
    return client_as("admin")


@pytest.fixture
def operator_client(client_as: Callable[[str], FlaskClient]) -> FlaskClient:
    """A browser signed in as an operator."""
    return client_as("operator")


@pytest.fixture
def viewer_client(client_as: Callable[[str], FlaskClient]) -> FlaskClient:
    """A browser signed in as a viewer."""
    return client_as("viewer")


class CollectingHandler:
    """An aiosmtpd handler that keeps what it receives."""

    def __init__(self) -> None:
        self.messages: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        self.messages.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[tuple[CollectingHandler, int]]:
    """A real SMTP server on loopback that collects messages (aiosmtpd)."""
    import socket

    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    handler = CollectingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    yield handler, port
    controller.stop()


@pytest.fixture
def redis_uri() -> str:
    """Redis on loopback; skipped where none runs, unless PORTAL_REQUIRE_REDIS=1 (.ci/run)."""
    import redis

    uri = os.environ.get("PORTAL_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
    try:
        redis.Redis.from_url(uri, socket_connect_timeout=2).ping()
    except redis.exceptions.ConnectionError:
        if os.environ.get("PORTAL_REQUIRE_REDIS") == "1":
            raise
        pytest.skip(f"no Redis at {uri} (set PORTAL_REQUIRE_REDIS=1 to fail instead)")
    return uri
