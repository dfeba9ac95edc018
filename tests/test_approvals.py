"""Approving and rejecting a partner's submission on the review page: the activation time
(now, chosen in a zone, the partner's proposal), refusals, roles, and what the partner
reads after a rejection.

Time is never slept through: services take `now=`, views read the `clock` fixture.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest
from cryptography import x509
from markupsafe import escape
from sqlalchemy import select

from portal.domain.certs import colon_fingerprint
from portal.models import OutboxMessage
from portal.services import approvals, windows
from portal.timeutil import format_in_zone, utcnow
from tests import certfactory, factories
from tests.schedulehelpers import (
    actor,
    events,
    minute,
    partner_cert,
    partner_certificates,
    receive,
    share,
    text_of,
    when_fields,
)

# ---------------------------------------------------------------------------
# Approving
# ---------------------------------------------------------------------------


def test_approve_now_makes_the_certificate_and_tells_the_partner(
    session, approver, approver_client, received, clock
) -> None:
    submission, partner = received["submission"], received["partner"]
    now = utcnow()
    clock.set(now)
    response = approver_client.post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "now"}
    )
    assert response.status_code == 302, text_of(response)
    assert response.headers["Location"].endswith("/submissions")
    assert submission.status == "approved"
    assert submission.reviewed_by_id == approver.id

    (certificate,) = partner_certificates(session, partner)
    assert submission.certificate_id == certificate.id
    assert certificate.sha256 == submission.sha256
    assert certificate.der == submission.der
    assert certificate.activate_at == now
    assert certificate.approved_by_id == approver.id
    assert certificate.source == "uploaded"

    (event,) = events(session, "submission.approved", submission_id=submission.id)
    assert event.actor_id == approver.id
    assert event.object_type == "partner"
    assert event.object_id == str(partner.id)
    assert event.details["certificate_id"] == certificate.id

    message = session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.dedupe_key == f"submission-approved:{submission.id}"
        )
    )
    assert message is not None
    assert message.recipients == ["edi@globex.example", "ops@globex.example"]
    assert colon_fingerprint(certificate.sha256) in message.body
    assert f"{now:%Y-%m-%d %H:%M} UTC" in message.body


@pytest.mark.parametrize(
    ("month", "utc_hour"),
    [(1, 9), (7, 8)],  # 10:30 in Berlin is 09:30 UTC in winter (CET), 08:30 in summer (CEST)
)
def test_approve_at_a_chosen_time_in_a_zone_converts_to_utc(
    session, approver_client, month, utc_hour
) -> None:
    partner = factories.partner(session)
    link, _ = share(session, partner)
    submission = receive(session, link, partner_cert(days=800))
    day = date(utcnow().year + 1, month, 15)
    response = approver_client.post(
        f"/submissions/{submission.id}/approve",
        data={
            "approve-when": "chosen",
            "approve-date": day.isoformat(),
            "approve-time": "10:30",
            "approve-timezone": "Europe/Berlin",
        },
    )
    assert response.status_code == 302, text_of(response)
    (certificate,) = partner_certificates(session, partner)
    assert certificate.activate_at == datetime.combine(day, time(utc_hour, 30), tzinfo=UTC)


def test_approve_at_the_partners_proposed_window(session, approver_client, received) -> None:
    submission, link = received["submission"], received["link"]
    starts_at = minute(utcnow() + timedelta(days=3))
    window = windows.propose_window(
        session,
        factories.ACTOR,
        link,
        starts_at=starts_at,
        timezone="Europe/Berlin",
        contact_name="Grace",
        contact_email=None,
        now=utcnow(),
    )
    page = approver_client.get(f"/submissions/{submission.id}")
    assert page.status_code == 200
    assert format_in_zone(starts_at, "Europe/Berlin") in text_of(page)

    response = approver_client.post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "proposal"}
    )
    assert response.status_code == 302, text_of(response)
    (certificate,) = partner_certificates(session, received["partner"])
    assert certificate.activate_at == window.starts_at == starts_at


def test_approve_at_the_window_proposed_with_the_upload(session, approver_client) -> None:
    partner = factories.partner(session)
    link, _ = share(session, partner)
    starts_at = minute(utcnow() + timedelta(days=5))
    submission = receive(
        session, link, proposed_window_start=starts_at, proposed_timezone="Asia/Tokyo"
    )
    response = approver_client.post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "proposal"}
    )
    assert response.status_code == 302, text_of(response)
    (certificate,) = partner_certificates(session, partner)
    assert certificate.activate_at == starts_at


def test_approve_at_a_proposal_when_there_is_none_is_refused(
    session, approver_client, received
) -> None:
    submission = received["submission"]
    response = approver_client.post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "proposal"}
    )
    assert response.status_code == 422
    assert "There is no proposed time" in text_of(response)
    assert submission.status == "received"
    assert partner_certificates(session, received["partner"]) == []


def test_approving_twice_or_a_rejected_submission_is_refused(
    session, approver, approver_client, received
) -> None:
    submission, partner = received["submission"], received["partner"]
    first = approver_client.post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "now"}
    )
    assert first.status_code == 302
    second = approver_client.post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "now"}
    )
    assert second.status_code == 422
    assert len(partner_certificates(session, partner)) == 1
    assert len(events(session, "submission.approved", submission_id=submission.id)) == 1

    rejected = receive(session, received["link"])
    approvals.reject_submission(session, actor(approver), rejected, reason="wrong CN", now=utcnow())
    response = approver_client.post(
        f"/submissions/{rejected.id}/approve", data={"approve-when": "now"}
    )
    assert response.status_code == 422
    assert rejected.status == "rejected"
    assert rejected.certificate_id is None
    assert len(partner_certificates(session, partner)) == 1


def test_approving_twice_says_why_it_is_refused(session, approver, approver_client) -> None:
    partner = factories.partner(session)
    link, _ = share(session, partner)
    submission = receive(session, link)
    approvals.approve_submission(
        session, actor(approver), submission, activate_at=utcnow(), now=utcnow()
    )
    response = approver_client.post(
        f"/submissions/{submission.id}/approve", data={"approve-when": "now"}
    )
    assert response.status_code == 422
    assert f"Submission #{submission.id} is approved, not received." in text_of(response)


def test_activation_outside_the_certificate_validity_is_refused(session, approver_client) -> None:
    partner = factories.partner(session)
    link, _ = share(session, partner)
    now = utcnow()
    short_lived = receive(session, link, partner_cert(days=40))
    late = now + timedelta(days=60)
    response = approver_client.post(
        f"/submissions/{short_lived.id}/approve", data=when_fields("approve", late)
    )
    assert response.status_code == 422
    page = text_of(response)
    expiry = x509.load_der_x509_certificate(short_lived.der).not_valid_after_utc
    assert expiry < late
    assert f"The certificate expires on {expiry:%Y-%m-%d %H:%M} UTC" in page
    assert short_lived.status == "received"

    # Valid from the day after tomorrow: acceptable when uploaded "three days from now".
    starts = now + timedelta(days=2)
    future = receive(
        session,
        link,
        partner_cert(not_before=starts, not_after=now + timedelta(days=400)),
        now=now + timedelta(days=3),
    )
    response = approver_client.post(
        f"/submissions/{future.id}/approve", data={"approve-when": "now"}
    )
    assert response.status_code == 422
    assert "The certificate is not valid before" in text_of(response)
    assert future.status == "received"
    assert partner_certificates(session, partner) == []


def test_activation_in_the_past_is_refused(session, approver_client, received) -> None:
    submission = received["submission"]
    response = approver_client.post(
        f"/submissions/{submission.id}/approve",
        data=when_fields("approve", utcnow() - timedelta(hours=2)),
    )
    assert response.status_code == 422
    assert "The activation time is in the past" in text_of(response)
    assert submission.status == "received"
    assert partner_certificates(session, received["partner"]) == []


@pytest.mark.parametrize("role", ["operator", "viewer"])
def test_only_approvers_may_approve_or_reject(session, client_as, received, role) -> None:
    submission = received["submission"]
    browser = client_as(role)
    assert browser.get(f"/submissions/{submission.id}").status_code == 200
    approve = browser.post(f"/submissions/{submission.id}/approve", data={"approve-when": "now"})
    reject = browser.post(f"/submissions/{submission.id}/reject", data={"reject-reason": "no"})
    assert (approve.status_code, reject.status_code) == (403, 403)
    assert submission.status == "received"
    assert partner_certificates(session, received["partner"]) == []


# ---------------------------------------------------------------------------
# Rejecting
# ---------------------------------------------------------------------------


def test_reject_shows_the_reason_to_the_partner_who_may_send_again(
    session, approver, approver_client, client, received
) -> None:
    submission, token = received["submission"], received["token"]
    reason = 'CN must be <GLOBEXAS2> & "O" Globex'
    response = approver_client.post(
        f"/submissions/{submission.id}/reject", data={"reject-reason": reason}
    )
    assert response.status_code == 302, text_of(response)
    assert submission.status == "rejected"
    assert submission.rejection_reason == reason
    assert submission.reviewed_by_id == approver.id
    assert events(session, "submission.rejected", submission_id=submission.id)
    notice = session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.dedupe_key == f"submission-rejected:{submission.id}"
        )
    )
    assert notice is not None
    assert reason in notice.body

    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    raw = page.get_data(as_text=True)
    assert f"rejected: {escape(reason)}" in raw
    assert "<GLOBEXAS2>" not in raw

    corrected = partner_cert()
    upload = client.post(f"/s/{token}/certificate", data=certfactory.pem(corrected))
    assert upload.status_code == 201, upload.get_json()
    assert upload.get_json()["status"] == "received"


@pytest.mark.parametrize("reason", ["", "   \n "])
def test_reject_without_a_reason_is_refused(session, approver_client, received, reason) -> None:
    submission = received["submission"]
    response = approver_client.post(
        f"/submissions/{submission.id}/reject", data={"reject-reason": reason}
    )
    assert response.status_code == 422
    assert submission.status == "received"
    assert submission.rejection_reason is None
    assert events(session, "submission.rejected", submission_id=submission.id) == []
