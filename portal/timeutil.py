"""Time helpers shared by models, services and templates (no Flask)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones


def utcnow() -> datetime:
    """Return the current time as an aware UTC datetime (the default for every timestamp)."""
    return datetime.now(UTC)


def is_valid_timezone(name: str) -> bool:
    """Tell whether NAME is an IANA time zone this machine knows."""
    if not name or name not in available_timezones():
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def format_in_zone(moment: datetime | None, zone: str) -> str:
    """Render MOMENT in ZONE with UTC beside it: '2026-11-27 14:00 CET (13:00 UTC)'."""
    if moment is None:
        return "—"
    utc_moment = moment.astimezone(UTC)
    utc_text = utc_moment.strftime("%Y-%m-%d %H:%M UTC")
    if zone in ("", "UTC", "Etc/UTC"):
        return utc_text
    try:
        local = utc_moment.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError, OverflowError):
        return utc_text
    if local.date() == utc_moment.date():
        return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({utc_moment:%H:%M} UTC)"
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()} ({utc_text})"


def parse_moment(text: str, now: datetime) -> datetime:
    """Read 'now' or an ISO 8601 time with a zone ('Z' or an offset); ValueError otherwise."""
    if text.strip().lower() == "now":
        return now
    try:
        moment = datetime.fromisoformat(text.strip().replace("z", "Z"))
    except ValueError:
        raise ValueError(
            f"{text[:40]!r} is not a time; use ISO 8601 such as 2026-12-01T06:00:00Z, or now."
        ) from None
    if moment.tzinfo is None:
        raise ValueError(
            f"{text[:40]!r} has no time zone; add Z for UTC or an offset such as +01:00."
        )
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        # 0001-01-01T00:00:00+01:00 is a valid ISO 8601 time before the year 1 in UTC.
        raise ValueError(
            f"{text[:40]!r} is out of range; use a time between the years 1 and 9999 in UTC."
        ) from None


def local_to_utc(day: date, time_of_day: time, zone: str) -> datetime | None:
    """A wall-clock date and time in ZONE as UTC; None when it cannot be represented."""
    try:
        return datetime.combine(day, time_of_day, tzinfo=ZoneInfo(zone)).astimezone(UTC)
    except (ZoneInfoNotFoundError, ValueError, OverflowError):
        return None
