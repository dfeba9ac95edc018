"""The big staff lists send as many statements with 60 partners (and hundreds of audit
events and links) as with 3: their cost does not grow with the data, first page or later."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

from portal.services import audit
from portal.services.actor import Actor
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import reconfigure
from tests.querycount import counting, describe


def _next_url(page: str, rel: str = "next") -> str:
    found = re.search(rf'rel="{rel}" href="([^"]+)"', page)
    assert found, f"no {rel} link"
    return html.unescape(found.group(1))


def _statements(client, connection, url: str) -> list[str]:
    # Warm twice: a first request loads what is then cached, and one that commits a write
    # (the session's periodic bookkeeping) makes the next reload the signed-in user.
    for _ in range(2):
        assert client.get(url).status_code == 200
    with counting(connection) as statements:
        response = client.get(url)
    assert response.status_code == 200, url
    # Reloading the signed-in user (one row by its key) follows whether the previous request
    # happened to commit, never the data's size: it is left out of the comparison.
    return [s for s in statements if not s.lstrip().startswith("SELECT users.id AS users_id")]


def _page_costs(client, connection, identity, partner) -> dict[str, list[str]]:
    urls = {
        "audit": "/audit",
        "audit filtered": "/audit?action=bulk.noted&object_type=partner",
        "partners": "/partners",
        "partners of identity": f"/partners?identity={identity.id}",
        "search": "/partners?q=freight",
        "identity": f"/identities/{identity.id}",
        "identity search": f"/identities/{identity.id}?q=freight",
        "partner": f"/partners/{partner.id}",
    }
    costs = {}
    for name, url in urls.items():
        costs[name] = _statements(client, connection, url)
        first = client.get(url).get_data(as_text=True)
        if 'rel="next"' in first:
            later = _next_url(first)
            costs[f"{name}, later page"] = _statements(client, connection, later)
            back = _next_url(client.get(later).get_data(as_text=True), "prev")
            costs[f"{name}, back"] = _statements(client, connection, back)
    return costs


def _grow(session, identity, partner, start: int, count: int) -> None:
    actor = Actor("bulk@example.com")
    moment = datetime(2026, 2, 1, tzinfo=UTC)
    for n in range(start, start + count):
        other = factories.partner(session, identity, name=f"Freight {n:03d}", as2_id=f"FR{n}")
        for k in range(4):
            audit.record(session, actor, "bulk.noted", object_type="partner",
                         object_id=other.id, summary=f"note {k}")  # fmt: skip
        factories.share_link(session, partner, now=moment + timedelta(minutes=n))


def test_list_pages_cost_the_same_with_3_and_60_partners(
    app, connection, session, clock, viewer_client
) -> None:
    # Time stands still: the session's once-a-minute activity write must not land on one
    # counted request and not the other.
    clock.set(utcnow())
    reconfigure(app, PAGE_SIZE=2)
    identity = factories.identity(session)
    partner = factories.partner(session, identity, name="Anchor Freight", as2_id="ANCHOR")
    _grow(session, identity, partner, 0, 2)
    session.commit()
    small = _page_costs(viewer_client, connection, identity, partner)

    _grow(session, identity, partner, 2, 57)
    session.commit()
    large = _page_costs(viewer_client, connection, identity, partner)

    # Every list has a later page at the larger size; the identity page (50 a page) too.
    for name in ("audit", "partners", "search", "identity", "identity search", "partner"):
        assert f"{name}, later page" in large, name
    for name, statements in large.items():
        base = small.get(name) or small[name.split(",")[0]]
        assert len(statements) == len(base), (
            f"{name}: {len(base)} statements with 3 partners, {len(statements)} with 60\n"
            f"--- 3 partners\n{describe(base)}\n--- 60 partners\n{describe(statements)}"
        )
        for statement in statements:
            flat = " ".join(statement.split()).upper()
            # Every read of the big tables stops early: pages and counts alike.
            if "FROM AUDIT_EVENTS" in flat or ("COUNT(" in flat and "FROM PARTNERS" in flat):
                assert " LIMIT " in flat, f"{name}: {flat[:300]}"
