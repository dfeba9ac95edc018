"""Reminders: campaign partners who have not acted, and the staff's daily expiry digest.

Both are side effects of time passing (portal.services.runner plans and performs them):

- `reminder:<campaign_partner_id>:<offset>`: the email to a campaign partner OFFSET days
  before the switch, while they still have something to do (acknowledge, or upload when
  asked). An offset that had passed when the partner was reached is skipped, and of the
  offsets due together only the latest is sent; skipped ones are planned already done
  (done_by "skipped"), so they are never sent later. Whether to send is decided again
  when performing: not after the partner acted, not with a revoked or expired link, not
  without contacts, not once the next offset (or T) has come.
- `digest:<YYYY-MM-DD>`: one email a day (UTC) to enabled admins, operators and approvers
  listing certificates in force expiring within 90/30/14/7/1 days with no replacement
  scheduled (the dashboard's rule). Planned only when there is something to list.

Every function here only flushes; portal.jobs owns the commits.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple
from zoneinfo import ZoneInfo

from sqlalchemy import and_, exists, or_, select
from sqlalchemy.orm import Session

from portal.domain import campaigns as rules
from portal.domain.reports import DIGEST_BUCKETS, Expiring
from portal.domain.roles import Role
from portal.domain.vocab import CampaignKind, SubmissionStatus, WindowStatus
from portal.models import (
    Acknowledgement,
    Campaign,
    CampaignPartner,
    Partner,
    PartnerContact,
    ShareLink,
    SideEffect,
    Submission,
    User,
)
from portal.services import (
    audit,
    campaign_board,
    dashboard,
    drafts,
    emails,
    invitations,
    links,
    outbox,
    windows,
)
from portal.services.actor import Actor

REMINDER = "campaign.reminder"
DIGEST = "expiry.digest"
SKIPPED = "skipped"  # done_by of a reminder planned already done, never sent
DEFAULT_OFFSETS = (14, 3, 1)
DIGEST_ROLES = (Role.ADMIN.value, Role.OPERATOR.value, Role.APPROVER.value)
SCHEDULER = Actor("scheduler")


@dataclass(frozen=True)
class Policy:
    """What the runner reminds of: its settings, as plain values."""

    offsets: tuple[int, ...] = DEFAULT_OFFSETS  # days before a campaign's switch
    digest: bool = True  # the staff's daily expiry digest
    overlap: timedelta = timedelta(days=7)  # PORTAL_CERTIFICATE_OVERLAP_DAYS (what is in force)
    # PORTAL_DRAFT_REQUESTS_AUTO_SEND: send 60-day upload requests (None: staff do, by hand)
    draft_requests: drafts.AutoSend | None = None


DEFAULT_POLICY = Policy()


class Planned(NamedTuple):
    """A side effect to insert under KEY; DONE: planned already done (a skipped reminder)."""

    key: str
    kind: str
    due_at: datetime
    payload: dict[str, Any]
    done: bool = False


# Partner reminders ---------------------------------------------------------------------------


def plan_reminders(session: Session, *, now: datetime, offsets: Sequence[int]) -> list[Planned]:
    """The reminders due at NOW whose keys do not exist yet (sent, or skipped as done)."""
    if not offsets:
        return []
    wanted = tuple(sorted({int(o) for o in offsets}, reverse=True))
    acknowledged = exists().where(
        Acknowledgement.partner_id == CampaignPartner.partner_id,
        Acknowledgement.created_at >= Campaign.created_at,
    )
    uploaded = exists().where(
        Submission.link_id == CampaignPartner.link_id,
        Submission.status != SubmissionStatus.REJECTED.value,
    )
    candidates = session.execute(
        select(CampaignPartner.id, CampaignPartner.added_at, Campaign.activate_at)
        .join(Campaign, Campaign.id == CampaignPartner.campaign_id)
        .join(ShareLink, ShareLink.id == CampaignPartner.link_id)
        .where(
            Campaign.activate_at > now,
            Campaign.activate_at <= now + timedelta(days=wanted[0]),
            ShareLink.revoked_at.is_(None),
            ShareLink.expires_at > now,
            exists().where(PartnerContact.partner_id == CampaignPartner.partner_id),
            or_(
                and_(Campaign.kind == CampaignKind.ROTATION.value, ~acknowledged),
                and_(Campaign.request_upload, ~uploaded),
            ),
        )
        .order_by(CampaignPartner.id)
    ).all()
    planned: list[Planned] = []
    for member_id, added_at, activate_at in candidates:
        step = rules.reminder_step(wanted, activate_at=activate_at, added_at=added_at, now=now)
        for offset in step.skip:
            payload = {"campaign_partner_id": member_id, "offset": offset}
            planned.append(Planned(_key(member_id, offset), REMINDER, now, payload, done=True))
        if step.send is not None and step.until is not None:
            payload = {"campaign_partner_id": member_id, "offset": step.send,
                       "until": step.until.isoformat()}  # fmt: skip
            planned.append(Planned(_key(member_id, step.send), REMINDER, now, payload))
    existing = _existing_keys(session, [p.key for p in planned])
    return [p for p in planned if p.key not in existing]


def _key(member_id: int, offset: int) -> str:
    return f"reminder:{member_id}:{offset}"


def _existing_keys(session: Session, keys: list[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(keys), 500):
        found.update(
            session.scalars(
                select(SideEffect.key).where(SideEffect.key.in_(keys[start : start + 500]))
            )
        )
    return found


def remind(session: Session, effect: SideEffect, now: datetime) -> None:
    """Email the partner its campaign link again, unless that no longer makes sense."""
    member = session.get(CampaignPartner, effect.payload["campaign_partner_id"])
    if member is None:
        return  # the campaign or partner was deleted
    campaign = session.get(Campaign, member.campaign_id)
    assert campaign is not None  # noqa: S101  (foreign key)
    offset = int(effect.payload["offset"])
    until = campaign.activate_at
    if effect.payload.get("until"):  # a skipped offset has none: it is never sent
        until = min(until, datetime.fromisoformat(effect.payload["until"]))
    if "until" not in effect.payload or now >= until:
        return  # the next reminder (or the switch) has come: this one is stale
    facts = campaign_board.member_facts(session, campaign, member)
    if not rules.needs_reminder(facts, asks=campaign.asks):
        return  # they acted since it was planned
    partner = member.partner
    link = member.link
    why_not = _why_not_remind(member, now)
    if why_not is not None or link is None:
        audit.record(
            session, SCHEDULER, "campaign.reminder_unsent", object_type="partner",
            object_id=partner.id,
            summary=f"Campaign #{campaign.id}: no reminder {offset} days before the switch: "
            f"{why_not}",
            details={"campaign_id": campaign.id, "offset": offset, "side_effect": effect.key},
        )  # fmt: skip
        return
    local = campaign.activate_at.astimezone(ZoneInfo(partner.timezone))
    emails.queue(
        session, "campaign_reminder" if campaign.is_rotation else "campaign_request_reminder",
        recipients=list(dict.fromkeys(partner.contact_emails)),
        dedupe_key=effect.key, link_id=link.id,
        # A rotation's switch is a moment in the partner's calendar; a request has no window.
        attachments=[_ics(session, campaign, partner, now)] if campaign.is_rotation else [],
        identity=campaign.identity, certificate=campaign.certificate, partner=partner,
        days=offset, awaiting_ack=campaign.asks.install and facts.acknowledged_at is None,
        awaiting_upload=campaign.asks.upload
        and facts.submission_status in (None, SubmissionStatus.REJECTED.value),
        local_time=f"{local:%Y-%m-%d %H:%M} {local.tzname()}",
        utc_time=f"{campaign.activate_at:%Y-%m-%d %H:%M}", expires_at=link.expires_at,
        activate_at=campaign.activate_at, language=partner.language,
    )  # fmt: skip
    audit.record(
        session, SCHEDULER, "campaign.reminded", object_type="partner", object_id=partner.id,
        summary=f"Campaign #{campaign.id}: reminded {offset} days before the switch, by email "
        "to " + ", ".join(partner.contact_emails),
        details={"campaign_id": campaign.id, "link_id": link.id, "offset": offset,
                 "side_effect": effect.key},
    )  # fmt: skip


def _why_not_remind(member: CampaignPartner, now: datetime) -> str | None:
    """Why a reminder due to MEMBER cannot go, or None when it can."""
    link = member.link
    if link is None or links.link_state(link, now) is not links.LinkState.ACTIVE:
        return "its campaign link no longer works"
    if not member.partner.contact_emails:
        return "it has no contact email"
    return None


def _ics(
    session: Session, campaign: Campaign, partner: Partner, now: datetime
) -> outbox.Attachment:
    """The campaign's .ics for PARTNER: confirmed once the partner accepted the window at T."""
    window = windows.latest_window(session, partner)
    agreed = window is not None and window.starts_at == campaign.activate_at
    status = window.status if window is not None and agreed else WindowStatus.PROPOSED.value
    return invitations.campaign_invitation(campaign, partner, stamp=now, status=status)


