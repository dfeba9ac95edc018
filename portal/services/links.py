"""Share links: create, resolve, count uses atomically, revoke; what a partner may see."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from functools import cache

from sqlalchemy import Select, bindparam, select, update
from sqlalchemy.orm import Session, joinedload

from portal.domain.inforce import in_force_by_usage
from portal.domain.tokens import LinkSigner, new_link_id
from portal.domain.vocab import WindowStatus
from portal.models import (
    Acknowledgement,
    Certificate,
    ChangeWindow,
    Partner,
    ShareLink,
    Submission,
)
from portal.services import audit, emails, inforce
from portal.services.actor import Actor
from portal.services.errors import NotFoundError, ServiceError
from portal.services.pagination import Keyset, KeysetPage, keyset_paginate

MAX_UPLOADS_LIMIT = 20
# A link's page counts a visit at most once in this time: reloading it writes nothing.
OPEN_RECOUNT = timedelta(minutes=30)


class LinkState(StrEnum):
    """Whether a link still works."""

    ACTIVE = "active"
    EXPIRED = "expired"
    REVOKED = "revoked"


def link_state(link: ShareLink, now: datetime) -> LinkState:
    """ACTIVE, or why not."""
    if link.revoked_at is not None:
        return LinkState.REVOKED
    if link.expires_at <= now:
        return LinkState.EXPIRED
    return LinkState.ACTIVE


def link_url(base_url: str, token: str) -> str:
    """The partner-facing address of a link."""
    return f"{base_url.rstrip('/')}/s/{token}"


def partner_actor(link: ShareLink, client_address: str | None, user_agent: str | None) -> Actor:
    """The audit actor for someone using LINK (we know the link, not the person)."""
    return Actor(f"partner via link {link.id}", None, client_address, (user_agent or "")[:400])


def create_link(
    session: Session,
    actor: Actor,
    signer: LinkSigner,
    partner: Partner,
    *,
    can_download: bool,
    can_upload: bool,
    lifetime: timedelta,
    max_uploads: int,
    now: datetime,
) -> tuple[ShareLink, str]:
    """Issue a link for PARTNER; returns it with its token (shown once, never stored)."""
    if not (can_download or can_upload):
        raise ServiceError("Choose at least one purpose: download or upload.", field="purposes")
    if not 0 <= max_uploads <= MAX_UPLOADS_LIMIT:
        raise ServiceError(
            f"Maximum uploads must be 0 to {MAX_UPLOADS_LIMIT}.", field="max_uploads"
        )
    if can_upload and max_uploads == 0:
        raise ServiceError("An upload link needs at least one upload.", field="max_uploads")
    link = ShareLink(
        id=new_link_id(),
        partner_id=partner.id,
        can_download=can_download,
        can_upload=can_upload,
        expires_at=now + lifetime,
        max_uploads=max_uploads if can_upload else 0,
        created_by_id=actor.user_id,
        created_at=now,
    )
    session.add(link)
    session.flush()
    purposes = ", ".join(p for p, on in (("download", can_download), ("upload", can_upload)) if on)
    audit.record(
        session,
        actor,
        "link.created",
        object_type="partner",
        object_id=partner.id,
        summary=f"Created link {link.id} ({purposes}) "
        f"expiring {link.expires_at:%Y-%m-%d %H:%M} UTC",
        details={"link_id": link.id, "purposes": purposes, "max_uploads": link.max_uploads},
    )
    return link, signer.sign(link.id)


def get_link(session: Session, link_id: str) -> ShareLink:
    """The link with LINK_ID, or NotFoundError."""
    link = session.get(ShareLink, link_id)
    if link is None:
        raise NotFoundError(f"No link {link_id[:40]}.")
    return link


def resolve(session: Session, signer: LinkSigner, token: str) -> ShareLink | None:
    """The link a genuine token names, or None (forged, mangled or unknown)."""
    link_id = signer.unsign(token)
    if link_id is None:
        return None
    return session.get(ShareLink, link_id)


@dataclass(frozen=True)
class PageLoad:
    """What the link page reads with its link: the latest window and acknowledgement."""

    link: ShareLink
    window: ChangeWindow | None
    acknowledgement: Acknowledgement | None


def resolve_for_page(session: Session, signer: LinkSigner, token: str) -> PageLoad | None:
    """resolve() for the page: link, partner, identity, window and acknowledgement in one query.

    The window is windows.latest_window's (newest not superseded), the acknowledgement
    acknowledgements.latest_acknowledgement's (newest), each a correlated subquery on an index.
    """
    link_id = signer.unsign(token)
    if link_id is None:
        return None
    row = session.execute(_page_query(), {"link_id": link_id}).one_or_none()
    if row is None:
        return None
    return PageLoad(link=row[0], window=row[1], acknowledgement=row[2])


@cache
def _page_query() -> Select[tuple[ShareLink, ChangeWindow, Acknowledgement]]:
    """resolve_for_page's statement, built once: building it costs more than running it."""
    latest_window = (
        select(ChangeWindow.id)
        .where(
            ChangeWindow.partner_id == ShareLink.partner_id,
            ChangeWindow.status != WindowStatus.SUPERSEDED.value,
        )
        .order_by(ChangeWindow.id.desc())
        .limit(1)
        .correlate(ShareLink)
        .scalar_subquery()
    )
    latest_acknowledgement = (
        select(Acknowledgement.id)
        .where(Acknowledgement.partner_id == ShareLink.partner_id)
        .order_by(Acknowledgement.id.desc())
        .limit(1)
        .correlate(ShareLink)
        .scalar_subquery()
    )
    return (
        select(ShareLink, ChangeWindow, Acknowledgement)
        .options(joinedload(ShareLink.partner, innerjoin=True).joinedload(Partner.identity))
        .outerjoin(ChangeWindow, ChangeWindow.id == latest_window)
        .outerjoin(Acknowledgement, Acknowledgement.id == latest_acknowledgement)
        .where(ShareLink.id == bindparam("link_id"))
    )


