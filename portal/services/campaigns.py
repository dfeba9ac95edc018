"""Identity rotation campaigns: reach every partner of an identity, then watch each one.

Starting one writes, in the caller's transaction: the campaign, for every partner of the
identity one share link, one change window proposed at the switch (its .ics is on the
link's page), one email to all its contacts (none, and marked unreachable, without
contacts), the audit trail, and the proposal of our certificate for that moment through
the four-eyes schedule. Rows are inserted in bulk: thousands of partners take seconds.

The board (portal.services.campaign_board) derives each partner's state from what is recorded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session, selectinload, undefer

from portal.domain.certs import normalise_fingerprint, sha256_hex, short_fingerprint
from portal.domain.tokens import new_link_id
from portal.domain.vocab import OutboxKind, WindowProposer, WindowStatus
from portal.models import (
    Campaign,
    CampaignPartner,
    Certificate,
    ChangeWindow,
    Identity,
    OutboxMessage,
    Partner,
    ShareLink,
)
from portal.services import audit, emails, invitations, links, outbox, schedule, unique, windows
from portal.services.actor import Actor
from portal.services.campaign_board import LINK_AFTER_SWITCH, board, not_included
from portal.services.errors import NotFoundError, ServiceError
from portal.services.pagination import Page, paginate

MAX_MESSAGE = 2000


@dataclass(frozen=True)
class StartRequest:
    """What staff ask for: rotate IDENTITY to the certificate SHA256 at ACTIVATE_AT."""

    identity: Identity
    sha256: str
    activate_at: datetime
    request_upload: bool = False
    message: str | None = None
    max_uploads: int = 3


def get_campaign(session: Session, campaign_id: int) -> Campaign:
    """The campaign with CAMPAIGN_ID, or NotFoundError."""
    campaign = session.get(Campaign, campaign_id)
    if campaign is None:
        raise NotFoundError(f"No campaign {campaign_id}.")
    return campaign


def list_campaigns(session: Session, *, page: int, per_page: int) -> Page[Campaign]:
    """Campaigns, newest first."""
    stmt = select(Campaign).order_by(Campaign.id.desc())
    return paginate(session, stmt, page=page, per_page=per_page)


def start(session: Session, actor: Actor, wanted: StartRequest, *, now: datetime) -> Campaign:
    """Start a campaign (see the module); refused, writing nothing, when it cannot be done."""
    identity = wanted.identity
    certificate = _certificate_of(session, identity, wanted.sha256)
    _check_time(certificate, wanted.activate_at, now)
    _refuse_second(session, certificate)
    partners = partners_of(session, identity)
    if not partners:
        raise ServiceError(
            f"Identity {identity.as2_id} has no partners to reach; add partners first.",
            field="identity",
        )
    message = (wanted.message or "").strip()[:MAX_MESSAGE] or None
    campaign = Campaign(
        identity_id=identity.id, certificate_id=certificate.id,
        activate_at=wanted.activate_at, request_upload=wanted.request_upload,
        message=message, created_by_id=actor.user_id, created_at=now,
    )  # fmt: skip
    unique.add_or_conflict(
        session, campaign, "A campaign for this certificate was started meanwhile.",
        field="certificate",
    )  # fmt: skip
    schedule.schedule_identity_certificate(
        session, actor, certificate, activate_at=wanted.activate_at, now=now
    )
    reach(session, actor, campaign, partners, max_uploads=wanted.max_uploads, now=now)
    audit.record(
        session, actor, "campaign.started", object_type="campaign", object_id=campaign.id,
        summary=f"Started campaign #{campaign.id}: {identity.as2_id} to certificate "
        f"{short_fingerprint(certificate.sha256)} at {wanted.activate_at:%Y-%m-%d %H:%M} UTC, "
        f"{len(partners)} partners",
        details={"certificate_id": certificate.id, "partners": len(partners),
                 "request_upload": wanted.request_upload},
    )  # fmt: skip
    return campaign


def partners_of(session: Session, identity: Identity) -> list[Partner]:
    """The partners trading with IDENTITY (same environment), with their contacts, by name."""
    return list(
        session.scalars(
            select(Partner)
            # The language picks each partner's email wording: loaded here, not per email.
            .options(selectinload(Partner.contacts), undefer(Partner.language))
            .where(Partner.identity_id == identity.id, Partner.environment == identity.environment)
            .order_by(Partner.name, Partner.id)
        )
    )


def _certificate_of(session: Session, identity: Identity, sha256: str) -> Certificate:
    try:
        wanted = sha256_hex(normalise_fingerprint(sha256))
    except ValueError:
        raise ServiceError(
            f"{sha256[:100]} is not a SHA-256 fingerprint.", field="certificate"
        ) from None
    certificate = session.scalar(
        select(Certificate).where(
            Certificate.identity_id == identity.id, Certificate.sha256 == wanted
        )
    )
    if certificate is None:
        raise ServiceError(
            f"Certificate {short_fingerprint(wanted)} is not a certificate of identity "
            f"{identity.as2_id}.",
            field="certificate",
        )
    if certificate.encrypted_private_key is None:
        raise ServiceError(
            f"Certificate {short_fingerprint(wanted)} has no private key here; import its key "
            "before rotating to it.",
            field="certificate",
        )
    if certificate.withdrawn_at is not None:
        raise ServiceError("This certificate was withdrawn.", field="certificate")
    return certificate


def _check_time(certificate: Certificate, activate_at: datetime, now: datetime) -> None:
    if activate_at <= now:
        raise ServiceError(
            "The switch time is in the past; partners need time to install the certificate.",
            field="activate_at",
        )
    schedule.check_activation_time(certificate.not_before, certificate.not_after, activate_at, now)
    windows.check_window_time(activate_at, now)  # within the change windows' horizon


def _refuse_second(session: Session, certificate: Certificate) -> None:
    first = session.scalar(select(Campaign.id).where(Campaign.certificate_id == certificate.id))
    if first is not None:
        raise ServiceError(
            f"Campaign #{first} already rotates to this certificate; follow it on its board.",
            field="certificate",
        )


def reach(
    session: Session,
    actor: Actor,
    campaign: Campaign,
    partners: Sequence[Partner],
    *,
    max_uploads: int,
    now: datetime,
) -> None:
    """For each partner: link, proposed window (rotations), email, campaign row and audit rows.

    Rows are inserted in bulk; a partner without contacts gets its link but no email and is
    marked unreachable.
    """
    expires_at = campaign.activate_at + LINK_AFTER_SWITCH
    asks = campaign.asks
    link_ids = {partner.id: new_link_id() for partner in partners}
    session.execute(
        insert(ShareLink),
        [
            {"id": link_ids[p.id], "partner_id": p.id, "can_download": asks.install,
             "can_upload": asks.upload, "expires_at": expires_at,
             "max_uploads": max_uploads if asks.upload else 0,
             "uploads_used": 0, "opened_count": 0, "download_count": 0,
             "created_by_id": actor.user_id, "created_at": now}
            for p in partners
        ],
    )  # fmt: skip
    window_ids = (
        _propose_windows(session, campaign, partners, link_ids) if campaign.is_rotation else {}
    )
    reachable = [p for p in partners if p.contact_emails]
    message_ids = _queue_emails(session, campaign, reachable, link_ids, expires_at, now=now)
    session.execute(
        insert(CampaignPartner),
        [
            {"campaign_id": campaign.id, "partner_id": p.id, "link_id": link_ids[p.id],
             "unreachable": p.id not in message_ids, "message_id": message_ids.get(p.id),
             "added_at": now}
            for p in partners
        ],
    )  # fmt: skip
    _audit_partners(session, actor, campaign, partners, link_ids, message_ids, window_ids)


def _propose_windows(
    session: Session, campaign: Campaign, partners: Sequence[Partner], link_ids: dict[int, str]
) -> dict[int, int]:
    """Our proposed change window at the switch, in place of each partner's open proposals."""
    ids = [p.id for p in partners]
    for start in range(0, len(ids), 500):
        session.execute(
            update(ChangeWindow)
            .where(
                ChangeWindow.partner_id.in_(ids[start : start + 500]),
                ChangeWindow.status == WindowStatus.PROPOSED.value,
            )
            .values(status=WindowStatus.SUPERSEDED.value)
            .execution_options(synchronize_session=False)
        )
    window_ids = session.scalars(
        insert(ChangeWindow).returning(ChangeWindow.id, sort_by_parameter_order=True),
        [
            {"partner_id": p.id, "link_id": link_ids[p.id], "starts_at": campaign.activate_at,
             "timezone": p.timezone, "proposed_by": WindowProposer.STAFF.value,
             "status": WindowStatus.PROPOSED.value}
            for p in partners
        ],
    ).all()  # fmt: skip
    return {p.id: window_id for p, window_id in zip(partners, window_ids, strict=True)}


