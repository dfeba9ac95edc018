"""Draft upload requests: partner certificates in force that enter the 60-day zone unreplaced.

A draft is derived, never stored: a partner whose certificate in force expires within
DRAFT_DAYS with no replacement scheduled (the dashboard's rule) and with no working upload
link has one. The dashboard lists them; one click sends it: an upload link, emailed to the
partner's contacts (both audited as a link made by hand). Once that link exists the draft
is gone; it comes back if the link is revoked or expires with nothing scheduled.

With PORTAL_DRAFT_REQUESTS_AUTO_SEND the runner sends it itself: planning inserts a side
effect `draft-request:<certificate id>` for each draft of a partner with contacts (the
unique key: once per certificate, under any number of runners), and performing it sends
the same link and email the button makes, unless meanwhile an upload link was opened or a
replacement scheduled. Performing needs the link signer, which the runner's entry point
passes in (services never read the app's configuration).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Select, exists, func, select
from sqlalchemy.orm import Session, selectinload

from portal.domain.certs import short_fingerprint
from portal.domain.tokens import LinkSigner
from portal.models import Certificate, Partner, ShareLink, SideEffect
from portal.services import audit, expiring, links
from portal.services.actor import Actor
from portal.services.errors import NotFoundError, ServiceError

DRAFT_DAYS = 60
AUTO_SEND = "draft.request"  # the side effect's kind
SCHEDULER = Actor("scheduler")


@dataclass(frozen=True)
class AutoSend:
    """How the runner sends drafts itself: the link the button would make."""

    lifetime: timedelta  # PORTAL_LINK_DEFAULT_EXPIRY
    max_uploads: int  # PORTAL_LINK_DEFAULT_MAX_UPLOADS


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
    found = session.execute(stmt, expiring.params(now, DRAFT_DAYS)).all()
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
    found = expiring.in_force_rows(owner="partner")
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
    return _request(session, actor, signer, partner, now=now, lifetime=lifetime,
                    max_uploads=max_uploads)  # fmt: skip


def _request(
    session: Session,
    actor: Actor,
    signer: LinkSigner,
    partner: Partner,
    *,
    now: datetime,
    lifetime: timedelta,
    max_uploads: int,
) -> ShareLink:
    """An upload link for PARTNER, emailed to its contacts (both audited)."""
    link, _token = links.create_link(
        session, actor, signer, partner, can_download=False, can_upload=True,
        lifetime=lifetime, max_uploads=max(1, max_uploads), now=now,
    )  # fmt: skip
    links.email_link(session, actor, link, sender_org=partner.identity.organisation)
    return link


# Sent by the runner ------------------------------------------------------------------------


def auto_key(certificate_id: int) -> str:
    """The side effect's unique key: one automatic request per certificate."""
    return f"draft-request:{certificate_id}"


def plan_automatic(
    session: Session, *, now: datetime, overlap: timedelta, policy: AutoSend
) -> list[tuple[str, dict[str, Any]]]:
    """(key, payload) of the requests to send at NOW: a draft of a partner with contacts,
    not sent automatically before for that certificate."""
    wanted = {
        auto_key(d.certificate_id): d
        for d in drafts(session, now=now, overlap=overlap)
        if d.partner.contact_emails
    }
    if not wanted:
        return []
    done = set(session.scalars(select(SideEffect.key).where(SideEffect.key.in_(wanted))))
    payload = {
        "lifetime_seconds": int(policy.lifetime.total_seconds()),
        "max_uploads": policy.max_uploads,
    }
    return [
        (key, {**payload, "partner_id": d.partner.id, "certificate_id": d.certificate_id})
        for key, d in wanted.items()
        if key not in done
    ]


def send_automatically(
    session: Session, effect: SideEffect, now: datetime, signer: LinkSigner
) -> None:
    """Perform a planned request: the link and email the button sends, unless the partner
    since got an upload link, a replacement was scheduled or it lost its contacts."""
    partner = session.get(Partner, effect.payload["partner_id"])
    certificate = session.get(Certificate, effect.payload["certificate_id"])
    if partner is None or certificate is None or certificate.withdrawn_at is not None:
        return
    why_not = None
    if _open_upload_link(session, partner.id, now):
        why_not = "it has an open upload link"
    elif _replacement_scheduled(session, certificate, now):
        why_not = "a replacement is scheduled"
    elif not partner.contact_emails:
        why_not = "it has no contact email"
    if why_not is not None:
        audit.record(
            session, SCHEDULER, "draft_request.unsent", object_type="partner",
            object_id=partner.id, summary=f"No automatic upload request: {why_not}",
            details={"certificate_id": certificate.id, "side_effect": effect.key},
        )  # fmt: skip
        return
    link = _request(
        session, SCHEDULER, signer, partner, now=now,
        lifetime=timedelta(seconds=int(effect.payload["lifetime_seconds"])),
        max_uploads=int(effect.payload["max_uploads"]),
    )  # fmt: skip
    audit.record(
        session, SCHEDULER, "draft_request.sent", object_type="partner", object_id=partner.id,
        summary=f"Sent the upload request automatically (link {link.id}): certificate "
        f"{short_fingerprint(certificate.sha256)} expires {certificate.not_after:%Y-%m-%d} "
        "and nothing is scheduled",
        details={"certificate_id": certificate.id, "link_id": link.id, "side_effect": effect.key},
    )  # fmt: skip


def _open_upload_link(session: Session, partner_id: int, now: datetime) -> bool:
    """Whether the partner has a link it can still upload through (the drafts' rule)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    ShareLink.partner_id == partner_id,
                    ShareLink.can_upload.is_(True),
                    ShareLink.revoked_at.is_(None),
                    ShareLink.expires_at > now,
                    ShareLink.uploads_used < ShareLink.max_uploads,
                )
            )
        )
    )


def _replacement_scheduled(session: Session, certificate: Certificate, now: datetime) -> bool:
    """Whether a later certificate of the same partner is scheduled (the dashboard's rule,
    any usage: enough to hold back an email)."""
    return bool(
        session.scalar(
            select(
                exists().where(
                    Certificate.partner_id == certificate.partner_id,
                    Certificate.id != certificate.id,
                    Certificate.withdrawn_at.is_(None),
                    Certificate.activate_at > now,
                    Certificate.not_after > certificate.not_after,
                )
            )
        )
    )