def links_of_partner(session: Session, partner: Partner) -> list[ShareLink]:
    """A partner's links, newest first."""
    return list(
        session.scalars(
            select(ShareLink)
            .where(ShareLink.partner_id == partner.id)
            .order_by(ShareLink.created_at.desc(), ShareLink.id)
        )
    )


# A partner's links newest first (ix_share_links_partner_created).
NEWEST_LINKS = Keyset((ShareLink.created_at, ShareLink.id), descending=True)


def browse_links(
    session: Session,
    partner: Partner,
    *,
    after: str | None = None,
    before: str | None = None,
    per_page: int,
) -> KeysetPage[ShareLink]:
    """One keyset page of a partner's links, newest first."""
    stmt = select(ShareLink).where(ShareLink.partner_id == partner.id)
    return keyset_paginate(
        session, stmt, NEWEST_LINKS, after=after, before=before, per_page=per_page
    )


def revoke(session: Session, actor: Actor, link: ShareLink, now: datetime) -> None:
    """Stop a link from working; refused when it already is revoked."""
    if link.revoked_at is not None:
        raise ServiceError(f"Link {link.id} is already revoked.")
    link.revoked_at = now
    audit.record(
        session,
        actor,
        "link.revoked",
        object_type="partner",
        object_id=link.partner_id,
        summary=f"Revoked link {link.id}",
        details={"link_id": link.id},
    )


def record_open(session: Session, actor: Actor, link: ShareLink, now: datetime) -> bool:
    """Count a visit at most once per OPEN_RECOUNT and audit only the first; True if written.

    A reload within OPEN_RECOUNT of the last counted visit sends no statement at all (the
    loaded last_opened_at says so). Otherwise one conditional UPDATE: of two first visits
    at once only one finds last_opened_at empty, so "Link ... opened" is audited once.
    """
    seen = link.last_opened_at
    if seen is not None and now - seen < OPEN_RECOUNT:
        return False
    due = (
        ShareLink.last_opened_at.is_(None)
        if seen is None
        else ShareLink.last_opened_at <= now - OPEN_RECOUNT
    )
    result = session.execute(
        update(ShareLink)
        .where(ShareLink.id == link.id, due)
        .values(opened_count=ShareLink.opened_count + 1, last_opened_at=now)
    )
    if getattr(result, "rowcount", 0) != 1:
        return False  # another request counted this visit
    if seen is not None:
        return True  # only the first open is audited
    audit.record(
        session,
        actor,
        "link.opened",
        object_type="partner",
        object_id=link.partner_id,
        summary=f"Link {link.id} opened",
        details={"link_id": link.id},
    )
    return True


