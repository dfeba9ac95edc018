"""Calendar invitations (.ics) for an agreed change window."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from icalendar import Calendar, Event

SWITCH_DURATION = timedelta(minutes=30)


def window_invitation(
    *,
    uid: str,
    starts_at: datetime,
    partner_zone: str,
    our_name: str,
    our_as2_id: str,
    partner_name: str,
    partner_as2_id: str,
    status: str,
    now: datetime,
    sequence: int = 0,
) -> bytes:
    """An iCalendar file for the certificate switch, with the time in UTC and the partner's zone.

    SEQUENCE orders versions of one UID: a calendar that already holds the event replaces it
    with a version of a higher sequence.
    """
    local = starts_at.astimezone(ZoneInfo(partner_zone))
    calendar = Calendar()
    calendar.add("prodid", "-//Certificate Exchange Portal//EN")
    calendar.add("version", "2.0")
    calendar.add("method", "PUBLISH")
    event = Event()
    event.add("uid", uid)
    event.add("dtstamp", now)
    event.add("sequence", sequence)
    event.add("dtstart", starts_at)
    event.add("dtend", starts_at + SWITCH_DURATION)
    event.add("summary", f"AS2 certificate switch: {our_name} and {partner_name}")
    event.add(
        "description",
        f"{our_name} (AS2 ID {our_as2_id}) and {partner_name} (AS2 ID {partner_as2_id}) switch "
        f"AS2 certificates.\n"
        f"Time: {starts_at:%Y-%m-%d %H:%M} UTC = {local:%Y-%m-%d %H:%M} {local.tzname()} "
        f"({partner_zone}).\nStatus: {status}.",
    )
    event.add("status", "CONFIRMED" if status == "accepted" else "TENTATIVE")
    calendar.add_component(event)
    return bytes(calendar.to_ical())
