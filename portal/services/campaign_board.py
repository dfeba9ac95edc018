"""A campaign's board: where each partner stands, derived from what is recorded anyway.

Nothing here is copied state: the link's counters, acknowledgements and submissions are
read and judged by portal.domain.campaigns.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from portal.domain import campaigns as rules
from portal.domain.vocab import CampaignKind, SubmissionStatus
from portal.models import (
    Acknowledgement,
    Campaign,
    CampaignPartner,
    Certificate,
    OutboxMessage,
    Partner,
    ShareLink,
    Submission,
)
from portal.services.pagination import Page

# A campaign's links keep working this long after the switch (late partners still reach us).
LINK_AFTER_SWITCH = timedelta(days=14)


@dataclass(frozen=True)
class BoardRow:
    """One partner of a campaign as the board shows it."""

    partner_id: int
    as2_id: str
    name: str
    link_id: str | None
    link_revoked: bool
    unreachable: bool
    email_sent_at: datetime | None
    facts: rules.Facts
    state: rules.PartnerState
    at_risk: bool


@dataclass(frozen=True)
class Board:
    """Every partner of a campaign, the counts per state, and the partners left out."""

    campaign: Campaign
    rows: list[BoardRow]
    counts: dict[rules.PartnerState, int]
    at_risk: int
    unreachable: int
    not_included: list[Partner]


def board(session: Session, campaign: Campaign, *, now: datetime, risk_window: timedelta) -> Board:
    """Where each partner stands, from the link, acknowledgements and submissions."""
    acks: dict[int, datetime] = {
        partner_id: moment
        for partner_id, moment in session.execute(
            select(Acknowledgement.partner_id, func.max(Acknowledgement.created_at))
            .join(CampaignPartner, CampaignPartner.partner_id == Acknowledgement.partner_id)
            .where(
                CampaignPartner.campaign_id == campaign.id,
                Acknowledgement.created_at >= campaign.created_at,
            )
            .group_by(Acknowledgement.partner_id)
        )
    }
    uploads = _newest_submissions(session, campaign)
    rows = [
        _row(campaign, record, acks.get(record.partner_id), uploads.get(record.link_id),
             now=now, risk_window=risk_window)
        for record in session.execute(
            select(CampaignPartner.partner_id, CampaignPartner.link_id,
                   CampaignPartner.unreachable, Partner.as2_id, Partner.name,
                   ShareLink.opened_count, ShareLink.download_count, ShareLink.revoked_at,
                   OutboxMessage.sent_at)
            .join(Partner, Partner.id == CampaignPartner.partner_id)
            .outerjoin(ShareLink, ShareLink.id == CampaignPartner.link_id)
            .outerjoin(OutboxMessage, OutboxMessage.id == CampaignPartner.message_id)
            .where(CampaignPartner.campaign_id == campaign.id)
            .order_by(Partner.name, Partner.id)
        )
    ]  # fmt: skip
    counts = dict.fromkeys(rules.states_of(campaign.asks), 0)
    for row in rows:
        counts[row.state] = counts.get(row.state, 0) + 1
    return Board(
        campaign=campaign, rows=rows, counts=counts,
        at_risk=sum(row.at_risk for row in rows),
        unreachable=sum(row.unreachable for row in rows),
        not_included=not_included(session, campaign),
    )  # fmt: skip


def _row(
    campaign: Campaign,
    record: Any,
    acknowledged_at: datetime | None,
    upload: tuple[str, datetime | None] | None,
    *,
    now: datetime,
    risk_window: timedelta,
) -> BoardRow:
    facts = rules.Facts(
        opened=record.opened_count or 0,
        downloaded=record.download_count or 0,
        acknowledged_at=acknowledged_at,
        submission_status=upload[0] if upload else None,
        certificate_activate_at=upload[1] if upload else None,
    )
    return BoardRow(
        partner_id=record.partner_id, as2_id=record.as2_id, name=record.name,
        link_id=record.link_id, link_revoked=record.revoked_at is not None,
        unreachable=record.unreachable, email_sent_at=record.sent_at, facts=facts,
        state=rules.partner_state(facts, asks=campaign.asks, now=now),
        at_risk=rules.at_risk(facts, asks=campaign.asks, activate_at=campaign.activate_at,
                              risk_window=risk_window, now=now),
    )  # fmt: skip


def _newest_submissions(
    session: Session, campaign: Campaign
) -> dict[str | None, tuple[str, datetime | None]]:
    """Link id -> (status, activate_at of its certificate) of the newest submission through it."""
    if not campaign.asks.upload:
        return {}
    found: dict[str | None, tuple[str, datetime | None]] = {}
    for link_id, status, activate_at, withdrawn_at in session.execute(
        select(Submission.link_id, Submission.status, Certificate.activate_at,
               Certificate.withdrawn_at)
        .join(CampaignPartner, CampaignPartner.link_id == Submission.link_id)
        .outerjoin(Certificate, Certificate.id == Submission.certificate_id)
        .where(CampaignPartner.campaign_id == campaign.id)
        .order_by(Submission.id)
    ):  # fmt: skip
        found[link_id] = (status, None if withdrawn_at is not None else activate_at)
    return found


def not_included(session: Session, campaign: Campaign) -> list[Partner]:
    """Partners of the identity who are not in a rotation campaign (added since it started).

    A request for partners' certificates asked those its selection chose; it offers none.
    """
    if not campaign.is_rotation:
        return []
    included = select(CampaignPartner.partner_id).where(CampaignPartner.campaign_id == campaign.id)
    return list(
        session.scalars(
            select(Partner)
            .where(
                Partner.identity_id == campaign.identity_id,
                Partner.environment == campaign.identity.environment,
                Partner.id.not_in(included),
            )
            .order_by(Partner.name, Partner.id)
        )
    )


def filter_rows(rows: list[BoardRow], *, state: str, query: str) -> list[BoardRow]:
    """Rows in STATE (a state, "at risk", "unreachable" or "" for all) matching QUERY."""
    needle = query.strip().casefold()
    return [
        row
        for row in rows
        if (
            not state
            or row.state.value == state
            or (state == "at risk" and row.at_risk)
            or (state == "unreachable" and row.unreachable)
        )
        and (not needle or needle in row.name.casefold() or needle in row.as2_id.casefold())
    ]


def page_of(rows: list[BoardRow], *, page: int, per_page: int) -> Page[BoardRow]:
    """One page of board rows."""
    page = max(1, page)
    chunk = rows[(page - 1) * per_page : page * per_page]
    return Page(items=chunk, page=page, per_page=per_page, total=len(rows))


def at_risk_counts(
    session: Session, *, now: datetime, risk_window: timedelta
) -> list[tuple[Campaign, int]]:
    """Open campaigns (switch within RISK_WINDOW or recently past) and their partners at risk."""
    acknowledged = (
        select(Acknowledgement.id)
        .where(
            Acknowledgement.partner_id == CampaignPartner.partner_id,
            Acknowledgement.created_at >= Campaign.created_at,
        )
        .exists()
    )
    uploaded = (
        select(Submission.id)
        .where(
            Submission.link_id == CampaignPartner.link_id,
            Submission.status != SubmissionStatus.REJECTED.value,
        )
        .exists()
    )
    # The same judgement as rules.at_risk: a rotation waits for the acknowledgement, a
    # request for partners' certificates for their upload.
    not_done = or_(
        and_(Campaign.kind == CampaignKind.ROTATION.value, ~acknowledged),
        and_(Campaign.kind == CampaignKind.PARTNER_CERTIFICATES.value, ~uploaded),
    )
    found = session.execute(
        select(Campaign, func.count(CampaignPartner.id))
        .join(CampaignPartner, CampaignPartner.campaign_id == Campaign.id)
        .where(
            Campaign.activate_at <= now + risk_window,
            Campaign.activate_at > now - LINK_AFTER_SWITCH,
            not_done,
        )
        .group_by(Campaign.id)
        .order_by(Campaign.activate_at, Campaign.id)
    ).tuples()
    return [(campaign, count) for campaign, count in found]


def member_facts(session: Session, campaign: Campaign, row: CampaignPartner) -> rules.Facts:
    """What is recorded about one partner of CAMPAIGN now (as the board reads it)."""
    acknowledged_at = session.scalar(
        select(func.max(Acknowledgement.created_at)).where(
            Acknowledgement.partner_id == row.partner_id,
            Acknowledgement.created_at >= campaign.created_at,
        )
    )
    upload: tuple[str, datetime | None] | None = None
    if campaign.asks.upload and row.link_id is not None:
        newest = session.execute(
            select(Submission.status, Certificate.activate_at, Certificate.withdrawn_at)
            .outerjoin(Certificate, Certificate.id == Submission.certificate_id)
            .where(Submission.link_id == row.link_id)
            .order_by(Submission.id.desc())
            .limit(1)
        ).first()
        if newest is not None:
            upload = (newest[0], None if newest[2] is not None else newest[1])
    link = row.link
    return rules.Facts(
        opened=link.opened_count if link is not None else 0,
        downloaded=link.download_count if link is not None else 0,
        acknowledged_at=acknowledged_at,
        submission_status=upload[0] if upload else None,
        certificate_activate_at=upload[1] if upload else None,
    )