def _queue_emails(
    session: Session,
    campaign: Campaign,
    partners: Sequence[Partner],
    link_ids: dict[int, str],
    expires_at: datetime,
    *,
    now: datetime,
    key: str = "start",
) -> dict[int, int]:
    """One email per partner to all its contacts; the partner id -> the outbox message id."""
    if not partners:
        return {}
    rows = [
        _email_row(campaign, p, link_ids[p.id], expires_at, f"campaign:{campaign.id}:{p.id}:{key}")
        for p in partners
    ]
    ids = session.scalars(
        insert(OutboxMessage).returning(OutboxMessage.id, sort_by_parameter_order=True), rows
    ).all()
    return {p.id: message_id for p, message_id in zip(partners, ids, strict=True)}


def _email_row(
    campaign: Campaign, partner: Partner, link_id: str, expires_at: datetime, dedupe_key: str
) -> dict[str, Any]:
    local = campaign.activate_at.astimezone(ZoneInfo(partner.timezone))
    email = emails.render(
        "campaign_started" if campaign.is_rotation else "campaign_request",
        identity=campaign.identity, certificate=campaign.certificate, partner=partner,
        request_upload=campaign.request_upload, message=campaign.message,
        expiring_before=campaign.expiring_before,
        local_time=f"{local:%Y-%m-%d %H:%M} {local.tzname()}",
        utc_time=f"{campaign.activate_at:%Y-%m-%d %H:%M}", expires_at=expires_at,
        activate_at=campaign.activate_at, language=partner.language,
    )  # fmt: skip
    # A rotation's switch as an .ics invitation, its UID the same in every email of the
    # campaign; a request for partners' certificates proposes no moment.
    invitations_ = (
        [invitations.campaign_invitation(campaign, partner, stamp=campaign.created_at)]
        if campaign.is_rotation
        else []
    )
    return {
        "kind": OutboxKind.EMAIL.value,
        "recipients": list(dict.fromkeys(partner.contact_emails)),
        "subject": " ".join(email.subject.split())[:300],
        "body": outbox.compose_body(email.body, link_id),
        "html_body": outbox.compose_body(email.html, link_id) if email.html is not None else None,
        "attachments": outbox.stored_attachments(invitations_),
        "link_id": link_id,
        "dedupe_key": dedupe_key,
        "attempts": 0,
    }


