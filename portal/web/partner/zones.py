"""The time zones a partner page suggests: a short list inline, every zone at a cacheable URL.

The page ships only COMMON_ZONES and the partner's own zone in its <datalist>; the whole
list (hundreds of names) is fetched once by static/timezones.js from the `time_zones` route,
whose address carries a version so browsers keep it. Without JavaScript a partner types the
name; the server checks it against zoneinfo either way.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache

from portal.web.forms import timezone_choices

ZONE_HINT = "Type a time zone such as Europe/Berlin or America/New_York, or pick one."

# The zones most partners are in, west to east; the partner's own zone is added to them.
COMMON_ZONES = (
    "America/Los_Angeles",
    "America/Denver",
    "America/Chicago",
    "America/Mexico_City",
    "America/New_York",
    "America/Toronto",
    "America/Sao_Paulo",
    "UTC",
    "Europe/London",
    "Europe/Paris",
    "Europe/Berlin",
    "Europe/Amsterdam",
    "Europe/Madrid",
    "Europe/Rome",
    "Europe/Warsaw",
    "Africa/Lagos",
    "Africa/Johannesburg",
    "Europe/Istanbul",
    "Europe/Moscow",
    "Asia/Dubai",
    "Asia/Kolkata",
    "Asia/Singapore",
    "Asia/Shanghai",
    "Asia/Hong_Kong",
    "Asia/Seoul",
    "Asia/Tokyo",
    "Australia/Sydney",
    "Pacific/Auckland",
)


@cache
def _by_folded_name() -> dict[str, str]:
    return {zone.casefold(): zone for zone, _label in timezone_choices()}


def canonical_zone(value: str | None) -> str | None:
    """VALUE trimmed, in the zone's own spelling when it names one in any letter case."""
    if value is None:
        return None
    text = value.strip()
    return _by_folded_name().get(text.casefold(), text)


@cache
def _known() -> frozenset[str]:
    return frozenset(zone for zone, _label in timezone_choices())


def is_known_zone(name: str) -> bool:
    """Whether NAME is a zone this machine's zoneinfo has (and the picker offers)."""
    return name in _known()


def suggested_zones(own: str | None) -> list[str]:
    """The page's inline suggestions: the common zones, with OWN first when it is another."""
    common = [zone for zone in COMMON_ZONES if zone.casefold() in _by_folded_name()]
    if own and own not in common and own.casefold() in _by_folded_name():
        return [own, *common]
    return common


@cache
def all_zones_json() -> tuple[bytes, str]:
    """Every zone as a JSON array, and its version (a hash, for the URL and the ETag)."""
    body = json.dumps([zone for zone, _label in timezone_choices()]).encode()
    return body, hashlib.sha256(body).hexdigest()[:16]