# The staff's daily digest --------------------------------------------------------------------


def plan_digest(session: Session, *, now: datetime, overlap: timedelta) -> list[Planned]:
    """Today's digest (UTC), if not planned yet, there is something to list and someone to tell."""
    key = f"digest:{now:%Y-%m-%d}"
    if session.scalar(select(SideEffect.id).where(SideEffect.key == key)) is not None:
        return []
    if not _staff(session) or not unreplaced(session, now=now, overlap=overlap):
        return []
    payload = {"day": f"{now:%Y-%m-%d}", "overlap_seconds": int(overlap.total_seconds())}
    return [Planned(key, DIGEST, now, payload)]


def unreplaced(session: Session, *, now: datetime, overlap: timedelta) -> list[Expiring]:
    """Certificates in force expiring within 90/30/14/7/1 days with no replacement scheduled."""
    found = dashboard.expiring(session, now=now, overlap=overlap, buckets=DIGEST_BUCKETS)
    return [e for e in found if e.replacement is None]


def send_digest(session: Session, effect: SideEffect, now: datetime) -> None:
    """Email the digest to the staff, listing what is expiring now (nothing to list: no email)."""
    overlap = timedelta(seconds=int(effect.payload["overlap_seconds"]))
    found = unreplaced(session, now=now, overlap=overlap)
    staff = _staff(session)
    if not found or not staff:
        return
    emails.queue(
        session, "expiry_digest", recipients=staff, dedupe_key=effect.key,
        day=effect.payload["day"], count=len({e.certificate.id for e in found}),
        buckets=digest_buckets(found),
    )  # fmt: skip
    audit.record(
        session, SCHEDULER, "digest.sent", object_type="digest", object_id=effect.payload["day"],
        summary=f"Sent the expiry digest of {effect.payload['day']} to {len(staff)} staff: "
        f"{len({e.certificate.id for e in found})} certificates expiring with no replacement "
        "scheduled",
        details={"certificates": [e.certificate.id for e in found], "side_effect": effect.key},
    )  # fmt: skip


@dataclass(frozen=True)
class DigestLine:
    """One certificate in the digest, with every usage it is in force for."""

    owner_name: str
    usages: str
    not_after: datetime
    days_left: int


def digest_buckets(found: Sequence[Expiring]) -> list[tuple[int, list[DigestLine]]]:
    """FOUND grouped by bucket (fewest days first), one line per certificate; no empty bucket."""
    grouped: list[tuple[int, list[DigestLine]]] = []
    for days in DIGEST_BUCKETS:
        lines: dict[int, DigestLine] = {}
        for e in (e for e in found if e.bucket == days):
            seen = lines.get(e.certificate.id)
            usages = f"{seen.usages}, {e.usage}" if seen else e.usage
            lines[e.certificate.id] = DigestLine(
                e.certificate.owner_name, usages, e.certificate.not_after, e.days_left
            )
        if lines:
            grouped.append((days, list(lines.values())))
    return grouped


def _staff(session: Session) -> list[str]:
    """The addresses of enabled admins, operators and approvers."""
    return list(
        session.scalars(
            select(User.email)
            .where(User.is_enabled.is_(True), User.role.in_(DIGEST_ROLES))
            .order_by(User.email)
        )
    )
