"""Uploads through the partner page: the check report first, warnings need a tick, errors
block (and are audited), sizes and windows are checked, repeats are stored once.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select

from portal.domain.certs import colon_fingerprint
from portal.models import OutboxMessage
from portal.timeutil import utcnow
from tests import certfactory
from tests.linkhelpers import (
    BROWSER,
    GARBAGE,
    KIB,
    NEXT_YEAR,
    SCRIPT,
    audit_events,
    browser_form,
    partner_cert,
    pem_file,
    private_key,
    sha256_of,
    share,
    submissions_of,
    typed,
    upload_fields,
    uploads_used,
)


def test_clean_upload_is_received_counted_and_announced(client, session, make_user) -> None:
    approver = make_user("approver")
    shared = share(session, max_uploads=3)
    cert = partner_cert()
    data = upload_fields(
        shared,
        client,
        certificate=pem_file(certfactory.pem(cert)),
        usage="both",
        window_date=f"{NEXT_YEAR}-07-10",
        window_time="09:30",
        window_timezone="America/Chicago",
        contact_name="Grace Hopper",
        contact_email="grace@globex.example",
    )

    response = client.post(f"{shared.page}/upload", data=data, headers={"User-Agent": BROWSER})

    assert response.status_code == 302
    (submission,) = submissions_of(session, shared.partner)
    assert response.location.endswith(f"{shared.page}?received={submission.id}#upload")
    assert submission.status == "received"
    assert submission.usage == "both"
    assert submission.sha256 == sha256_of(cert)
    assert submission.link_id == shared.link.id
    assert submission.contact_name == "Grace Hopper"
    assert submission.contact_email == "grace@globex.example"
    # 09:30 CDT (UTC-5 in March after the switch on the 8th) is 14:30 UTC.
    assert submission.proposed_window_start == datetime(NEXT_YEAR, 7, 10, 14, 30, tzinfo=UTC)
    assert submission.proposed_timezone == "America/Chicago"
    assert uploads_used(session, shared.link) == 1
    (event,) = audit_events(session, "submission.received", shared.link)
    assert event.details["submission_id"] == submission.id
    assert (event.client_address, event.user_agent) == ("127.0.0.1", BROWSER)
    messages = session.scalars(
        select(OutboxMessage).where(
            OutboxMessage.dedupe_key == f"submission-received:{submission.id}"
        )
    ).all()
    assert len(messages) == 1
    assert approver.email in messages[0].recipients
    assert colon_fingerprint(submission.sha256) in messages[0].body

    page = client.get(response.location).get_data(as_text=True)
    assert f"submission #{submission.id}" in page
    assert f"<code>{colon_fingerprint(sha256_of(cert))}</code>" in page
    assert "2 uploads left" in page


def test_warnings_need_a_tick_before_anything_is_stored(client, session) -> None:
    shared = share(session)
    cert = partner_cert(key_size=2048)
    first = client.post(
        f"{shared.page}/upload",
        data=upload_fields(
            shared,
            client,
            certificate=pem_file(certfactory.pem(cert)),
            usage="signing",
            window_date=f"{NEXT_YEAR}-01-15",
            window_time="09:30",
            window_timezone="America/Chicago",
            contact_name="Grace Hopper",
            contact_email="grace@globex.example",
        ),
    )

    assert first.status_code == 200
    page = first.get_data(as_text=True)
    assert "Please confirm" in page
    assert "The RSA key has 2048 bits" in page
    assert 'name="confirm_warnings" type="checkbox"' in page
    assert colon_fingerprint(sha256_of(cert)) in page
    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0
    confirm = browser_form(page, f"{shared.page}/upload")
    assert confirm["carried"]

    unticked = client.post(f"{shared.page}/upload", data=confirm)
    assert unticked.status_code == 422
    assert "Please confirm" in unticked.get_data(as_text=True)
    assert submissions_of(session, shared.partner) == []

    ticked = client.post(f"{shared.page}/upload", data={**confirm, "confirm_warnings": "y"})

    assert ticked.status_code == 302, ticked.get_data(as_text=True)
    (submission,) = submissions_of(session, shared.partner)
    assert submission.sha256 == sha256_of(cert)
    assert "rsa_2048" in {f["code"] for f in submission.report["findings"]}
    # What was typed in the first step reaches the stored submission.
    assert submission.usage == "signing"
    assert submission.proposed_window_start == datetime(NEXT_YEAR, 1, 15, 15, 30, tzinfo=UTC)
    assert submission.proposed_timezone == "America/Chicago"
    assert (submission.contact_name, submission.contact_email) == (
        "Grace Hopper",
        "grace@globex.example",
    )
    assert uploads_used(session, shared.link) == 1


def test_warnings_confirmed_in_one_post_are_stored(client, session) -> None:
    shared = share(session)
    cert = partner_cert(key_size=2048)
    response = client.post(
        f"{shared.page}/upload",
        data=typed(certificate=pem_file(certfactory.pem(cert)), confirm_warnings="y"),
    )
    assert response.status_code == 302
    assert len(submissions_of(session, shared.partner)) == 1


@pytest.mark.parametrize(
    ("case", "fields", "code", "says"),
    [
        (
            "private key file",
            lambda: {"certificate": pem_file(private_key(), "partner.key")},
            "private_key",
            "Never send a private key",
        ),
        (
            "private key pasted",
            lambda: {"pasted": private_key().decode()},
            "private_key",
            "Never send a private key",
        ),
        (
            "certificate and key together",
            lambda: {"pasted": (certfactory.pem(partner_cert()) + private_key()).decode()},
            "private_key",
            "Never send a private key",
        ),
        (
            "garbage",
            lambda: {"certificate": pem_file(GARBAGE, "partner.cer")},
            "unreadable",
            "We could not read this file as a certificate",
        ),
        (
            "signing-only certificate for encryption",
            lambda: {
                "certificate": pem_file(
                    certfactory.pem(partner_cert(usage_flags=certfactory.SIGNING_KU))
                ),
                "usage": "encryption",
            },
            "key_usage_incompatible",
            "does not allow it to be used for encryption",
        ),
    ],
)
def test_errors_block_the_upload_but_the_refusal_is_audited(
    client, session, case: str, fields: Any, code: str, says: str
) -> None:
    shared = share(session)
    session.commit()  # so that rolling back below can only undo what the request left uncommitted

    response = client.post(f"{shared.page}/upload", data=typed(**fields()))

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "We cannot accept this file" in page
    assert says in page
    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0
    session.rollback()  # drop anything the refused request did not commit
    (event,) = audit_events(session, "submission.refused", shared.link)
    assert code in event.details["codes"]
    assert submissions_of(session, shared.partner) == []


def test_a_pasted_private_key_is_not_written_back_into_the_page(client, session) -> None:
    """Regression: the refused page used to echo the pasted key into its textarea."""
    shared = share(session)
    key = private_key().decode()

    response = client.post(f"{shared.page}/upload", data=typed(pasted=key))

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert "Never send a private key" in page
    assert "PRIVATE KEY-----" not in page
    assert key.splitlines()[1] not in page


def test_too_large_upload_is_413_with_a_readable_page(client, session) -> None:
    shared = share(session)
    big = certfactory.pem(partner_cert()) + b"A" * (65 * KIB)

    for fields in ({"certificate": pem_file(big)}, {"pasted": big.decode()}):
        response = client.post(f"{shared.page}/upload", data=typed(**fields))
        assert response.status_code == 413
        page = response.get_data(as_text=True)
        assert "larger than 64 KiB" in page
        assert "<html" in page

    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0


def test_an_incomplete_window_with_an_upload_is_422(client, session) -> None:
    shared = share(session)
    pem = certfactory.pem(partner_cert())

    for window in (
        {"window_date": f"{NEXT_YEAR}-01-15"},
        {"window_time": "10:00"},
        {"window_date": f"{NEXT_YEAR}-01-15", "window_time": "10:00", "window_timezone": "Mars/X"},
    ):
        response = client.post(
            f"{shared.page}/upload", data=typed(certificate=pem_file(pem), **window)
        )
        assert response.status_code == 422, window
        assert "Give a date, a time and a time zone" in response.get_data(as_text=True), window

    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0


def test_a_past_window_with_an_upload_is_422(client, session) -> None:
    """Regression: POST /window refused a past date but an upload stored it."""
    shared = share(session)
    data = typed(
        certificate=pem_file(certfactory.pem(partner_cert())),
        window_date="2000-01-01",
        window_time="10:00",
        window_timezone="UTC",
    )

    response = client.post(f"{shared.page}/upload", data=data)

    assert response.status_code == 422
    assert "Propose a time in the future" in response.get_data(as_text=True)
    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0


def test_upload_on_a_download_only_link_is_403_and_says_why(client, session) -> None:
    """Regression: the refusal used to sit on the upload form, which such a page never shows."""
    shared = share(session, can_upload=False, max_uploads=0)

    response = client.post(
        f"{shared.page}/upload",
        data=typed(certificate=pem_file(certfactory.pem(partner_cert()))),
    )

    assert response.status_code == 403
    assert "for downloading only" in response.get_data(as_text=True)
    assert submissions_of(session, shared.partner) == []
    assert audit_events(session, "submission.received", shared.link) == []


def test_sending_the_same_file_twice_stores_and_counts_it_once(client, session) -> None:
    shared = share(session)
    pem = certfactory.pem(partner_cert())

    first = client.post(f"{shared.page}/upload", data=typed(certificate=pem_file(pem)))
    second = client.post(f"{shared.page}/upload", data=typed(certificate=pem_file(pem)))

    assert first.status_code == second.status_code == 302
    (submission,) = submissions_of(session, shared.partner)
    assert f"received={submission.id}" in first.location
    assert second.location == first.location
    assert uploads_used(session, shared.link) == 1
    assert len(audit_events(session, "submission.received", shared.link)) == 1


def test_html_typed_by_the_partner_is_shown_as_text(client, session) -> None:
    shared = share(session)

    response = client.post(
        f"{shared.page}/upload",
        data=typed(pasted=SCRIPT, contact_name=SCRIPT, contact_email=SCRIPT),
    )

    assert response.status_code == 422
    page = response.get_data(as_text=True)
    assert SCRIPT not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "Enter an email address such as name@example.com." in page
    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0


def test_html_in_contact_is_escaped_on_the_confirmation_step(client, session) -> None:
    shared = share(session)
    name = '"><script>alert(1)</script>'

    response = client.post(
        f"{shared.page}/upload",
        data=typed(
            certificate=pem_file(certfactory.pem(partner_cert(key_size=2048))),
            contact_name=name,
        ),
    )

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert SCRIPT not in page
    assert browser_form(page, f"{shared.page}/upload")["contact_name"] == name


def test_upload_after_the_link_expired_while_the_page_was_open(client, session, clock) -> None:
    shared = share(session, lifetime=timedelta(hours=1))
    data = upload_fields(shared, client, certificate=pem_file(certfactory.pem(partner_cert())))
    clock.set(utcnow() + timedelta(hours=1, minutes=1))

    response = client.post(f"{shared.page}/upload", data=data)

    assert response.status_code == 410
    assert "expired" in response.get_data(as_text=True)
    assert submissions_of(session, shared.partner) == []
    assert uploads_used(session, shared.link) == 0
