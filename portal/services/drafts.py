"""Draft upload requests: partner certificates in force that enter the 60-day zone unreplaced.

A draft is derived, never stored: a partner whose certificate in force expires within
DRAFT_DAYS with no replacement scheduled (the dashboard's rule) and with no working upload
link has one. The dashboard lists them; one click sends it: an upload link, emailed to the
partner's contacts (both audited as a link made by hand). Once that link exists the draft
is gone; it comes back if the link is revoked or expires with nothing scheduled.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session, selectinload

from portal.domain.tokens import LinkSigner
from portal.models import Partner, ShareLink
from portal.services import expiring, links
from portal.services.actor import Actor
from portal.services.errors import NotFoundError, ServiceError

DRAFT_DAYS = 60


@dataclass(frozen=True)
class Draft:
    """An upload request an operator may send to PARTNER."""

    partner: Partner
    certificate_id: int
    not_after: datetime
    days_left: int


def drafts(
    session: Session,
    *,
    now: datetime,
    overlap: timedelta,
    limit: int | None = None,
    partner_id: int | None = None,
) -> list[Draft]:
    """The drafts at NOW, soonest expiry first, one per partner (at most LIMIT; only
    PARTNER_ID's when given). OVERLAP does not change what is in force, only previous."""
    return _load(session, now, _drafts(now, partner_id).limit(limit))[0]


def first_drafts(session: Session, *, now: datetime, limit: int) -> tuple[list[Draft], int]:
    """The first LIMIT drafts at NOW (as drafts() orders them) and how many there are."""
    stmt = _drafts(now).add_columns(func.count().over().label("total")).limit(limit)
    return _load(session, now, stmt)


def _load(session: Session, now: datetime, stmt: Select[Any]) -> tuple[list[Draft], int]:
    found = session.execute(stmt).all()
    if not found:
        return [], 0
    partners = {
        p.id: p
        for p in session.scalars(
            select(Partner)
            .options(selectinload(Partner.contacts))
            .where(Partner.id.in_({row.owner_id for row in found}))
        )
    }
    made = [
        Draft(partners[row.owner_id], row.id, row.not_after, (row.not_after - now).days)
        for row in found
        if row.owner_id in partners
    ]
    return made, int(getattr(found[0], "total", len(found)))


def _drafts(now: datetime, partner_id: int | None = None) -> Select[Any]:
    """Per partner, its soonest unreplaced certificate in force expiring within DRAFT_DAYS
    at NOW, unless an upload link works."""
    found = expiring.in_force_rows(now=now, within=DRAFT_DAYS, owner="partner")
    asked = exists().where(
        ShareLink.partner_id == found.c.owner_id,
        ShareLink.can_upload.is_(True),
        ShareLink.revoked_at.is_(None),
        ShareLink.expires_at > now,
        ShareLink.uploads_used < ShareLink.max_uploads,
    )
    first = func.row_number().over(
        partition_by=found.c.owner_id, order_by=(found.c.not_after, found.c.id, found.c.usage)
    )
    ranked = (
        select(found.c.owner_id, found.c.id, found.c.not_after, first.label("n"))
        .where(found.c.replacement_id.is_(None), ~asked)
        .subquery("ranked")
    )
    stmt = select(ranked.c.owner_id, ranked.c.id, ranked.c.not_after).where(ranked.c.n == 1)
    if partner_id is not None:
        stmt = stmt.where(ranked.c.owner_id == partner_id)
    return stmt.order_by(ranked.c.not_after, ranked.c.id)


def send(
    session: Session,
    actor: Actor,
    signer: LinkSigner,
    partner_id: int,
    *,
    now: datetime,
    overlap: timedelta,
    lifetime: timedelta,
    max_uploads: int,
) -> ShareLink:
    """Send the partner's draft: an upload link, emailed to its contacts."""
    draft = next(iter(drafts(session, now=now, overlap=overlap, partner_id=partner_id)), None)
    if draft is None:
        raise NotFoundError("No upload request waits for that partner.")
    partner = draft.partner
    if not partner.contact_emails:
        raise ServiceError(f"{partner.name} has no contact email; add one to the partner first.")
    link, _token = links.create_link(
        session, actor, signer, partner, can_download=False, can_upload=True,
        lifetime=lifetime, max_uploads=max(1, max_uploads), now=now,
    )  # fmt: skip
    links.email_link(session, actor, link, sender_org=partner.identity.organisation)
    return link
