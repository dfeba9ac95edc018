"""A service's refusal carries its HTTP status; each blueprint answers with it, once.

No view reads a refusal's message to choose a status: the class says it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.orm import Session

from portal.extensions import link_signer
from portal.services import directory, links, submissions
from portal.services.errors import (
    ConflictError,
    LinkClosedError,
    LinkGoneError,
    LinkUsedUpError,
    NotFoundError,
    ServiceError,
)
from portal.timeutil import utcnow
from tests import factories

REFUSALS = [
    (LinkClosedError("This link is for downloading only; it does not accept uploads."), 403),
    (LinkUsedUpError("This link has no uploads left."), 409),
    (LinkGoneError("This link is revoked; it no longer accepts uploads."), 410),
    (ServiceError("Usage must be signing, encryption or both."), 422),
]


def new_token(session: Session, app: Flask) -> str:
    with app.test_request_context():
        _link, token = links.create_link(
            session, factories.ACTOR, link_signer(), factories.partner(session),
            can_download=True, can_upload=True, lifetime=timedelta(days=1), max_uploads=3,
            now=utcnow(),
        )  # fmt: skip
    session.flush()
    return token


def refuse_uploads_with(monkeypatch: pytest.MonkeyPatch, error: ServiceError) -> None:
    def refuse(*_args: object, **_kwargs: object) -> None:
        raise error

    monkeypatch.setattr(submissions, "submit_via_link", refuse)


def test_each_refusal_names_its_status() -> None:
    assert ServiceError("no").http_status == 422
    assert NotFoundError("no").http_status == 404
    assert ConflictError("no").http_status == 409
    assert [error.http_status for error, _ in REFUSALS] == [403, 409, 410, 422]
    assert issubclass(LinkGoneError, LinkClosedError)
    assert issubclass(LinkUsedUpError, LinkClosedError)


@pytest.mark.parametrize(("error", "status"), REFUSALS)
def test_a_refused_machine_upload_answers_json_with_the_refusals_status(
    app: Flask,
    client: FlaskClient,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    error: ServiceError,
    status: int,
) -> None:
    token = new_token(session, app)
    refuse_uploads_with(monkeypatch, error)

    response = client.post(f"/s/{token}/certificate", data=b"-----BEGIN CERTIFICATE-----")

    assert response.status_code == status
    assert response.get_json() == {"error": error.message}


@pytest.mark.parametrize(("error", "status"), REFUSALS)
def test_a_refused_upload_form_shows_the_link_page_with_the_refusals_status(
    app: Flask,
    client: FlaskClient,
    session: Session,
    monkeypatch: pytest.MonkeyPatch,
    error: ServiceError,
    status: int,
) -> None:
    token = new_token(session, app)
    refuse_uploads_with(monkeypatch, error)

    response = client.post(
        f"/s/{token}/upload", data={"pasted": "-----BEGIN CERTIFICATE-----", "usage": "both"}
    )

    assert response.status_code == status
    assert error.message in response.get_data(as_text=True)


def test_a_link_revoked_under_an_upload_is_gone(app: Flask, session: Session) -> None:
    """The service says 410 for a link that stopped working, as the link page does."""
    link = factories.share_link(session, factories.partner(session))
    links.revoke(session, factories.ACTOR, link, utcnow())

    with pytest.raises(LinkGoneError, match="revoked; it no longer accepts uploads"):
        submissions.submit_via_link(
            session, factories.ACTOR, link, data=b"", usage="both", now=utcnow(),
            overlap=timedelta(days=7), confirm_warnings=True,
        )  # fmt: skip


def test_a_staff_refusal_no_view_handles_is_the_error_page_for_its_status(
    viewer_client: FlaskClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    def clash(*_args: object, **_kwargs: object) -> None:
        raise ConflictError("Someone else changed this partner.")

    monkeypatch.setattr(directory, "get_partner", clash)

    page = viewer_client.get("/partners/1")
    body = viewer_client.get("/partners/1", headers={"Accept": "application/json"})

    assert page.status_code == 409
    assert page.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "Someone else changed" not in page.get_data(as_text=True)
    assert body.status_code == 409
    assert body.get_json()["error"] == "Conflict"
