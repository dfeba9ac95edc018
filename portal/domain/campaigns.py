"""Campaigns: where a partner stands, derived from facts recorded elsewhere.

Nothing here is stored: the link's counters, the partner's acknowledgements and the
submissions made through the campaign's link are the facts; this module orders them.
What a campaign asks (Asks) decides which steps count: a rotation asks partners to
install our certificate (and, optionally, to send theirs); a partner-certificate campaign
asks only for their new certificate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from portal.domain.inforce import in_force_by_usage
from portal.domain.reports import CertRow
from portal.domain.vocab import CampaignKind


class PartnerState(StrEnum):
    """How far a partner has come in a campaign, in the order the steps are usually taken."""

    SENT = "sent"  # link issued and the email queued (or the partner is unreachable)
    OPENED = "opened"
    DOWNLOADED = "downloaded"
    ACKNOWLEDGED = "acknowledged"  # they said they installed our certificate
    UPLOADED = "uploaded"  # their new certificate came through the campaign's link
    APPROVED = "approved"
    IN_FORCE = "in force"

    @property
    def label(self) -> str:
        """The state as a heading shows it."""
        return self.value.capitalize()


# The states of a campaign that asks for nothing back.
DOWNLOAD_STATES: tuple[PartnerState, ...] = (
    PartnerState.SENT,
    PartnerState.OPENED,
    PartnerState.DOWNLOADED,
    PartnerState.ACKNOWLEDGED,
)
UPLOAD_STATES: tuple[PartnerState, ...] = (
    PartnerState.UPLOADED,
    PartnerState.APPROVED,
    PartnerState.IN_FORCE,
)


@dataclass(frozen=True)
class Asks:
    """What a campaign asks of each partner."""

    install: bool  # install our new certificate and say so
    upload: bool  # send us their new certificate


def asks_of(kind: str, request_upload: bool) -> Asks:
    """What a campaign of KIND asks (a partner-certificate campaign always asks an upload)."""
    if kind == CampaignKind.PARTNER_CERTIFICATES:
        return Asks(install=False, upload=True)
    return Asks(install=True, upload=request_upload)


def states_of(asks: Asks) -> tuple[PartnerState, ...]:
    """The states a campaign's board counts."""
    first = DOWNLOAD_STATES if asks.install else (PartnerState.SENT, PartnerState.OPENED)
    return first + (UPLOAD_STATES if asks.upload else ())


@dataclass(frozen=True)
class Facts:
    """What is recorded about one partner of a campaign."""

    opened: int  # the link's opened count
    downloaded: int  # the link's download count
    acknowledged_at: datetime | None  # their newest acknowledgement since the campaign began
    submission_status: str | None  # their newest submission through the campaign's link
    certificate_activate_at: datetime | None  # of the certificate that submission became


def partner_state(facts: Facts, *, asks: Asks, now: datetime) -> PartnerState:
    """The furthest step the facts show (a partner may upload before acknowledging).

    A rejected submission does not count: the partner still has to send a good one.
    """
    if asks.upload and _uploaded(facts):
        active = facts.certificate_activate_at
        if facts.submission_status == "approved" and active is not None and active <= now:
            return PartnerState.IN_FORCE
        if facts.submission_status == "approved":
            return PartnerState.APPROVED
        return PartnerState.UPLOADED
    if asks.install and facts.acknowledged_at is not None:
        return PartnerState.ACKNOWLEDGED
    if asks.install and facts.downloaded > 0:
        return PartnerState.DOWNLOADED
    if facts.opened > 0:
        return PartnerState.OPENED
    return PartnerState.SENT


def _uploaded(facts: Facts) -> bool:
    return facts.submission_status not in (None, "rejected")


def at_risk(
    facts: Facts, *, asks: Asks, activate_at: datetime, risk_window: timedelta, now: datetime
) -> bool:
    """T is at most RISK_WINDOW away (or past) and the partner has not done the main thing.

    The main thing is acknowledging our certificate in a rotation (their upload there is a
    bonus) and sending their certificate in a partner-certificate campaign.
    """
    if now < activate_at - risk_window:
        return False
    if asks.install:
        return facts.acknowledged_at is None
    return not _uploaded(facts)


def needs_reminder(facts: Facts, *, asks: Asks) -> bool:
    """Whether the partner still has something to do: acknowledge, or upload when asked."""
    if asks.install and facts.acknowledged_at is None:
        return True
    return asks.upload and not _uploaded(facts)


@dataclass(frozen=True)
class ReminderStep:
    """What is due for one partner at one moment: the reminder to send and those to skip."""

    send: int | None  # the offset (days before T) whose reminder to send now, if any
    skip: tuple[int, ...]  # offsets due but passed over (before the partner was reached, or
    # superseded by a later one): marked done without sending
    until: datetime | None  # after this moment SEND no longer makes sense (the next offset, or T)


def reminder_step(
    offsets: tuple[int, ...], *, activate_at: datetime, added_at: datetime, now: datetime
) -> ReminderStep:
    """The reminders due at NOW for a partner reached at ADDED_AT, switching at ACTIVATE_AT.

    An offset is due once T minus it has come, and never at or after T. One whose moment
    had passed when the partner was reached is skipped (they just got the campaign's
    email), and of the others only the latest (the fewest days before T) is sent: a runner
    that was down does not send three reminders at once.
    """
    if now >= activate_at:
        return ReminderStep(send=None, skip=(), until=None)
    ordered = sorted(set(offsets), reverse=True)  # 14, 3, 1
    due = [o for o in ordered if activate_at - timedelta(days=o) <= now]
    fresh = [o for o in due if activate_at - timedelta(days=o) > added_at]
    send = fresh[-1] if fresh else None
    skip = tuple(o for o in due if o != send)
    if send is None:
        return ReminderStep(send=None, skip=skip, until=None)
    later = [o for o in ordered if o < send]
    until = activate_at - timedelta(days=later[0]) if later else activate_at
    return ReminderStep(send=send, skip=skip, until=until)


def reminder_offsets(value: Any) -> tuple[int, ...]:
    """PORTAL_REMINDER_OFFSETS_DAYS as days, most first: "14,3,1", 14 or [14, 3]; ValueError."""
    if value is None or isinstance(value, bool):
        raise ValueError(value)
    items = value if isinstance(value, list | tuple) else str(value).replace(",", " ").split()
    days = set()
    for item in items:
        if isinstance(item, bool) or not 1 <= int(item) <= 365:
            raise ValueError(item)
        days.add(int(item))
    return tuple(sorted(days, reverse=True))


def why_ask(
    certificates: Sequence[CertRow], *, before: datetime | None, now: datetime, overlap: timedelta
) -> str | None:
    """Why a partner with CERTIFICATES should be asked for a new one, or None to leave it be.

    With BEFORE: when, for signing or encryption, nothing is in force, or what is in force
    expires before BEFORE with no later-expiring replacement scheduled. Without: always.
    """
    if before is None:
        return "every partner was asked"
    states = in_force_by_usage(certificates, at=now, overlap=overlap)
    if all(state.active is None for state in states.values()):
        return "no certificate in force"
    for usage, state in states.items():
        active = state.active
        if active is None:
            return f"no {usage} certificate in force"
        if active.not_after >= before:
            continue
        if any(c.not_after > active.not_after for c in state.scheduled):
            continue  # a replacement is already scheduled
        return f"its {usage} certificate expires on {active.not_after:%Y-%m-%d}"
    return None
