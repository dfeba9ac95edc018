"""Rotation campaigns: where a partner stands, derived from facts recorded elsewhere.

Nothing here is stored: the link's counters, the partner's acknowledgements and the
submissions made through the campaign's link are the facts; this module orders them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum


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
