"""The dashboard: what expires, what waits, what happens next."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from portal.domain.reports import (
    BUCKETS,
    CertRow,
    Expiring,
    Week,
    expiring_soon,
    timeline_svg,
    weekly_timeline,
)
from portal.domain.vocab import SubmissionStatus
from portal.models import Acknowledgement, Certificate, Partner, Submission
from portal.services import schedule


@dataclass(frozen=True)
class Unacknowledged:
    """A partner that has not confirmed installing our upcoming certificate."""

    partner: Partner
    certificate: Certificate


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard shows."""

    expiring: list[Expiring]
    upcoming: list[Certificate]
    unacknowledged: list[Unacknowledged]
    waiting: list[Submission]
    waiting_count: int
    # Our certificates whose proposed schedule waits for a second approver.
    schedules_waiting: list[Certificate]
    schedules_waiting_count: int
    weeks: list[Week]
    timeline_svg: str

    def in_bucket(self, days: int) -> list[Expiring]:
        """The expiring certificates of one bucket (7, 30 or 90 days)."""
        return [e for e in self.expiring if e.bucket == days]


def build(session: Session, *, now: datetime, overlap: timedelta) -> Dashboard:
    """Gather the dashboard at NOW."""
    certificates = _certificates(session)
    rows = [_row(c) for c in certificates if c.activate_at is not None]
    upcoming = sorted(
        (c for c in certificates if c.activate_at is not None and c.activate_at > now),
        key=lambda c: (c.activate_at, c.id),
    )
    weeks = weekly_timeline(
        (c.not_after for c in certificates if c.activate_at is not None),
        (c.activate_at for c in upcoming if c.activate_at is not None),
        start=now,
    )
    waiting_query = select(Submission).where(Submission.status == SubmissionStatus.RECEIVED)
    schedules = schedule.schedules_waiting(session)
    return Dashboard(
        expiring=expiring_soon(rows, now=now, overlap=overlap),
        upcoming=upcoming[:20],
        unacknowledged=_unacknowledged(session, certificates, now),
        waiting=list(
            session.scalars(
                waiting_query.options(selectinload(Submission.partner))
                .order_by(Submission.id)
                .limit(10)
            )
        ),
        waiting_count=session.scalar(select(func.count()).select_from(waiting_query.subquery()))
        or 0,
        schedules_waiting=schedules[:10],
        schedules_waiting_count=len(schedules),
        weeks=weeks,
        timeline_svg=timeline_svg(weeks),
    )


def expiring(
    session: Session, *, now: datetime, overlap: timedelta, buckets: Sequence[int] = BUCKETS
) -> list[Expiring]:
    """Certificates in force (ours and partners') expiring within BUCKETS days, as the
    dashboard lists them (each with its replacement, if one is scheduled)."""
    rows = [_row(c) for c in _certificates(session) if c.activate_at is not None]
    return expiring_soon(rows, now=now, overlap=overlap, buckets=buckets)


def _certificates(session: Session) -> list[Certificate]:
    return list(
        session.scalars(
            select(Certificate)
            .options(selectinload(Certificate.identity), selectinload(Certificate.partner))
            .where(Certificate.withdrawn_at.is_(None))
        )
    )


def _row(certificate: Certificate) -> CertRow:
    owner = certificate.identity or certificate.partner
    kind = "identity" if certificate.identity_id else "partner"
    return CertRow(
        id=certificate.id,
        owner=f"{kind}:{certificate.identity_id or certificate.partner_id}",
        owner_name=f"{'our ' if kind == 'identity' else ''}{owner.name if owner else '?'}",
        usage=certificate.usage,
        not_after=certificate.not_after,
        activate_at=certificate.activate_at,
        withdrawn_at=certificate.withdrawn_at,
    )


def _unacknowledged(
    session: Session, certificates: list[Certificate], now: datetime
) -> list[Unacknowledged]:
    """Partners of identities with an upcoming certificate, without an acknowledgement since."""
    upcoming: dict[int, Certificate] = {}
    for certificate in certificates:
        if certificate.identity_id is None:
            continue
        is_upcoming = certificate.activate_at is None or certificate.activate_at > now
        if is_upcoming and certificate.not_after > now:
            current = upcoming.get(certificate.identity_id)
            if current is None or certificate.created_at > current.created_at:
                upcoming[certificate.identity_id] = certificate
    if not upcoming:
        return []
    partners = session.scalars(
        select(Partner)
        .where(Partner.identity_id.in_(upcoming))
        .options(selectinload(Partner.identity))
        .order_by(Partner.name)
    )
    latest_ack: dict[int, datetime] = {
        partner_id: moment
        for partner_id, moment in session.execute(
            select(Acknowledgement.partner_id, func.max(Acknowledgement.created_at)).group_by(
                Acknowledgement.partner_id
            )
        )
    }
    found = []
    for partner in partners:
        certificate = upcoming[partner.identity_id]
        acknowledged = latest_ack.get(partner.id)
        if acknowledged is None or _aware(acknowledged) < certificate.created_at:
            found.append(Unacknowledged(partner, certificate))
    return found


def _aware(moment: datetime) -> datetime:
    # Aggregates can bypass the column type on SQLite, so the value may come back naive UTC.
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
