"""The partner page's time-zone picker: a short list on the page, every zone at a cached
address, and the server checking whatever zone is typed.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from portal.web.forms import timezone_choices
from portal.web.partner.zones import COMMON_ZONES
from tests import factories
from tests.linkhelpers import NEXT_YEAR, share, windows_of

RARE = "Pacific/Chatham"  # in the full list, not in the common ones


def test_the_page_suggests_a_few_zones_and_the_partners_own_not_every_zone(client, session) -> None:
    partner = factories.partner(session, timezone="America/Argentina/Ushuaia")
    shared = share(session, partner)

    response = client.get(shared.page)

    page = response.get_data(as_text=True)
    assert len(response.get_data()) < 20_000  # it was 72 KB with every zone in two menus
    datalist = page[page.index('<datalist id="zones"') : page.index("</datalist>")]
    suggested = re.findall(r'<option value="([^"]+)">', datalist)
    assert suggested[0] == "America/Argentina/Ushuaia"
    assert set(suggested[1:]) <= set(COMMON_ZONES)
    assert RARE not in page
    for name in ("timezone", "window_timezone"):
        field = re.search(rf'<input[^>]*name="{name}"[^>]*>', page)
        assert field is not None, name
        assert 'list="zones"' in field.group(0)
    assert 'value="America/Argentina/Ushuaia"' in page  # the forms start in their zone
    zones_url = re.search(r'<datalist id="zones" data-all="([^"]+)"', page)
    assert zones_url is not None
    assert '<script src="/static/timezones.js" defer>' in page


def test_every_zone_is_served_once_to_everyone_and_cached(client, session) -> None:
    shared = share(session)
    page = client.get(shared.page).get_data(as_text=True)
    zones_url = re.search(r'data-all="([^"]+)"', page).group(1).replace("&amp;", "&")

    response = client.get(zones_url)

    assert response.status_code == 200
    assert response.get_json() == [zone for zone, _ in timezone_choices()]
    assert RARE in response.get_json()
    assert response.headers["Cache-Control"] == "public, max-age=31536000"
    assert shared.token not in response.get_data(as_text=True)
    etag = response.headers["ETag"]
    again = client.get(zones_url, headers={"If-None-Match": etag})
    assert again.status_code == 304
    unversioned = client.get("/time-zones.json")
    assert unversioned.headers["Cache-Control"] == "public, max-age=86400"


def test_a_typed_zone_is_checked_and_stored_in_its_own_spelling(client, session) -> None:
    shared = share(session)
    window = {"date": f"{NEXT_YEAR}-03-02", "time": "09:30"}

    refused = client.post(f"{shared.page}/window", data={**window, "timezone": "Mars/Olympus"})
    assert refused.status_code == 422
    assert "We do not know that time zone" in refused.get_data(as_text=True)
    assert windows_of(session, shared.partner) == []

    typed = client.post(f"{shared.page}/window", data={**window, "timezone": " pacific/chatham "})
    assert typed.status_code == 302
    (stored,) = windows_of(session, shared.partner)
    assert stored.timezone == RARE
    # 09:30 in Chatham (UTC+13:45 in March) is 19:45 UTC the day before.
    assert stored.starts_at == datetime(NEXT_YEAR, 3, 1, 19, 45, tzinfo=UTC)
