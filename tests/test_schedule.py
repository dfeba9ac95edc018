"""Approval, scheduling, the in-force rule and change windows, as staff, partners and the CLI
use them: the services, the staff and partner pages, and `portal ...` commands.

Time is never slept through: services take `now=`, views read a patched `utcnow`.
"""

from __future__ import annotations

import html
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography import x509
from flask import Flask, g
from flask.testing import FlaskClient
from icalendar import Calendar
from markupsafe import escape
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from portal.extensions import keyring, link_signer
from portal.models import (
    AuditEvent,
    Certificate,
    ChangeWindow,
    Identity,
    OutboxMessage,
    Partner,
    ShareLink,
    Submission,
    User,
)
from portal.services import config_export, links, schedule, submissions
from portal.services.actor import Actor
from portal.services.certificates import colon_fingerprint
from portal.services.errors import ServiceError
from portal.timeutil import format_in_zone, utcnow
from tests import certfactory, factories

OVERLAP = timedelta(days=7)
BERLIN = ZoneInfo("Europe/Berlin")
CERT_KEYS = {
    "fingerprint_sha256",
    "serial",
    "subject",
    "issuer",
    "not_before",
    "not_after",
    "activate_at",
    "pem",
}


# ---------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def one_user_per_request(app: Flask) -> None:
    """Forget the signed-in user between requests.

    The `session` fixture keeps an app context pushed, so every test-client request shares
    its `g`, where flask-login caches the user: without this, a second browser in the same
    test would act as the first one. (Harmless if tests/conftest.py does the same.)
    """

    @app.before_request
    def _forget_user() -> None:
        g.pop("_login_user", None)


def set_clock(monkeypatch: pytest.MonkeyPatch, moment: datetime) -> None:
    """Make the staff review and certificate pages believe it is MOMENT."""
    monkeypatch.setattr("portal.web.staff.review.utcnow", lambda: moment)
    monkeypatch.setattr("portal.web.staff.certificates.utcnow", lambda: moment)


def text_of(response: Any) -> str:
    """The page as a person reads it (entities decoded)."""
    return html.unescape(response.get_data(as_text=True))