def _audit_partners(
    session: Session,
    actor: Actor,
    campaign: Campaign,
    partners: Sequence[Partner],
    link_ids: dict[int, str],
    message_ids: dict[int, int],
    window_ids: dict[int, int],
) -> None:
    """Per partner, the events creating a link, proposing a window and emailing would record."""
    asks = campaign.asks
    purposes = ", ".join(
        purpose
        for purpose, wanted in (("download", asks.install), ("upload", asks.upload))
        if wanted
    )
    who = {"actor_id": actor.user_id, "actor": actor.label, "object_type": "partner",
           "client_address": actor.client_address, "user_agent": actor.user_agent}  # fmt: skip
    rows: list[dict[str, Any]] = []
    for p in partners:
        link_id = link_ids[p.id]
        details = {"link_id": link_id, "campaign_id": campaign.id}
        rows.append({**who, "action": "link.created", "object_id": str(p.id),
                     "summary": f"Campaign #{campaign.id}: created link {link_id} ({purposes})",
                     "details": {**details, "purposes": purposes}})  # fmt: skip
        if p.id in window_ids:
            rows.append({**who, "action": "window.proposed", "object_id": str(p.id),
                         "summary": f"Campaign #{campaign.id}: proposed the change window "
                         f"{campaign.activate_at:%Y-%m-%d %H:%M} UTC ({p.timezone})",
                         "details": {**details, "window_id": window_ids[p.id]}})  # fmt: skip
        if p.id in message_ids:
            summary = f"Campaign #{campaign.id}: queued link {link_id} by email to " + ", ".join(
                p.contact_emails
            )
            rows.append({**who, "action": "link.emailed", "object_id": str(p.id),
                         "summary": summary, "details": details})  # fmt: skip
        else:
            rows.append({**who, "action": "campaign.unreachable", "object_id": str(p.id),
                         "summary": f"Campaign #{campaign.id}: no contact email, so link "
                         f"{link_id} was not emailed", "details": details})  # fmt: skip
    audit.chain_rows(session, rows)


