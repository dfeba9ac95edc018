"""Helpers for the approval, schedule and change-window tests: partner submissions, our
schedules with four eyes, form fields for a time in a zone, and signed-in approvers.

Time is never slept through: services take `now=`, views read the `clock` fixture.

tests/conftest.py loads this module as a plugin (`pytest_plugins`), so its fixtures
(`approver`, `operator`, `approver_client`, `received`) reach a test by naming them; a
test module that defines a fixture of the same name uses its own.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from cryptography import x509
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.extensions import link_signer
from portal.models import (
    AuditEvent,
    Certificate,
    Identity,
    Partner,
    ShareLink,
    Submission,
    User,
)
from portal.services import links, schedule, submissions
from portal.services.actor import Actor
from portal.timeutil import utcnow
from tests import certfactory, factories

OVERLAP = timedelta(days=7)
BERLIN = ZoneInfo("Europe/Berlin")


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


def signing_of(document: dict[str, Any], identity: Identity) -> dict[str, Any]:
    (entry,) = [i for i in document["identities"] if i["as2_id"] == identity.as2_id]
    return entry["certificates"]["signing"]


def fingerprint(cert: dict[str, Any] | None) -> str | None:
    return cert["fingerprint_sha256"] if cert else None


@pytest.fixture
def approver(make_user: Callable[..., User]) -> User:
    return make_user("approver")


@pytest.fixture
def operator(make_user: Callable[..., User]) -> User:
    return make_user("operator")


@pytest.fixture
def approver_client(approver: User, login: Callable[[User], FlaskClient]) -> FlaskClient:
    return login(approver)


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
