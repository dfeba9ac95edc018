"""Uploads by script (`POST /s/<token>/certificate`): JSON answers, refusals, no CSRF token,
the printed curl line, and the link's upload limit.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from flask import Flask
from sqlalchemy.orm import Session

from portal import create_app
from portal.domain.certs import colon_fingerprint
from portal.extensions import db
from portal.services import links
from portal.timeutil import utcnow
from tests import certfactory, factories
from tests.conftest import test_settings
from tests.linkhelpers import (
    GARBAGE,
    KIB,
    audit_events,
    forged,
    partner_cert,
    pem_file,
    private_key,
    sha256_of,
    share,
    submissions_of,
    typed,
    uploads_used,
)


def _raw_pem(cert: x509.Certificate) -> dict[str, Any]:
    return {"data": certfactory.pem(cert), "content_type": "application/x-pem-file"}


def _raw_der(cert: x509.Certificate) -> dict[str, Any]:
    return {"data": certfactory.der(cert), "content_type": "application/octet-stream"}


def _multipart(cert: x509.Certificate) -> dict[str, Any]:
    return {"data": {"certificate": pem_file(certfactory.pem(cert), "partner.crt")}}


@pytest.mark.parametrize(
    ("body", "usage"),
    [(_raw_pem, None), (_raw_der, "signing"), (_multipart, "encryption")],
    ids=["pem-default-usage", "der-signing", "multipart-encryption"],
)
def test_machine_upload_answers_json_and_repeats_are_duplicates(
    client, session, body: Any, usage: str | None
) -> None:
    shared = share(session)
    cert = partner_cert()
    url = f"{shared.page}/certificate" + (f"?usage={usage}" if usage else "")

    first = client.post(url, **body(cert))

    assert first.status_code == 201, first.get_data(as_text=True)
    answer = first.get_json()
    assert answer["report"]["acceptable"] is True
    assert isinstance(answer["report"]["findings"], list)
    assert answer["report"]["certificate"]["fingerprint_sha256"] == colon_fingerprint(
        sha256_of(cert)
    )
    assert answer["status"] == "received"
    assert answer["duplicate"] is False
    (submission,) = submissions_of(session, shared.partner)
    assert answer["submission_id"] == submission.id
    assert submission.usage == (usage or "both")
    assert uploads_used(session, shared.link) == 1

    again = client.post(url, **body(cert))

    assert again.status_code == 200
    assert again.get_json()["duplicate"] is True
    assert again.get_json()["submission_id"] == submission.id
    assert len(submissions_of(session, shared.partner)) == 1
    assert uploads_used(session, shared.link) == 1


def test_machine_upload_takes_warnings_and_reports_them(client, session) -> None:
    shared = share(session)
    response = client.post(
        f"{shared.page}/certificate", data=certfactory.pem(partner_cert(key_size=2048))
    )
    assert response.status_code == 201
    codes = {f["code"] for f in response.get_json()["report"]["findings"]}
    assert "rsa_2048" in codes


@pytest.mark.parametrize(
    ("case", "data", "code"),
    [
        ("private key", private_key, "private_key"),
        ("garbage", lambda: GARBAGE, "unreadable"),
    ],
)
def test_machine_upload_refusals_are_422_json_and_audited(
    client, session, case: str, data: Any, code: str
) -> None:
    shared = share(session)
    session.commit()

    response = client.post(f"{shared.page}/certificate", data=data())

    assert response.status_code == 422
    answer = response.get_json()
    assert answer["report"]["acceptable"] is False
    assert code in [f["code"] for f in answer["report"]["findings"]]
    assert answer["submission_id"] is None
    assert answer["status"] == "refused"
    assert uploads_used(session, shared.link) == 0
    session.rollback()
    (event,) = audit_events(session, "submission.refused", shared.link)
    assert code in event.details["codes"]
    assert submissions_of(session, shared.partner) == []


def test_machine_upload_too_large_is_413_json(client, session) -> None:
    shared = share(session)
    big = certfactory.pem(partner_cert()) + b"A" * (65 * KIB)

    for data in (big, {"certificate": pem_file(big)}):
        response = client.post(f"{shared.page}/certificate", data=data)
        assert response.status_code == 413
        assert "64 KiB" in response.get_json()["error"]

    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("expired", 410),
        ("revoked", 410),
        ("forged", 404),
        ("download only", 403),
        ("used up", 409),
    ],
)
def test_machine_upload_on_a_link_that_cannot_take_it(
    app, client, session, clock, case: str, status: int
) -> None:
    options = {"can_upload": False, "max_uploads": 0} if case == "download only" else {}
    shared = (
        share(session, max_uploads=1, **options) if case == "used up" else share(session, **options)
    )
    token = shared.token
    if case == "expired":
        clock.set(shared.link.expires_at + timedelta(minutes=1))
    elif case == "revoked":
        links.revoke(session, factories.ACTOR, shared.link, utcnow())
    elif case == "forged":
        token = forged(token)
    elif case == "used up":
        first = client.post(f"/s/{token}/certificate", data=certfactory.pem(partner_cert()))
        assert first.status_code == 201
    before = len(submissions_of(session, shared.partner))

    response = client.post(
        f"/s/{token}/certificate",
        data=certfactory.pem(partner_cert()),
        headers={"Accept": "application/json"},
    )

    assert response.status_code == status
    assert response.is_json
    body = response.get_data(as_text=True)
    assert shared.partner.name not in body
    if case in ("expired", "revoked"):
        # The test app's contact is the placeholder nobody reads: the partner is sent back to
        # the email that brought the link instead of being shown it.
        error = response.get_json()["error"]
        assert app.config["CONTACT_EMAIL"] not in error
        assert "reply to the email that brought you the link" in error.lower()
    if case == "download only":
        assert "downloading only" in response.get_json()["error"]
    if case == "used up":
        assert "no uploads left" in response.get_json()["error"]
    assert len(submissions_of(session, shared.partner)) == before
    assert uploads_used(session, shared.link) == before


@pytest.fixture
def csrf_app(tmp_path: Path, database_url: str, connection) -> Flask:
    """The app with CSRF protection on, as in production."""
    app = create_app(test_settings(tmp_path, database_url, WTF_CSRF_ENABLED=True))
    db.bind_to(app, connection, join_transaction_mode="create_savepoint")
    return app


@pytest.fixture
def csrf_session(csrf_app: Flask) -> Iterator[Session]:
    with csrf_app.app_context():
        yield db.session


def test_machine_upload_needs_no_csrf_token_when_forms_do(csrf_app, csrf_session) -> None:
    shared = share(csrf_session)
    client = csrf_app.test_client()
    pem = certfactory.pem(partner_cert())

    form_post = client.post(f"{shared.page}/upload", data={"pasted": pem.decode()})
    assert form_post.status_code == 400  # forms do need the token
    machine = client.post(f"{shared.page}/certificate?usage=both", data=pem)

    assert machine.status_code == 201, machine.get_data(as_text=True)
    assert machine.get_json()["status"] == "received"
    assert len(submissions_of(csrf_session, shared.partner)) == 1


def test_page_prints_a_working_curl_line(app, client, session) -> None:
    shared = share(session)
    page = client.get(shared.page).get_data(as_text=True)

    blocks = re.findall(r'<pre class="curl"><code>(.*?)</code></pre>', page, re.S)
    (curl,) = [html.unescape(b) for b in blocks if "--data-binary" in b]
    assert curl.startswith("curl ")
    assert "--data-binary @" in curl
    assert "-X POST" in curl
    url = re.search(r'"(https?://[^"]+)"', curl)
    assert url is not None
    expected = f"{app.config['BASE_URL']}/s/{shared.token}/certificate"
    assert url.group(1).split("?")[0] == expected

    # What that line sends, sent to that path.
    path = url.group(1).removeprefix(app.config["BASE_URL"])
    response = client.post(
        path,
        data=certfactory.pem(partner_cert()),
        content_type="application/octet-stream",
    )
    assert response.status_code == 201
    assert response.get_json()["submission_id"] == submissions_of(session, shared.partner)[0].id


# ---------------------------------------------------------------------------
# Upload limit
# ---------------------------------------------------------------------------


def test_a_one_upload_link_takes_one_certificate_then_says_none_left(client, session) -> None:
    shared = share(session, max_uploads=1)
    first, second, third = partner_cert(), partner_cert(), partner_cert()

    accepted = client.post(f"{shared.page}/certificate", data=certfactory.pem(first))
    refused = client.post(f"{shared.page}/certificate", data=certfactory.pem(second))

    assert accepted.status_code == 201
    assert refused.status_code == 409
    assert "no uploads left" in refused.get_json()["error"]
    assert uploads_used(session, shared.link) == 1
    assert [s.sha256 for s in submissions_of(session, shared.partner)] == [sha256_of(first)]

    by_page = client.post(
        f"{shared.page}/upload",
        data=typed(certificate=pem_file(certfactory.pem(third))),
    )
    assert by_page.status_code == 409
    assert "no uploads left" in by_page.get_data(as_text=True)
    repeat = client.post(f"{shared.page}/certificate", data=certfactory.pem(first))
    assert repeat.status_code == 200
    assert repeat.get_json()["duplicate"] is True

    page = client.get(shared.page).get_data(as_text=True)
    assert "This link has no uploads left" in page
    assert f'action="{shared.page}/upload"' not in page
    assert "--data-binary" not in page  # the upload line is gone; the feed line stays
    assert uploads_used(session, shared.link) == 1
    assert len(submissions_of(session, shared.partner)) == 1