# Per-partner actions -----------------------------------------------------------------------


def member(session: Session, campaign: Campaign, partner_id: int) -> CampaignPartner:
    """The campaign's row for the partner, or NotFoundError."""
    found = session.scalar(
        select(CampaignPartner).where(
            CampaignPartner.campaign_id == campaign.id, CampaignPartner.partner_id == partner_id
        )
    )
    if found is None:
        raise NotFoundError("That partner is not in this campaign.")
    return found


def resend(
    session: Session, actor: Actor, campaign: Campaign, partner_id: int, *, now: datetime
) -> OutboxMessage:
    """Queue the campaign's email to the partner again (a new message, audited)."""
    row = member(session, campaign, partner_id)
    link = row.link
    if link is None or links.link_state(link, now) is not links.LinkState.ACTIVE:
        raise ServiceError("This partner's campaign link no longer works; nothing was sent.")
    partner = row.partner
    if not partner.contact_emails:
        raise ServiceError(f"{partner.name} has no contact email; add one to the partner first.")
    ids = _queue_emails(
        session, campaign, [partner], {partner.id: link.id}, link.expires_at, now=now,
        key=f"resend:{now.isoformat()}",
    )  # fmt: skip
    row.message_id = ids[partner.id]
    row.unreachable = False
    audit.record(
        session, actor, "link.emailed", object_type="partner", object_id=partner.id,
        summary=f"Campaign #{campaign.id}: sent link {link.id} again by email to "
        + ", ".join(partner.contact_emails),
        details={"link_id": link.id, "campaign_id": campaign.id, "resend": True},
    )  # fmt: skip
    message = session.get(OutboxMessage, ids[partner.id])
    assert message is not None  # noqa: S101  (just inserted)
    return message


def revoke(
    session: Session, actor: Actor, campaign: Campaign, partner_id: int, *, now: datetime
) -> ShareLink:
    """Revoke the partner's campaign link (audited as any revoked link)."""
    link = member(session, campaign, partner_id).link
    if link is None:
        raise ServiceError("This partner's campaign link no longer exists.")
    links.revoke(session, actor, link, now)
    return link


def include(
    session: Session,
    actor: Actor,
    campaign: Campaign,
    partner_id: int,
    *,
    max_uploads: int,
    now: datetime,
) -> CampaignPartner:
    """Bring a partner added since a rotation started into it: its link, window and email."""
    partner = session.get(Partner, partner_id, options=[selectinload(Partner.contacts)])
    if partner is None or partner.id not in {p.id for p in not_included(session, campaign)}:
        raise NotFoundError("That partner is not one the campaign could include.")
    if campaign.activate_at <= now:
        raise ServiceError(
            "The switch has passed; give this partner a link from its own page instead."
        )
    reach(session, actor, campaign, [partner], max_uploads=max_uploads, now=now)
    audit.record(
        session, actor, "campaign.included", object_type="campaign", object_id=campaign.id,
        summary=f"Included {partner.name} ({partner.as2_id}) in campaign #{campaign.id}",
        details={"partner_id": partner.id},
    )  # fmt: skip
    return member(session, campaign, partner.id)


@dataclass(frozen=True)
class Resent:
    """What resending to every partner at risk did."""

    sent: int  # emails queued again
    skipped: list[str]  # partners at risk left out, and why


