"""Partner-certificate campaigns: ask many partners of an identity for new certificates at once.

Typically every partner whose certificate in force expires before a date, with nothing
scheduled to replace it (portal.domain.campaigns.why_ask decides, over the in-force rule).
Starting one writes, in the caller's transaction: the campaign, for every partner chosen an
upload-only link and one email to all its contacts (none, and marked unreachable, without
contacts), and the audit trail. Partners already asked by another such campaign still open
are left out and named, so nobody gets two requests; the board, reminders, resend and
revoke work as for a rotation (portal.services.campaigns, campaign_board).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.domain import campaigns as rules
from portal.domain.reports import CertRow
from portal.domain.vocab import CampaignKind
from portal.models import Campaign, CampaignPartner, Certificate, Identity, Partner
from portal.services import audit, windows
from portal.services.actor import Actor
from portal.services.campaigns import MAX_MESSAGE, partners_of, reach
from portal.services.errors import ServiceError

# A partner needs time to get a certificate from its CA and install it.
MIN_NOTICE = timedelta(days=1)


@dataclass(frozen=True)
class CertificateRequest:
    """What staff ask: IDENTITY's partners, new certificates in force by DUE_AT.

    EXPIRING_BEFORE chooses the partners (see the module); None asks every partner.
    """

    identity: Identity
    due_at: datetime
    expiring_before: datetime | None = None
    message: str | None = None
    max_uploads: int = 3


@dataclass(frozen=True)
class Chosen:
    """The partners a request reaches, and those it leaves out with the reason."""

    partners: list[Partner]
    reasons: dict[int, str]  # partner id -> why it is asked
    left_out: list[str]  # "Name (AS2 ID): already asked in campaign #4"


@dataclass(frozen=True)
class Started:
    """A partner-certificate campaign just started, and who was left out."""

    campaign: Campaign
    partners: int
    left_out: list[str]


def request_certificates(
    session: Session, actor: Actor, wanted: CertificateRequest, *, now: datetime, overlap: timedelta
) -> Started:
    """Start a partner-certificate campaign; refused, writing nothing, when it cannot be done."""
    _check_times(wanted, now)
    chosen = choose(session, wanted, now=now, overlap=overlap)
    if not chosen.partners:
        raise ServiceError(_nobody(wanted, chosen), field="expiring_before")
    campaign = Campaign(
        kind=CampaignKind.PARTNER_CERTIFICATES.value, identity_id=wanted.identity.id,
        certificate_id=None, activate_at=wanted.due_at, request_upload=True,
        expiring_before=wanted.expiring_before,
        message=(wanted.message or "").strip()[:MAX_MESSAGE] or None,
        created_by_id=actor.user_id, created_at=now,
    )  # fmt: skip
    session.add(campaign)
    session.flush()
    reach(session, actor, campaign, chosen.partners, max_uploads=wanted.max_uploads, now=now)
    audit.record(
        session, actor, "campaign.started", object_type="campaign", object_id=campaign.id,
        summary=f"Started campaign #{campaign.id}: asked {len(chosen.partners)} partners of "
        f"{wanted.identity.as2_id} for new certificates in force by "
        f"{wanted.due_at:%Y-%m-%d %H:%M} UTC" + _selection(wanted),
        details={"kind": campaign.kind, "partners": len(chosen.partners),
                 "left_out": len(chosen.left_out),
                 "expiring_before": _iso(wanted.expiring_before)},
    )  # fmt: skip
    return Started(campaign=campaign, partners=len(chosen.partners), left_out=chosen.left_out)


def choose(
    session: Session, wanted: CertificateRequest, *, now: datetime, overlap: timedelta
) -> Chosen:
    """The partners of the identity the request reaches (by name), and those left out."""
    partners = partners_of(session, wanted.identity)
    owned = _certificates_by_partner(session, [p.id for p in partners])
    busy = _open_requests(session, wanted.identity, now)
    chosen: list[Partner] = []
    reasons: dict[int, str] = {}
    left_out: list[str] = []
    for partner in partners:
        why = rules.why_ask(
            owned.get(partner.id, []), before=wanted.expiring_before, now=now, overlap=overlap
        )
        if why is None:
            continue
        if partner.id in busy:
            left_out.append(
                f"{partner.name} ({partner.as2_id}): already asked in campaign #{busy[partner.id]}"
            )
            continue
        chosen.append(partner)
        reasons[partner.id] = why
    return Chosen(partners=chosen, reasons=reasons, left_out=left_out)


def _check_times(wanted: CertificateRequest, now: datetime) -> None:
    if wanted.due_at <= now + MIN_NOTICE:
        raise ServiceError(
            "Give partners at least a day: the date their new certificate should be in force "
            "must be later than tomorrow at this time.",
            field="date",
        )
    windows.check_window_time(wanted.due_at, now)  # within the change windows' horizon
    if wanted.expiring_before is not None and wanted.expiring_before <= now:
        raise ServiceError(
            "The expiry limit is in the past; every certificate in force expires after it.",
            field="expiring_before",
        )


def _certificates_by_partner(session: Session, partner_ids: list[int]) -> dict[int, list[CertRow]]:
    """Light rows of the partners' certificates (no DER), in the order they were stored."""
    found: dict[int, list[CertRow]] = {}
    for start in range(0, len(partner_ids), 500):
        rows = session.execute(
            select(Certificate.id, Certificate.partner_id, Certificate.usage,
                   Certificate.not_after, Certificate.activate_at, Certificate.withdrawn_at,
                   Certificate.approved_at)
            .where(Certificate.partner_id.in_(partner_ids[start : start + 500]),
                   Certificate.withdrawn_at.is_(None))
            .order_by(Certificate.id)
        )  # fmt: skip
        for row in rows:
            light = CertRow(
                id=row.id, owner=f"partner:{row.partner_id}", owner_name="", usage=row.usage,
                not_after=row.not_after, activate_at=row.activate_at,
                withdrawn_at=row.withdrawn_at, approved_at=row.approved_at,
            )  # fmt: skip
            found.setdefault(row.partner_id, []).append(light)
    return found


def _open_requests(session: Session, identity: Identity, now: datetime) -> dict[int, int]:
    """Partner id -> the open partner-certificate campaign (due later than NOW) that asked it."""
    rows = session.execute(
        select(CampaignPartner.partner_id, Campaign.id)
        .join(Campaign, Campaign.id == CampaignPartner.campaign_id)
        .where(
            Campaign.identity_id == identity.id,
            Campaign.kind == CampaignKind.PARTNER_CERTIFICATES.value,
            Campaign.activate_at > now,
        )
        .order_by(Campaign.id)
    )
    return {partner_id: campaign_id for partner_id, campaign_id in rows}


def _nobody(wanted: CertificateRequest, chosen: Chosen) -> str:
    identity = wanted.identity.as2_id
    if chosen.left_out:
        return (
            f"Every partner of {identity} this would ask was already asked by an open campaign: "
            + "; ".join(chosen.left_out[:5])
            + ("; …" if len(chosen.left_out) > 5 else "")
        )
    if wanted.expiring_before is None:
        return f"Identity {identity} has no partners to ask; add partners first."
    return (
        f"No partner of {identity} needs a new certificate: each one's certificates in force "
        f"expire on or after {wanted.expiring_before:%Y-%m-%d}, or a replacement is scheduled."
    )


def _selection(wanted: CertificateRequest) -> str:
    if wanted.expiring_before is None:
        return " (every partner)"
    return f" (certificates expiring before {wanted.expiring_before:%Y-%m-%d})"


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
