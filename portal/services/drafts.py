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

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from portal.domain.tokens import LinkSigner
from portal.models import Partner, ShareLink
from portal.services import dashboard, links
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


def drafts(session: Session, *, now: datetime, overlap: timedelta) -> list[Draft]:
    """The drafts at NOW, soonest expiry first, one per partner."""
    found = dashboard.expiring(session, now=now, overlap=overlap, buckets=(DRAFT_DAYS,))
    unreplaced = [
        e for e in found if e.replacement is None and e.certificate.owner.startswith("partner:")
    ]
    if not unreplaced:
        return []
    ids = {int(e.certificate.owner.split(":", 1)[1]) for e in unreplaced}
    asked = set(
        session.scalars(
            select(ShareLink.partner_id).where(
                ShareLink.partner_id.in_(ids),
                ShareLink.can_upload.is_(True),
                ShareLink.revoked_at.is_(None),
                ShareLink.expires_at > now,
                ShareLink.uploads_used < ShareLink.max_uploads,
            )
        )
    )
    partners = {
        p.id: p
        for p in session.scalars(
            select(Partner).options(selectinload(Partner.contacts)).where(Partner.id.in_(ids))
        )
    }
    result: dict[int, Draft] = {}
    for e in unreplaced:
        partner_id = int(e.certificate.owner.split(":", 1)[1])
        if partner_id in asked or partner_id in result or partner_id not in partners:
            continue
        result[partner_id] = Draft(
            partners[partner_id], e.certificate.id, e.certificate.not_after, e.days_left
        )
    return list(result.values())


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
    draft = next(
        (d for d in drafts(session, now=now, overlap=overlap) if d.partner.id == partner_id), None
    )
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