def plain(response: Any) -> str:
    """The page's text without tags, whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", text_of(response)).split())


def actor(user: User) -> Actor:
    return Actor.for_user(user)


def share(session: Session, partner: Partner, *, max_uploads: int = 5) -> tuple[ShareLink, str]:
    """A download and upload link for PARTNER, with its token."""
    return links.create_link(
        session,
        factories.ACTOR,
        link_signer(),
        partner,
        can_download=True,
        can_upload=True,
        lifetime=timedelta(days=14),
        max_uploads=max_uploads,
        now=utcnow(),
    )


def partner_cert(
    *,
    key: Any = None,
    days: int = 400,
    now: datetime | None = None,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    """A partner certificate (RSA 3072 and both key usages raise no finding unless told)."""
    cert, _ = certfactory.make_cert(
        now=now or utcnow(),
        days=days,
        key=key if key is not None else certfactory.rsa_key(3072),
        subject=certfactory.name("GLOBEXAS2", "Globex Corp"),
        not_before=not_before,
        not_after=not_after,
    )
    return cert


def receive(
    session: Session,
    link: ShareLink,
    cert: x509.Certificate | None = None,
    *,
    now: datetime | None = None,
    **extra: Any,
) -> Submission:
    """A received submission of CERT (a fresh partner certificate when not given)."""
    outcome = submissions.submit_via_link(
        session,
        factories.ACTOR,
        link,
        data=certfactory.pem(cert or partner_cert()),
        usage="both",
        now=now or utcnow(),
        overlap=OVERLAP,
        confirm_warnings=True,
        **extra,
    )
    assert outcome.submission is not None, outcome.report.to_dict()
    return outcome.submission


def schedule_ours(
    session: Session,
    certificate: Certificate,
    at: datetime,
    *,
    proposer: User,
    approver: User,
    now: datetime,
) -> None:
    """Schedule our certificate for AT, four eyes, as if it were NOW."""
    schedule.schedule_identity_certificate(
        session, actor(proposer), certificate, activate_at=at, now=now
    )
    schedule.approve_identity_schedule(session, actor(approver), certificate, now=now)
    assert certificate.activate_at == at


def events(session: Session, action: str, **details: Any) -> list[AuditEvent]:
    """Audit events ACTION whose details include DETAILS."""
    found = session.scalars(
        select(AuditEvent).where(AuditEvent.action == action).order_by(AuditEvent.id)
    ).all()
    return [e for e in found if all(e.details.get(k) == v for k, v in details.items())]


def partner_certificates(session: Session, partner: Partner) -> list[Certificate]:
    return list(session.scalars(select(Certificate).where(Certificate.partner_id == partner.id)))


def when_fields(prefix: str, moment: datetime, zone: str = "UTC") -> dict[str, str]:
    """The form fields naming MOMENT as a date and time in ZONE."""
    local = moment.astimezone(ZoneInfo(zone))
    return {
        f"{prefix}-when": "chosen",
        f"{prefix}-date": local.strftime("%Y-%m-%d"),
        f"{prefix}-time": local.strftime("%H:%M"),
        f"{prefix}-timezone": zone,
    }


def iso_z(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_z(text: str) -> datetime:
    assert text.endswith("Z"), text
    return datetime.fromisoformat(text)


def minute(moment: datetime) -> datetime:
    """MOMENT without seconds: what a date and time form field can name."""
    return moment.replace(second=0, microsecond=0)


@pytest.fixture
def approver(make_user: Callable[..., User]) -> User:
    return make_user("approver")


@pytest.fixture
def operator(make_user: Callable[..., User]) -> User:
    return make_user("operator")


@pytest.fixture
def approver_client(approver: User, login: Callable[[User], FlaskClient]) -> FlaskClient:
    return login(approver)


# ---------------------------------------------------------------------------
# 1. The in-force rule through the config export (service and CLI)
# ---------------------------------------------------------------------------


@pytest.fixture
def rotation(session: Session, make_user: Callable[..., User]) -> dict[str, Any]:
    """An identity whose old signing certificate is active and whose new one starts at T."""
    proposer, second = make_user("operator"), make_user("approver")
    identity = factories.identity(session)
    old = factories.identity_certificate(session, keyring(), identity, usage="signing")
    new = factories.identity_certificate(session, keyring(), identity, usage="signing")
    now = utcnow()
    schedule_ours(session, old, now, proposer=proposer, approver=second, now=now)
    at = (now + timedelta(days=2)).replace(microsecond=0)
    schedule_ours(session, new, at, proposer=proposer, approver=second, now=now)
    session.flush()
    return {"identity": identity, "old": old, "new": new, "at": at}


def signing_of(document: dict[str, Any], identity: Identity) -> dict[str, Any]:
    (entry,) = [i for i in document["identities"] if i["as2_id"] == identity.as2_id]
    return entry["certificates"]["signing"]


def fingerprint(cert: dict[str, Any] | None) -> str | None:
    return cert["fingerprint_sha256"] if cert else None


def test_config_export_follows_the_in_force_rule(session, rotation) -> None:
    identity, old, new, at = (rotation[k] for k in ("identity", "old", "new", "at"))
    old_fp, new_fp = colon_fingerprint(old.sha256), colon_fingerprint(new.sha256)

    def state(moment: datetime) -> dict[str, Any]:
        document = config_export.config_document(session, at=moment, overlap=OVERLAP)
        return signing_of(document, identity)

    before = state(at - timedelta(seconds=1))
    assert fingerprint(before["active"]) == old_fp
    assert before["previous"] is None
    assert [c["fingerprint_sha256"] for c in before["scheduled"]] == [new_fp]

    after = state(at + timedelta(seconds=1))
    assert fingerprint(after["active"]) == new_fp
    assert fingerprint(after["previous"]) == old_fp
    assert after["scheduled"] == []

    week_later = state(at + OVERLAP)
    assert fingerprint(week_later["active"]) == new_fp
    assert week_later["previous"] is None
    assert week_later["scheduled"] == []


def test_config_export_document_has_the_designed_shape(session, rotation) -> None:
    identity, new, at = rotation["identity"], rotation["new"], rotation["at"]
    partner = factories.partner(session, identity)
    moment = at + timedelta(seconds=1)
    document = config_export.config_document(session, at=moment, overlap=OVERLAP)

    assert set(document) == {"generated_at", "identities", "partners"}
    assert document["generated_at"] == iso_z(moment)
    (entry,) = [i for i in document["identities"] if i["as2_id"] == identity.as2_id]
    assert set(entry) == {"as2_id", "name", "environment", "certificates"}
    assert (entry["name"], entry["environment"]) == (identity.name, "production")
    assert set(entry["certificates"]) == {"signing", "encryption"}
    for usage_state in entry["certificates"].values():
        assert set(usage_state) == {"active", "previous", "scheduled"}
    # A signing-only certificate does not serve encryption.
    assert entry["certificates"]["encryption"] == {
        "active": None,
        "previous": None,
        "scheduled": [],
    }
    (partner_entry,) = [p for p in document["partners"] if p["as2_id"] == partner.as2_id]
    assert set(partner_entry) == {"as2_id", "name", "identity", "environment", "certificates"}
    assert partner_entry["identity"] == identity.as2_id

    active = entry["certificates"]["signing"]["active"]
    assert set(active) == CERT_KEYS
    assert set(entry["certificates"]["signing"]["previous"]) == CERT_KEYS
    assert active["activate_at"] == iso_z(at)
    assert parse_z(active["not_before"]) == new.not_before
    assert parse_z(active["not_after"]) == new.not_after
    assert (active["serial"], active["subject"], active["issuer"]) == (
        new.serial,
        new.subject,
        new.issuer,
    )
    pem = x509.load_pem_x509_certificate(active["pem"].encode())
    assert certfactory.der(pem) == new.der


def test_config_export_command_prints_the_same_document(session, runner, rotation) -> None:
    identity, old, new, at = (rotation[k] for k in ("identity", "old", "new", "at"))
    old_fp, new_fp = colon_fingerprint(old.sha256), colon_fingerprint(new.sha256)
    expected = {
        at - timedelta(seconds=1): (old_fp, None, [new_fp]),
        at + timedelta(seconds=1): (new_fp, old_fp, []),
        at + OVERLAP: (new_fp, None, []),
    }
    for moment, (active, previous, scheduled) in expected.items():
        result = runner.invoke(args=["config-export", "--at", iso_z(moment), "--json"])
        assert result.exit_code == 0, result.output
        document = json.loads(result.stdout)
        assert document == config_export.config_document(session, at=moment, overlap=OVERLAP)
        assert document["generated_at"] == iso_z(moment)
        signing = signing_of(document, identity)
        assert fingerprint(signing["active"]) == active
        assert fingerprint(signing["previous"]) == previous
        assert [c["fingerprint_sha256"] for c in signing["scheduled"]] == scheduled

    # An offset is converted to UTC.
    local = (at + timedelta(seconds=1)).astimezone(ZoneInfo("Asia/Kolkata"))
    result = runner.invoke(args=["config-export", "--at", local.isoformat(), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["generated_at"] == iso_z(at + timedelta(seconds=1))


@pytest.mark.parametrize("at_text", ["2030-01-01T00:00:00", "tomorrow", "2030-13-01T00:00Z"])
def test_config_export_refuses_a_time_without_zone_as_misuse(runner, session, at_text) -> None:
    result = runner.invoke(args=["config-export", "--at", at_text, "--json"])
    assert result.exit_code == 2, result.output
    assert "Usage:" in result.output


# ---------------------------------------------------------------------------
# 2. Approving a submission on the review page
# ---------------------------------------------------------------------------


@pytest.fixture
def received(session: Session) -> dict[str, Any]:
    """A partner (two contacts), a link, its token and one received submission."""
    partner = factories.partner(
        session, contact_emails=["edi@globex.example", "ops@globex.example"]
    )
    link, token = share(session, partner)
    return {
        "partner": partner,
        "link": link,
        "token": token,
        "submission": receive(session, link),
    }


def test_approve_now_makes_the_certificate_and_tells_the_partner(
    session, approver, approver_client, received, monkeypatch
) -> None:
    submission, partner = received["submission"], received["partner"]
    now = utcnow()
    set_clock(monkeypatch, now)
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
    window = links.propose_window(
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
    schedule.reject_submission(session, actor(approver), rejected, reason="wrong CN", now=utcnow())
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
    schedule.approve_submission(
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
# 3. Rejecting a submission
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


# ---------------------------------------------------------------------------
# 4. The review page compares with the partner's certificate in force
# ---------------------------------------------------------------------------


@pytest.fixture
def partner_in_force(session: Session, approver: User) -> dict[str, Any]:
    """A partner whose certificate (RSA 3072, 400 days) has been in force since now."""
    partner = factories.partner(session)
    link, _ = share(session, partner)
    current = receive(session, link)
    now = utcnow()
    certificate = schedule.approve_submission(
        session, actor(approver), current, activate_at=now, now=now
    )
    return {"partner": partner, "link": link, "current": certificate}


def test_review_page_shows_findings_and_comparison(
    session, approver_client, partner_in_force
) -> None:
    link, current = partner_in_force["link"], partner_in_force["current"]
    same_key_later = receive(session, link, partner_cert(days=430))
    response = approver_client.get(f"/submissions/{same_key_later.id}")
    assert response.status_code == 200
    page = text_of(response)
    assert "No errors or warnings." in page
    assert "the same key is reused" in page
    assert "later by 30 days" in page
    assert colon_fingerprint(same_key_later.sha256) in page

    new_key_earlier = receive(session, link, partner_cert(key=certfactory.rsa_key(2048), days=390))
    page = text_of(approver_client.get(f"/submissions/{new_key_earlier.id}"))
    assert "rsa_2048" in page  # a warning the partner confirmed is shown to the approver
    assert "a new key" in page
    assert "the same key is reused" not in page
    assert "earlier by 10 days" in page
    assert current.subject in page


def test_review_page_without_a_certificate_in_force(session, approver_client, received) -> None:
    page = text_of(approver_client.get(f"/submissions/{received['submission'].id}"))
    assert "The partner has no certificate in force for this usage yet." in page


def test_review_page_counts_earlier_and_later_expiry_alike(
    session, approver_client, partner_in_force
) -> None:
    link, current = partner_in_force["link"], partner_in_force["current"]
    moved = timedelta(days=5, hours=2)
    later = receive(session, link, partner_cert(not_after=current.not_after + moved))
    earlier = receive(session, link, partner_cert(not_after=current.not_after - moved))
    assert "later by 5 days" in text_of(approver_client.get(f"/submissions/{later.id}"))
    assert "earlier by 5 days" in text_of(approver_client.get(f"/submissions/{earlier.id}"))


# ---------------------------------------------------------------------------
# 5. Four eyes on our identity certificates
# ---------------------------------------------------------------------------


def test_our_schedule_needs_a_second_person_on_the_web(
    session, make_user, login, approver, approver_client
) -> None:
    identity = factories.identity(session)
    certificate = factories.identity_certificate(session, keyring(), identity)
    proposer = make_user("admin")  # may propose and approve, but not both for one schedule
    proposer_client = login(proposer)
    at = minute(utcnow() + timedelta(days=2))

    proposed = proposer_client.post(
        f"/certificates/{certificate.id}/schedule",
        data=when_fields("schedule", at, "Europe/Berlin"),
    )
    assert proposed.status_code == 302, text_of(proposed)
    assert certificate.proposed_activate_at == at
    assert certificate.proposed_by_id == proposer.id
    assert certificate.activate_at is None
    assert events(session, "certificate.schedule_proposed", certificate_id=certificate.id)

    seen = {"expected": at.isoformat()}  # the proposed time the page showed
    own = proposer_client.post(f"/certificates/{certificate.id}/approve-schedule", data=seen)
    assert "A different person must approve this schedule (four eyes)." in text_of(own)
    assert certificate.activate_at is None
    assert certificate.proposed_activate_at == at

    operator_client = login(make_user("operator"))
    assert operator_client.post(f"/certificates/{certificate.id}/approve-schedule").status_code == (
        403
    )
    assert certificate.activate_at is None

    stale = approver_client.post(
        f"/certificates/{certificate.id}/approve-schedule",
        data={"expected": (at + timedelta(hours=1)).isoformat()},
    )
    assert "The proposed time changed while you looked" in text_of(stale)
    assert certificate.activate_at is None
    second = approver_client.post(f"/certificates/{certificate.id}/approve-schedule", data=seen)
    assert second.status_code == 302, text_of(second)
    assert certificate.activate_at == at
    assert certificate.proposed_activate_at is None
    assert certificate.approved_by_id == approver.id
    (event,) = events(session, "certificate.scheduled", certificate_id=certificate.id)
    assert event.actor_id == approver.id


def schedule_command(identity: Identity, certificate: Certificate, at: str, email: str) -> list:
    return [
        "identity",
        "schedule",
        "--as2-id",
        identity.as2_id,
        "--certificate",
        colon_fingerprint(certificate.sha256),
        "--activate-at",
        at,
        "--as",
        email,
    ]


def test_our_schedule_needs_a_second_person_on_the_command_line(session, runner, make_user) -> None:
    # Operators propose (as on the web), approvers approve.
    first, second = make_user("operator"), make_user("approver")
    identity = factories.identity(session)
    certificate = factories.identity_certificate(session, keyring(), identity)
    session.commit()  # the command shares this session; a refusal rolls back only its own work
    at = (utcnow() + timedelta(days=3)).replace(microsecond=0)

    proposed = runner.invoke(args=schedule_command(identity, certificate, iso_z(at), first.email))
    assert proposed.exit_code == 0, proposed.output
    assert proposed.stdout.startswith("Proposed")
    assert certificate.proposed_activate_at == at
    assert certificate.activate_at is None

    again = runner.invoke(args=schedule_command(identity, certificate, iso_z(at), first.email))
    assert again.exit_code == 0, again.output
    assert again.stdout.startswith("Proposed")
    assert "Approved" not in again.output
    assert certificate.activate_at is None

    approved = runner.invoke(args=schedule_command(identity, certificate, iso_z(at), second.email))
    assert approved.exit_code == 0, approved.output
    assert approved.stdout.startswith("Approved")
    assert certificate.activate_at == at
    assert certificate.approved_by_id == second.id


def test_a_viewer_cannot_approve_our_schedule_on_the_command_line(
    session, runner, make_user
) -> None:
    proposer, viewer = make_user("admin"), make_user("viewer")
    identity = factories.identity(session)
    certificate = factories.identity_certificate(session, keyring(), identity)
    session.commit()
    at = iso_z(utcnow() + timedelta(days=3))
    assert (
        runner.invoke(args=schedule_command(identity, certificate, at, proposer.email)).exit_code
        == 0
    )
    result = runner.invoke(args=schedule_command(identity, certificate, at, viewer.email))
    assert result.exit_code == 1, result.output
    assert certificate.activate_at is None


# ---------------------------------------------------------------------------
# 6. Cancel, reschedule, roll back
# ---------------------------------------------------------------------------


@pytest.fixture
def two_of_ours(session: Session, make_user: Callable[..., User]) -> dict[str, Any]:
    """Our identity: the old certificate in force since T0, the new one from T0 + 1 day."""
    proposer, second = make_user("operator"), make_user("approver")
    identity = factories.identity(session)
    old = factories.identity_certificate(session, keyring(), identity)
    new = factories.identity_certificate(session, keyring(), identity)
    t0 = utcnow()
    schedule_ours(session, old, t0, proposer=proposer, approver=second, now=t0)
    switch = t0 + timedelta(days=1)
    schedule_ours(session, new, switch, proposer=proposer, approver=second, now=t0)
    session.flush()
    return {"identity": identity, "old": old, "new": new, "t0": t0, "switch": switch}


def active_of(session: Session, identity: Identity, at: datetime) -> tuple[Any, Any]:
    document = config_export.config_document(session, at=at, overlap=OVERLAP)
    signing = signing_of(document, identity)
    return fingerprint(signing["active"]), fingerprint(signing["previous"])


def test_cancel_before_activation_withdraws_the_certificate(
    session, approver_client, two_of_ours
) -> None:
    identity, old, new = two_of_ours["identity"], two_of_ours["old"], two_of_ours["new"]
    later = two_of_ours["switch"] + timedelta(hours=1)
    assert active_of(session, identity, later)[0] == colon_fingerprint(new.sha256)

    response = approver_client.post(
        f"/certificates/{new.id}/cancel", data={"cancel-reason": "Partner not ready"}
    )
    assert response.status_code == 302, text_of(response)
    assert new.withdrawn_at is not None
    assert new.withdrawn_reason == "Partner not ready"
    assert events(session, "certificate.cancelled", certificate_id=new.id)
    assert active_of(session, identity, later) == (colon_fingerprint(old.sha256), None)
    document = config_export.config_document(session, at=later, overlap=OVERLAP)
    assert colon_fingerprint(new.sha256) not in json.dumps(document)


def test_reschedule_a_partner_certificate_before_activation(
    session, approver, approver_client
) -> None:
    partner = factories.partner(session)
    link, _ = share(session, partner)
    now = utcnow()
    first = minute(now + timedelta(days=2))
    certificate = schedule.approve_submission(
        session, actor(approver), receive(session, link), activate_at=first, now=now
    )
    moved = minute(now + timedelta(days=4))
    response = approver_client.post(
        f"/certificates/{certificate.id}/reschedule",
        data=when_fields("reschedule", moved, "Europe/Berlin"),
    )
    assert response.status_code == 302, text_of(response)
    assert certificate.activate_at == moved
    (event,) = events(session, "certificate.rescheduled", certificate_id=certificate.id)
    assert event.actor_id == approver.id
    assert f"from {first:%Y-%m-%d %H:%M} to {moved:%Y-%m-%d %H:%M} UTC" in event.summary


def test_rollback_during_the_overlap_brings_the_previous_back(
    session, approver_client, two_of_ours, monkeypatch
) -> None:
    identity, old, new = two_of_ours["identity"], two_of_ours["old"], two_of_ours["new"]
    moment = two_of_ours["switch"] + timedelta(hours=1)  # the new one is in force since 1 hour
    assert active_of(session, identity, moment) == (
        colon_fingerprint(new.sha256),
        colon_fingerprint(old.sha256),
    )
    set_clock(monkeypatch, moment)
    response = approver_client.post(
        f"/certificates/{new.id}/rollback", data={"rollback-reason": "Partner cannot verify"}
    )
    assert response.status_code == 302, text_of(response)
    assert new.withdrawn_at == moment
    assert new.withdrawn_reason == "Partner cannot verify"
    assert old.withdrawn_at is None
    (event,) = events(session, "certificate.rolled_back", certificate_id=new.id)
    assert event.details["reason"] == "Partner cannot verify"
    assert active_of(session, identity, moment) == (colon_fingerprint(old.sha256), None)
    later = active_of(session, identity, moment + timedelta(days=30))
    assert later == (colon_fingerprint(old.sha256), None)


def test_cancel_reschedule_and_rollback_refusals(session, approver, make_user, two_of_ours) -> None:
    """The rules behind the buttons, through the services (the pages are tested below)."""
    old, new, switch = two_of_ours["old"], two_of_ours["new"], two_of_ours["switch"]
    siblings = [old, new]
    rules = schedule.Rules(overlap=OVERLAP)
    after_switch = switch + timedelta(minutes=1)

    with pytest.raises(ServiceError, match="already in force; roll it back instead"):
        schedule.cancel_schedule(session, actor(approver), new, reason="too late", now=after_switch)
    with pytest.raises(ServiceError, match="Only the certificate in force"):
        schedule.rollback(
            session, actor(approver), old, siblings, reason="x", now=after_switch, rules=rules
        )
    with pytest.raises(ServiceError, match="no previous certificate"):
        schedule.rollback(
            session, actor(approver), new, siblings, reason="x",
            now=switch + OVERLAP + timedelta(hours=1), rules=rules,
        )  # fmt: skip
    with pytest.raises(ServiceError, match="Give a reason"):
        schedule.rollback(
            session, actor(approver), new, siblings, reason="  ", now=after_switch, rules=rules
        )
    assert new.withdrawn_at is None

    identity = factories.identity(session)
    only = factories.identity_certificate(session, keyring(), identity)
    now = utcnow()
    schedule_ours(session, only, now, proposer=make_user("operator"), approver=approver, now=now)
    with pytest.raises(ServiceError, match="no previous certificate"):
        schedule.rollback(session, actor(approver), only, [only], reason="x", now=now, rules=rules)
    assert only.withdrawn_at is None

    partner = factories.partner(session)
    link, _ = share(session, partner)
    theirs = schedule.approve_submission(
        session, actor(approver), receive(session, link), activate_at=now, now=now
    )
    with pytest.raises(ServiceError, match="already in force"):
        schedule.reschedule_partner_certificate(
            session, actor(approver), theirs, activate_at=now + timedelta(days=1),
            now=now + timedelta(minutes=1),
        )  # fmt: skip
    assert theirs.activate_at == now
    assert events(session, "certificate.cancelled") == []
    assert events(session, "certificate.rolled_back") == []


def test_certificate_page_of_a_scheduled_certificate(
    approver_client, two_of_ours, monkeypatch
) -> None:
    new = two_of_ours["new"]
    set_clock(monkeypatch, two_of_ours["switch"] + timedelta(hours=1))
    response = approver_client.get(f"/certificates/{new.id}")
    assert response.status_code == 200
    page = text_of(response)
    assert "in force since" in page
    assert "Roll back" in page


REFUSALS = {
    "cancel after activation": ("cancel", "already in force; roll it back instead"),
    "reschedule after activation": ("reschedule", "already in force; roll it back instead"),
    "rollback after the overlap": ("rollback", "There is no previous certificate"),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refused_certificate_actions_on_the_web(
    session, approver, approver_client, two_of_ours, monkeypatch, case
) -> None:
    action, message = REFUSALS[case]
    if action == "reschedule":
        link, _ = share(session, factories.partner(session))
        now = utcnow()
        target = schedule.approve_submission(
            session, actor(approver), receive(session, link), activate_at=now, now=now
        )
        set_clock(monkeypatch, now + timedelta(minutes=1))
        data = when_fields("reschedule", now + timedelta(days=2))
    else:
        target = two_of_ours["new"]
        moment = two_of_ours["switch"] + timedelta(minutes=1)
        if action == "rollback":
            moment += OVERLAP
        set_clock(monkeypatch, moment)
        data = {f"{action}-reason": "please"}
    before = target.activate_at
    response = approver_client.post(f"/certificates/{target.id}/{action}", data=data)
    assert response.status_code == 422
    assert target.withdrawn_at is None
    assert target.activate_at == before
    assert message in text_of(response)


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ("cancel", "This certificate is not scheduled."),
        ("rollback", "Only the certificate in force can be rolled back."),
    ],
)
def test_a_refused_cancel_or_rollback_says_why(session, approver_client, action, message):
    identity = factories.identity(session)
    pending = factories.identity_certificate(session, keyring(), identity)  # not scheduled
    response = approver_client.post(
        f"/certificates/{pending.id}/{action}", data={f"{action}-reason": "please"}
    )
    assert response.status_code == 422
    assert pending.withdrawn_at is None
    assert message in text_of(response)


# ---------------------------------------------------------------------------
# 7. `portal submissions list` and `portal submission approve|reject`
# ---------------------------------------------------------------------------


def test_submission_commands(session, runner, make_user) -> None:
    approver, operator = make_user("approver"), make_user("operator")
    partner = factories.partner(session)
    link, _ = share(session, partner)
    first, second = receive(session, link), receive(session, link)
    session.commit()  # the command shares this session; a refusal rolls back only its own work

    listed = runner.invoke(args=["submissions", "list", "--json"])
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)["submissions"]
    mine = [row for row in rows if row["partner"] == partner.as2_id]
    assert [row["id"] for row in mine] == [second.id, first.id]  # newest first
    assert {row["status"] for row in mine} == {"received"}
    assert mine[0]["fingerprint_sha256"] == colon_fingerprint(second.sha256)
    assert mine[0]["partner_name"] == partner.name

    approve = ["submission", "approve", str(first.id), "--activate-at", "now"]
    refused = runner.invoke(args=[*approve, "--as", operator.email])
    assert refused.exit_code == 1, refused.output
    assert "operator" in refused.output
    assert first.status == "received"

    done = runner.invoke(args=[*approve, "--as", approver.email])
    assert done.exit_code == 0, done.output
    assert f"Approved submission #{first.id}" in done.stdout
    assert first.status == "approved"
    assert len(partner_certificates(session, partner)) == 1

    unknown = runner.invoke(
        args=["submission", "approve", "987654", "--activate-at", "now", "--as", approver.email]
    )
    assert unknown.exit_code == 1
    assert "No submission 987654" in unknown.output

    misuse = runner.invoke(
        args=["submission", "approve", str(second.id), "--activate-at", "garbage", "--as", "x"]
    )
    assert misuse.exit_code == 2, misuse.output
    assert second.status == "received"

    reject = ["submission", "reject", str(second.id), "--reason", "Wrong AS2 ID in the CN"]
    rejected = runner.invoke(args=[*reject, "--as", approver.email])
    assert rejected.exit_code == 0, rejected.output
    assert second.status == "rejected"
    again = runner.invoke(args=[*reject, "--as", approver.email])
    assert again.exit_code == 1
    assert "is rejected, not received" in again.output

    by_status = {}
    for status in ("received", "approved", "rejected"):
        result = runner.invoke(args=["submissions", "list", "--status", status, "--json"])
        assert result.exit_code == 0, result.output
        by_status[status] = [
            row
            for row in json.loads(result.stdout)["submissions"]
            if row["partner"] == partner.as2_id
        ]
    assert by_status["received"] == []
    assert [row["id"] for row in by_status["approved"]] == [first.id]
    assert [row["id"] for row in by_status["rejected"]] == [second.id]
    assert by_status["rejected"][0]["rejection_reason"] == "Wrong AS2 ID in the CN"


# ---------------------------------------------------------------------------
# 8. Change windows
# ---------------------------------------------------------------------------


@pytest.fixture
def window_partner(session: Session) -> dict[str, Any]:
    partner = factories.partner(session, timezone="Europe/Berlin")
    link, token = share(session, partner)
    return {"partner": partner, "link": link, "token": token}


def windows_of(session: Session, partner: Partner) -> list[ChangeWindow]:
    return list(
        session.scalars(
            select(ChangeWindow)
            .where(ChangeWindow.partner_id == partner.id)
            .order_by(ChangeWindow.id)
        )
    )


def calendar_event(response: Any) -> Any:
    assert response.status_code == 200
    assert response.mimetype == "text/calendar"
    calendar = Calendar.from_ical(response.get_data())
    (event,) = calendar.walk("VEVENT")
    return event


def check_invitation(event: Any, window: ChangeWindow, status: str) -> None:
    assert event.decoded("dtstart") == window.starts_at
    assert event.decoded("dtstart").utcoffset() == timedelta(0)
    description = str(event["description"])
    local = window.starts_at.astimezone(BERLIN)
    assert f"{window.starts_at:%Y-%m-%d %H:%M} UTC" in description
    assert f"{local:%Y-%m-%d %H:%M} {local.tzname()}" in description
    assert "Europe/Berlin" in description
    assert str(event["status"]) == status


def test_staff_propose_and_the_partner_accepts(
    session, operator_client, client, window_partner
) -> None:
    partner, token = window_partner["partner"], window_partner["token"]
    day = (utcnow() + timedelta(days=10)).date()
    proposed = operator_client.post(
        f"/partners/{partner.id}/windows",
        data={
            "window-when": "chosen",
            "window-date": day.isoformat(),
            "window-time": "14:00",
            "window-timezone": "Europe/Berlin",
        },
    )
    assert proposed.status_code == 302, text_of(proposed)
    (window,) = windows_of(session, partner)
    assert (window.status, window.proposed_by, window.timezone) == (
        "proposed",
        "staff",
        "Europe/Berlin",
    )
    assert window.starts_at == datetime.combine(day, time(14, 0), tzinfo=BERLIN)
    assert session.scalar(
        select(func.count())
        .select_from(OutboxMessage)
        .where(OutboxMessage.dedupe_key == f"window-proposed:{window.id}")
    )

    page = client.get(f"/s/{token}")
    assert page.status_code == 200
    text = text_of(page)
    assert f"We propose: {format_in_zone(window.starts_at, 'Europe/Berlin')}" in plain(page)
    assert f'action="/s/{token}/window/{window.id}/accept"' in text
    assert "Accept this time" in text

    # The side that proposed cannot accept its own proposal.
    own = operator_client.post(
        f"/partners/{partner.id}/windows/{window.id}/accept", follow_redirects=True
    )
    assert "The other side accepts a proposal, not the side that made it." in text_of(own)
    assert window.status == "proposed"

    check_invitation(calendar_event(client.get(f"/s/{token}/window.ics")), window, "TENTATIVE")

    accepted = client.post(f"/s/{token}/window/{window.id}/accept")
    assert accepted.status_code == 302
    assert window.status == "accepted"
    assert events(session, "window.accepted", window_id=window.id)
    text = plain(client.get(f"/s/{token}"))
    assert f"Agreed: {format_in_zone(window.starts_at, 'Europe/Berlin')}" in text
    assert "Accept this time" not in text

    for response in (
        client.get(f"/s/{token}/window.ics"),
        operator_client.get(f"/partners/{partner.id}/window.ics"),
    ):
        check_invitation(calendar_event(response), window, "CONFIRMED")


def test_partner_proposes_and_staff_accept(
    session, operator_client, client, window_partner
) -> None:
    partner, link, token = (window_partner[k] for k in ("partner", "link", "token"))
    window = links.propose_window(
        session,
        factories.ACTOR,
        link,
        starts_at=minute(utcnow() + timedelta(days=6)),
        timezone="Europe/Berlin",
        contact_name="Grace",
        contact_email="grace@globex.example",
        now=utcnow(),
    )
    check_invitation(
        calendar_event(operator_client.get(f"/partners/{partner.id}/window.ics")),
        window,
        "TENTATIVE",
    )

    own = client.post(f"/s/{token}/window/{window.id}/accept")
    assert own.status_code == 409
    assert "The other side accepts a proposal, not the side that made it." in text_of(own)
    assert window.status == "proposed"

    staff_page = text_of(operator_client.get(f"/partners/{partner.id}"))
    assert "Accept the partner's time" in staff_page
    accepted = operator_client.post(f"/partners/{partner.id}/windows/{window.id}/accept")
    assert accepted.status_code == 302
    assert window.status == "accepted"
    assert "Agreed" in text_of(client.get(f"/s/{token}"))
    check_invitation(calendar_event(client.get(f"/s/{token}/window.ics")), window, "CONFIRMED")


def test_no_window_no_calendar(session, operator_client, client, window_partner) -> None:
    partner, token = window_partner["partner"], window_partner["token"]
    assert client.get(f"/s/{token}/window.ics").status_code == 404
    assert operator_client.get(f"/partners/{partner.id}/window.ics").status_code == 404


def test_a_new_proposal_after_an_agreement_reaches_the_partner(
    session, operator, client, window_partner
) -> None:
    partner, link, token = (window_partner[k] for k in ("partner", "link", "token"))
    now = utcnow()
    agreed = links.propose_window(
        session, factories.ACTOR, link, starts_at=minute(now + timedelta(days=6)),
        timezone="Europe/Berlin", contact_name=None, contact_email=None, now=now,
    )  # fmt: skip
    links.accept_window(session, actor(operator), agreed, by_partner=False, now=now)
    later = links.propose_window_as_staff(
        session, actor(operator), partner, starts_at=minute(now + timedelta(days=9)),
        timezone="Europe/Berlin", now=now,
    )  # fmt: skip
    text = plain(client.get(f"/s/{token}"))
    assert f"We propose: {format_in_zone(later.starts_at, 'Europe/Berlin')}" in text
