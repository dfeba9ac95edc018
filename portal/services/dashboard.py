"""The dashboard: what expires, what waits, what happens next.

Every part is a SQL aggregate or a bounded list over light columns, so the page sends the
same statements and renders about the same bytes at 100 partners and at 10,000: counts per
expiry bucket and the most urgent rows (the expiring list page shows the rest, keyset-paged),
the timeline as counts per week, and short lists with their totals.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    case,
    exists,
    func,
    literal_column,
    or_,
    select,
)
from sqlalchemy.orm import Session

from portal.domain.reports import (
    BUCKETS,
    DASHBOARD_BUCKETS,
    WEEKS,
    Expiring,
    ExpiryLine,
    Week,
    expiry_lines,
    timeline_svg,
)
from portal.domain.vocab import SubmissionStatus
from portal.models import (
    Acknowledgement,
    AuditEvent,
    Certificate,
    Identity,
    Partner,
    Submission,
    User,
)
from portal.services import expiring as rows

MOST_URGENT = 20  # expiring rows on the dashboard; the list page has the others
SHORT_LIST = 10  # waiting submissions, schedules, latest events
UNACKNOWLEDGED_SHOWN = 15
UPCOMING_SHOWN = 20


@dataclass(frozen=True)
class Totals:
    """How many identities, partners and staff accounts exist."""

    identities: int
    partners: int
    users: int


@dataclass(frozen=True)
class Activation:
    """A certificate scheduled to take effect (ours or a partner's)."""

    id: int
    owner_name: str
    usage: str
    activate_at: datetime


@dataclass(frozen=True)
class WaitingSubmission:
    """A partner's upload waiting for approval."""

    id: int
    partner_name: str
    created_at: datetime


@dataclass(frozen=True)
class WaitingSchedule:
    """One of our certificates whose proposed schedule waits for a second approver."""

    id: int
    identity_name: str
    usage: str
    proposed_activate_at: datetime


@dataclass(frozen=True)
class Unacknowledged:
    """A partner that has not confirmed installing our upcoming certificate."""

    partner_id: int
    partner_name: str
    identity_as2_id: str


@dataclass(frozen=True)
class Dashboard:
    """Everything the dashboard shows; every list is bounded, each with its total."""

    totals: Totals
    expiry: list[ExpiryLine]  # expired, then within 1/7/14/30/90 days (cumulative)
    expiring: list[Expiring]  # the MOST_URGENT rows within 90 days, soonest first
    expiring_total: int
    upcoming: list[Activation]
    unacknowledged: list[Unacknowledged]
    unacknowledged_count: int
    waiting: list[WaitingSubmission]
    waiting_count: int
    schedules_waiting: list[WaitingSchedule]
    schedules_waiting_count: int
    events: list[AuditEvent]  # the latest SHORT_LIST; the audit page has the rest
    weeks: list[Week]
    timeline_svg: str

    @property
    def expiring_more(self) -> int:
        """How many rows within 90 days the dashboard does not show."""
        return max(0, self.expiring_total - len(self.expiring))

    def line(self, days: int) -> ExpiryLine:
        """The expiry line of DAYS (0: expired)."""
        return next(line for line in self.expiry if line.days == days)


def build(session: Session, *, now: datetime, overlap: timedelta) -> Dashboard:
    """Gather the dashboard at NOW (OVERLAP does not change what is active, only previous)."""
    expiry = expiry_lines(rows.counts(session, now=now, limits=DASHBOARD_BUCKETS))
    widest = max(DASHBOARD_BUCKETS)
    waiting = select(Submission.id).where(Submission.status == SubmissionStatus.RECEIVED.value)
    unacknowledged = _unacknowledged(now)
    schedules = _schedules_waiting()
    weeks = _weeks(session, now)
    return Dashboard(
        totals=_totals(session),
        expiry=expiry,
        expiring=rows.listed(session, now=now, where=rows.Filter(widest), limit=MOST_URGENT),
        expiring_total=next(line.total for line in expiry if line.days == widest),
        upcoming=_upcoming(session, now),
        unacknowledged=[
            Unacknowledged(*row)
            for row in session.execute(
                unacknowledged.order_by(Partner.name, Partner.id).limit(UNACKNOWLEDGED_SHOWN)
            )
        ],
        unacknowledged_count=_count(session, unacknowledged),
        waiting=[
            WaitingSubmission(*row)
            for row in session.execute(
                select(Submission.id, Partner.name, Submission.created_at)
                .join(Partner, Partner.id == Submission.partner_id)
                .where(Submission.status == SubmissionStatus.RECEIVED.value)
                .order_by(Submission.id)
                .limit(SHORT_LIST)
            )
        ],
        waiting_count=_count(session, waiting),
        schedules_waiting=[
            WaitingSchedule(*row)
            for row in session.execute(
                schedules.order_by(Certificate.proposed_activate_at, Certificate.id).limit(
                    SHORT_LIST
                )
            )
        ],
        schedules_waiting_count=_count(session, schedules),
        events=list(
            session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()).limit(SHORT_LIST))
        ),
        weeks=weeks,
        timeline_svg=timeline_svg(weeks),
    )


