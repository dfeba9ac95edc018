"""Guessing link tokens is rate-limited per client address; real links are not slowed."""

from __future__ import annotations

import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask

from portal import create_app
from portal.extensions import db, link_signer
from portal.services import links
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import test_settings


def limited_app(tmp_path: Path, database_url: str, connection, **settings) -> Flask:
    app = create_app(
        test_settings(tmp_path, database_url, RATELIMIT_INVALID_LINKS="3 per minute", **settings)
    )
    db.bind_to(app, connection, join_transaction_mode="create_savepoint")
    return app


def test_invalid_tokens_are_limited_per_address(tmp_path, database_url, connection) -> None:
    app = limited_app(tmp_path, database_url, connection)
    client = app.test_client()
    for _ in range(3):
        assert client.get("/s/not-a-token").status_code == 404
    assert client.get("/s/not-a-token").status_code == 429
    other = app.test_client()
    response = other.get("/s/not-a-token", environ_base={"REMOTE_ADDR": "127.0.0.9"})
    assert response.status_code == 404  # another address has its own budget


def test_valid_links_do_not_use_up_the_budget(tmp_path, database_url, connection) -> None:
    app = limited_app(tmp_path, database_url, connection)
    with app.app_context():
        partner = factories.partner(db.session)
        _link, token = links.create_link(
            db.session, factories.ACTOR, link_signer(), partner, can_download=True,
            can_upload=True, lifetime=timedelta(days=1), max_uploads=1, now=utcnow(),
        )  # fmt: skip
        db.session.commit()
    client = app.test_client()
    for _ in range(10):
        assert client.get(f"/s/{token}").status_code == 200


def test_limit_is_shared_by_processes_through_redis(
    tmp_path, database_url, connection, redis_uri
) -> None:
    # Two app instances stand for two web processes sharing one Redis.
    address = f"127.0.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"
    first = limited_app(tmp_path / "a", database_url, connection, RATELIMIT_STORAGE_URI=redis_uri)
    second = limited_app(tmp_path / "b", database_url, connection, RATELIMIT_STORAGE_URI=redis_uri)
    environ = {"REMOTE_ADDR": address}
    for _ in range(2):
        assert first.test_client().get("/s/x", environ_base=environ).status_code == 404
    assert second.test_client().get("/s/x", environ_base=environ).status_code == 404
    assert second.test_client().get("/s/x", environ_base=environ).status_code == 429
