"""Rotation campaigns: where a partner stands, derived from facts recorded elsewhere.

Nothing here is stored: the link's counters, the partner's acknowledgements and the
submissions made through the campaign's link are the facts; this module orders them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


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


def states_of(request_upload: bool) -> tuple[PartnerState, ...]:
    """The states a campaign's board counts."""
    return DOWNLOAD_STATES + (UPLOAD_STATES if request_upload else ())


@dataclass(frozen=True)
class Facts:
    """What is recorded about one partner of a campaign."""

    opened: int  # the link's opened count
    downloaded: int  # the link's download count
    acknowledged_at: datetime | None  # their newest acknowledgement since the campaign began
    submission_status: str | None  # their newest submission through the campaign's link
    certificate_activate_at: datetime | None  # of the certificate that submission became


def partner_state(facts: Facts, *, request_upload: bool, now: datetime) -> PartnerState:
    """The furthest step the facts show (a partner may upload before acknowledging).

    A rejected submission does not count: the partner still has to send a good one.
    """
    if request_upload and facts.submission_status not in (None, "rejected"):
        active = facts.certificate_activate_at
        if facts.submission_status == "approved" and active is not None and active <= now:
            return PartnerState.IN_FORCE
        if facts.submission_status == "approved":
            return PartnerState.APPROVED
        return PartnerState.UPLOADED
    if facts.acknowledged_at is not None:
        return PartnerState.ACKNOWLEDGED
    if facts.downloaded > 0:
        return PartnerState.DOWNLOADED
    if facts.opened > 0:
        return PartnerState.OPENED
    return PartnerState.SENT


def at_risk(facts: Facts, *, activate_at: datetime, risk_window: timedelta, now: datetime) -> bool:
    """Not acknowledged although the switch is at most RISK_WINDOW away (or past)."""
    return facts.acknowledged_at is None and now >= activate_at - risk_window


def needs_reminder(facts: Facts, *, request_upload: bool) -> bool:
    """Whether the partner still has something to do: acknowledge, or upload when asked."""
    if facts.acknowledged_at is None:
        return True
    return request_upload and facts.submission_status in (None, "rejected")


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