def record_download(
    session: Session, actor: Actor, link: ShareLink, certificate: Certificate, fmt: str
) -> None:
    """Count and audit a certificate download through a link."""
    session.execute(
        update(ShareLink)
        .where(ShareLink.id == link.id)
        .values(download_count=ShareLink.download_count + 1)
    )
    audit.record(
        session,
        actor,
        "link.downloaded",
        object_type="partner",
        object_id=link.partner_id,
        summary=f"Downloaded our certificate {certificate.sha256[:16]}… as .{fmt} "
        f"via link {link.id}",
        details={"link_id": link.id, "certificate_id": certificate.id, "format": fmt},
    )


def consume_upload(session: Session, link: ShareLink, now: datetime) -> bool:
    """Take one upload from the link, atomically; False when none is left or it stopped working.

    One conditional UPDATE: concurrent uploads serialise on the row (PostgreSQL) or the
    database write lock (SQLite), so the count can never pass max_uploads.
    """
    result = session.execute(
        update(ShareLink)
        .where(
            ShareLink.id == link.id,
            ShareLink.can_upload.is_(True),
            ShareLink.revoked_at.is_(None),
            ShareLink.expires_at > now,
            ShareLink.uploads_used < ShareLink.max_uploads,
        )
        .values(uploads_used=ShareLink.uploads_used + 1)
        .execution_options(synchronize_session=False)
    )
    session.refresh(link)
    return bool(getattr(result, "rowcount", 0) == 1)


@dataclass(frozen=True)
class OurCertificate:
    """One of our certificates as a partner sees it."""

    certificate: Certificate
    badge: str  # "in force", "upcoming", "date to be agreed"


def certificates_for_partner(
    session: Session, partner: Partner, *, now: datetime, overlap: timedelta
) -> list[OurCertificate]:
    """Our identity's certificates the partner should install: in force, scheduled, pending."""
    ours = inforce.owner_certificates(session, inforce.Owner(identity_id=partner.identity_id))
    candidates = [c for c in ours if c.not_after > now]  # withdrawn ones the rule skips
    shown: dict[int, OurCertificate] = {}
    for state in in_force_by_usage(candidates, at=now, overlap=overlap).values():
        if state.active is not None:
            shown.setdefault(state.active.id, OurCertificate(state.active, "in force"))
        for certificate in state.scheduled:
            shown.setdefault(certificate.id, OurCertificate(certificate, "upcoming"))
        newest_active = state.active.created_at if state.active is not None else None
        for certificate in state.pending:
            if newest_active is None or certificate.created_at > newest_active:
                shown.setdefault(certificate.id, OurCertificate(certificate, "date to be agreed"))
    order = {"in force": 0, "upcoming": 1, "date to be agreed": 2}
    return sorted(shown.values(), key=lambda o: (order[o.badge], o.certificate.id))


def find_shown_certificate(
    session: Session, partner: Partner, sha256: str, *, now: datetime, overlap: timedelta
) -> Certificate | None:
    """The certificate with SHA256 if the partner's page offers it, else None."""
    for shown in certificates_for_partner(session, partner, now=now, overlap=overlap):
        if shown.certificate.sha256 == sha256.lower():
            return shown.certificate
    return None


def submissions_of_partner(session: Session, partner: Partner, limit: int = 20) -> list[Submission]:
    """The partner's latest submissions, newest first."""
    return list(
        session.scalars(
            select(Submission)
            .where(Submission.partner_id == partner.id)
            .order_by(Submission.id.desc())
            .limit(limit)
        )
    )


def email_link(session: Session, actor: Actor, link: ShareLink, *, sender_org: str) -> None:
    """Queue the link to the partner's contacts through the outbox."""
    partner = link.partner
    if not partner.contact_emails:
        raise ServiceError("This partner has no contact email.")
    # The URL goes where the template says {{ link_url }}, made from link_id at delivery;
    # names are only text.
    emails.queue(
        session, "share_link", recipients=partner.contact_emails, link_id=link.id,
        share_link=link, sender_org=sender_org, language=partner.language,
    )  # fmt: skip
    audit.record(
        session,
        actor,
        "link.emailed",
        object_type="partner",
        object_id=partner.id,
        summary=f"Queued link {link.id} by email to {', '.join(partner.contact_emails)}",
        details={"link_id": link.id},
    )