def expiring(
    session: Session, *, now: datetime, overlap: timedelta, buckets: Sequence[int] = BUCKETS
) -> list[Expiring]:
    """Certificates in force (ours and partners') expiring within BUCKETS days, as the
    dashboard counts them (each with its replacement, if one is scheduled)."""
    return rows.expiring(session, now=now, buckets=buckets)


def _count(session: Session, stmt: Select[Any]) -> int:
    return session.scalar(select(func.count()).select_from(stmt.subquery())) or 0


def _totals(session: Session) -> Totals:
    def total(model: type[Identity | Partner | User]) -> ColumnElement[int]:
        return select(func.count()).select_from(model).scalar_subquery()

    found = session.execute(select(total(Identity), total(Partner), total(User))).one()
    return Totals(*found)


def _upcoming(session: Session, now: datetime) -> list[Activation]:
    """The next certificates to take effect, soonest first."""
    found = session.execute(
        select(
            Certificate.id,
            func.coalesce(Identity.name, Partner.name),
            Certificate.usage,
            Certificate.activate_at,
        )
        .outerjoin(Identity, Identity.id == Certificate.identity_id)
        .outerjoin(Partner, Partner.id == Certificate.partner_id)
        .where(Certificate.withdrawn_at.is_(None), Certificate.activate_at > now)
        .order_by(Certificate.activate_at, Certificate.id)
        .limit(UPCOMING_SHOWN)
    )
    return [Activation(id_, name or "?", usage, moment) for id_, name, usage, moment in found]


def _unacknowledged(now: datetime) -> Select[tuple[int, str, str]]:
    """Partners of identities with an upcoming certificate, without an acknowledgement since
    the newest such certificate was made."""
    upcoming = (
        select(
            Certificate.identity_id.label("identity_id"),
            func.max(Certificate.created_at).label("since"),
        )
        .where(
            Certificate.identity_id.is_not(None),
            Certificate.withdrawn_at.is_(None),
            or_(Certificate.activate_at.is_(None), Certificate.activate_at > now),
            Certificate.not_after > now,
        )
        .group_by(Certificate.identity_id)
        .subquery("upcoming")
    )
    acknowledged = exists().where(
        Acknowledgement.partner_id == Partner.id, Acknowledgement.created_at >= upcoming.c.since
    )
    return (
        select(Partner.id, Partner.name, Identity.as2_id)
        .join(upcoming, upcoming.c.identity_id == Partner.identity_id)
        .join(Identity, Identity.id == Partner.identity_id)
        .where(~acknowledged)
    )


def _schedules_waiting() -> Select[tuple[int, str, str, datetime | None]]:
    return (
        select(Certificate.id, Identity.name, Certificate.usage, Certificate.proposed_activate_at)
        .join(Identity, Identity.id == Certificate.identity_id)
        .where(Certificate.proposed_activate_at.is_not(None), Certificate.withdrawn_at.is_(None))
    )


def _weeks(session: Session, now: datetime) -> list[Week]:
    """Expiries (of dated certificates) and scheduled activations per week, next 52 weeks."""
    edges = [now + timedelta(weeks=i) for i in range(WEEKS + 1)]

    def week(moment: Any) -> ColumnElement[int]:
        return case(*((moment < edges[i + 1], i) for i in range(WEEKS)), else_=-1)

    live = Certificate.withdrawn_at.is_(None)
    expiries = week(Certificate.not_after)
    activations = week(Certificate.activate_at)
    stmt: CompoundSelect[Any] = (
        select(literal_column("'expiry'").label("kind"), expiries.label("week"), func.count())
        .where(live, Certificate.activate_at.is_not(None))
        .where(Certificate.not_after >= now, Certificate.not_after < edges[-1])
        .group_by(expiries)
        .union_all(
            select(literal_column("'activation'"), activations, func.count())
            .where(live, Certificate.activate_at > now, Certificate.activate_at < edges[-1])
            .group_by(activations)
        )
    )
    counts: dict[tuple[str, int], int] = {
        (kind, int(index)): int(number) for kind, index, number in session.execute(stmt).tuples()
    }
    return [
        Week(edges[i], counts.get(("expiry", i), 0), counts.get(("activation", i), 0))
        for i in range(WEEKS)
    ]