def resend_at_risk(
    session: Session, actor: Actor, campaign: Campaign, *, now: datetime, risk_window: timedelta
) -> Resent:
    """Queue the email again to every partner at risk whose link works and who has contacts."""
    rows = board(session, campaign, now=now, risk_window=risk_window).rows
    skipped = [f"{r.name}: unreachable" for r in rows if r.at_risk and r.unreachable]
    skipped += [f"{r.name}: link revoked" for r in rows if r.at_risk and r.link_revoked]
    wanted = {r.partner_id for r in rows if r.at_risk and not r.unreachable and not r.link_revoked}
    members_ = list(
        session.scalars(
            select(CampaignPartner)
            .options(selectinload(CampaignPartner.partner).selectinload(Partner.contacts))
            .options(selectinload(CampaignPartner.link))
            .where(CampaignPartner.campaign_id == campaign.id)
        )
    )
    chosen = [
        m for m in members_
        if m.partner_id in wanted and m.link is not None
        and links.link_state(m.link, now) is links.LinkState.ACTIVE
    ]  # fmt: skip
    if not chosen:
        return Resent(sent=0, skipped=skipped)
    link_ids = {m.partner_id: m.link_id or "" for m in chosen}
    expires = max(m.link.expires_at for m in chosen if m.link is not None)
    ids = _queue_emails(
        session, campaign, [m.partner for m in chosen], link_ids, expires, now=now,
        key=f"at-risk:{now.isoformat()}",
    )  # fmt: skip
    for m in chosen:
        m.message_id = ids[m.partner_id]
    audit.chain_rows(
        session,
        [
            {"actor_id": actor.user_id, "actor": actor.label, "action": "link.emailed",
             "object_type": "partner", "object_id": str(m.partner_id),
             "summary": f"Campaign #{campaign.id}: sent link {m.link_id} again (at risk) to "
             + ", ".join(m.partner.contact_emails),
             "details": {"link_id": m.link_id, "campaign_id": campaign.id, "resend": True},
             "client_address": actor.client_address, "user_agent": actor.user_agent}
            for m in chosen
        ],
    )  # fmt: skip
    audit.record(
        session, actor, "campaign.resent_at_risk", object_type="campaign", object_id=campaign.id,
        summary=f"Sent campaign #{campaign.id}'s email again to {len(chosen)} partners at risk",
        details={"partners": len(chosen), "skipped": len(skipped)},
    )  # fmt: skip
    return Resent(sent=len(chosen), skipped=skipped)


@dataclass(frozen=True)
class Revoked:
    """What revoking the links of every partner at risk did."""

    revoked: list[str]  # the links revoked
    skipped: int  # partners at risk whose link was already revoked, expired or used up


def revoke_at_risk(
    session: Session, actor: Actor, campaign: Campaign, *, now: datetime, risk_window: timedelta
) -> Revoked:
    """Revoke the working campaign link of every partner at risk (each audited, and a summary).

    For when the partners at risk are to be handled another way (a call, a new link made by
    hand); their board rows stay, marked revoked.
    """
    rows = board(session, campaign, now=now, risk_window=risk_window).rows
    at_risk = {r.partner_id for r in rows if r.at_risk}
    found = session.scalars(
        select(CampaignPartner)
        .options(selectinload(CampaignPartner.link))
        .where(CampaignPartner.campaign_id == campaign.id)
        .order_by(CampaignPartner.id)
    )
    working = [
        m.link for m in found
        if m.partner_id in at_risk and m.link is not None
        and links.link_state(m.link, now) is links.LinkState.ACTIVE
    ]  # fmt: skip
    for link in working:
        links.revoke(session, actor, link, now)
    audit.record(
        session, actor, "campaign.revoked_at_risk", object_type="campaign", object_id=campaign.id,
        summary=f"Revoked the links of {len(working)} partners at risk in campaign #{campaign.id}",
        details={"links": [link.id for link in working], "skipped": len(at_risk) - len(working)},
    )  # fmt: skip
    return Revoked(revoked=[link.id for link in working], skipped=len(at_risk) - len(working))
