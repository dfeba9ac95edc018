"""Every page and error the portal serves carries the right content type.

A partner whose link expired must see the "this link no longer works" page, not its HTML
source: each error status is checked on staff and on partner routes, reached the way a
person reaches it wherever the portal has such a path.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from flask import Flask, abort
from flask.testing import FlaskClient
from sqlalchemy import Connection
from sqlalchemy.orm import Session

from portal import create_app
from portal.extensions import db, link_signer
from portal.services import links
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.conftest import test_settings

HTML = "text/html; charset=utf-8"
JSON = "application/json"


def assert_html_page(response, status: int) -> str:
    """RESPONSE is a whole HTML page with STATUS; returns its text."""
    assert response.status_code == status
    assert response.headers["Content-Type"] == HTML
    text = response.get_data(as_text=True)
    assert text.lstrip().lower().startswith("<!doctype html>")
    return text


def new_token(session: Session, app: Flask, **fields) -> str:
    partner = factories.partner(session)
    with app.test_request_context():
        _link, token = links.create_link(
            session,
            factories.ACTOR,
            link_signer(),
            partner,
            can_download=fields.pop("can_download", True),
            can_upload=fields.pop("can_upload", True),
            lifetime=fields.pop("lifetime", timedelta(days=14)),
            max_uploads=fields.pop("max_uploads", 3),
            now=fields.pop("now", utcnow()),
        )
    session.flush()
    return token


# ---------------------------------------------------------------------------
# Partner routes, reached as a partner reaches them
# ---------------------------------------------------------------------------


def test_expired_link_page_is_html_not_source_text(app, client, session) -> None:
    token = new_token(session, app, lifetime=timedelta(seconds=1), now=utcnow() - timedelta(days=1))
    text = assert_html_page(client.get(f"/s/{token}"), 410)
    assert "This link no longer works" in text
    assert "expired" in text


def test_revoked_link_page_is_html(app, client, session) -> None:
    token = new_token(session, app)
    link = links.resolve(session, _signer(app), token)
    links.revoke(session, factories.ACTOR, link, utcnow())
    session.flush()
    assert "withdrawn" in assert_html_page(client.get(f"/s/{token}"), 410)


def test_unknown_link_page_is_html(client) -> None:
    assert "not valid" in assert_html_page(client.get("/s/not-a-real-token"), 404)


def test_unknown_certificate_download_is_a_partner_404_page(app, client, session) -> None:
    token = new_token(session, app)
    text = assert_html_page(client.get(f"/s/{token}/certificates/{'0' * 64}.pem"), 404)
    assert "Sign out" not in text  # the partner layout, no staff menu


def test_refused_partner_upload_is_an_html_page(app, client, session) -> None:
    token = new_token(session, app)
    response = client.post(
        f"/s/{token}/upload",
        data={"pasted": "this is not a certificate", "usage": "both"},
    )
    assert_html_page(response, 422)


def test_too_large_partner_upload_is_an_html_page(app, client, session) -> None:
    token = new_token(session, app)
    response = client.post(
        f"/s/{token}/upload", data={"pasted": "A" * (200 * 1024), "usage": "both"}
    )
    assert_html_page(response, 413)


def test_machine_upload_errors_are_json(app, client, session) -> None:
    token = new_token(session, app, can_upload=False)
    cert, _ = certfactory.make_cert(now=utcnow(), days=400, key_size=3072)
    forbidden = client.post(f"/s/{token}/certificate", data=certfactory.pem(cert))
    assert forbidden.status_code == 403
    assert forbidden.headers["Content-Type"] == JSON
    unknown = client.post("/s/not-a-real-token/certificate", data=b"x")
    assert unknown.status_code == 404
    assert unknown.headers["Content-Type"] == JSON


def test_partner_csrf_failure_is_an_html_page(
    tmp_path: Path, database_url: str, connection: Connection
) -> None:
    app = create_app(test_settings(tmp_path, database_url, WTF_CSRF_ENABLED=True))
    db.bind_to(app, connection, join_transaction_mode="create_savepoint")
    with app.app_context():
        token = new_token(db.session, app)
    response = app.test_client().post(f"/s/{token}/acknowledge", data={})
    assert "Form expired" in assert_html_page(response, 400)


def test_rate_limited_partner_page_is_html(
    tmp_path: Path, database_url: str, connection: Connection
) -> None:
    app = create_app(test_settings(tmp_path, database_url, RATELIMIT_INVALID_LINKS="2 per minute"))
    db.bind_to(app, connection, join_transaction_mode="create_savepoint")
    client = app.test_client()
    for _ in range(2):
        client.get("/s/guessed-token")
    text = assert_html_page(client.get("/s/guessed-token"), 429)
    assert "Too many" in text


# ---------------------------------------------------------------------------
# Staff routes, reached as staff reach them
# ---------------------------------------------------------------------------


def test_staff_forbidden_page_is_html(client_as: Callable[[str], FlaskClient]) -> None:
    assert "Not allowed" in assert_html_page(client_as("viewer").get("/users"), 403)


def test_staff_not_found_page_is_html(admin_client: FlaskClient) -> None:
    assert_html_page(admin_client.get("/partners/999999"), 404)
    assert_html_page(admin_client.get("/no-such-page"), 404)


def test_a_method_an_address_does_not_take_is_405_with_allow(client: FlaskClient) -> None:
    # RFC 9110: a 405 lists the methods the address takes. The page used to drop the header.
    response = client.delete("/login")
    assert_html_page(response, 405)
    assert set(response.headers["Allow"].split(", ")) == {"GET", "HEAD", "OPTIONS", "POST"}


def test_staff_csrf_failure_is_an_html_page(
    tmp_path: Path, database_url: str, connection: Connection
) -> None:
    app = create_app(test_settings(tmp_path, database_url, WTF_CSRF_ENABLED=True))
    db.bind_to(app, connection, join_transaction_mode="create_savepoint")
    response = app.test_client().post("/login", data={"email": "a@example.com"})
    assert "Form expired" in assert_html_page(response, 400)


def test_staff_form_refusal_is_an_html_page(admin_client: FlaskClient) -> None:
    response = admin_client.post("/identities/new", data={"name": "", "as2_id": ""})
    assert_html_page(response, 422)


# ---------------------------------------------------------------------------
# Every error status, on a staff path and on a partner path
# ---------------------------------------------------------------------------

STATUSES = [400, 403, 404, 410, 413, 422, 429, 500]


@pytest.fixture
def aborting_app(tmp_path: Path, database_url: str, connection: Connection) -> Flask:
    """The app plus one route per face that fails with the status it is given."""
    app = create_app(test_settings(tmp_path, database_url))
    app.config["PROPAGATE_EXCEPTIONS"] = False  # answer 500 as production does
    db.bind_to(app, connection, join_transaction_mode="create_savepoint")

    def fail(code: int) -> str:
        if code == 500:
            raise RuntimeError("a bug")
        abort(code)

    app.add_url_rule("/staff-failure/<int:code>", "staff_failure", fail)
    app.add_url_rule("/s/failure-of/<int:code>", "partner_failure", fail)
    return app


@pytest.mark.parametrize("code", STATUSES)
def test_every_staff_error_status_is_an_html_page(aborting_app: Flask, code: int) -> None:
    text = assert_html_page(aborting_app.test_client().get(f"/staff-failure/{code}"), code)
    assert f"HTTP {code}" in text


@pytest.mark.parametrize("code", STATUSES)
def test_every_partner_error_status_is_an_html_page_in_the_partner_layout(
    aborting_app: Flask, code: int
) -> None:
    text = assert_html_page(aborting_app.test_client().get(f"/s/failure-of/{code}"), code)
    assert f"HTTP {code}" in text
    assert 'class="topbar"' not in text  # no staff header on a partner's page


def test_server_error_page_renders_when_the_database_is_broken(aborting_app: Flask) -> None:
    def database_down() -> str:
        db.session.connection().exec_driver_sql("SELECT * FROM no_such_table")
        return "unreachable"

    aborting_app.add_url_rule("/broken", "broken", database_down)
    text = assert_html_page(aborting_app.test_client().get("/broken"), 500)
    assert "nothing was changed" in text
    assert "no_such_table" not in text  # no internals for the reader


def _signer(app: Flask):
    with app.app_context():
        return link_signer()
