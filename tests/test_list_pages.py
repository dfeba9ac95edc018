"""The staff lists in a browser: audit filters and newer/older pages, the identity page's
paged and searchable partners, the partner page's links, search results, bad cursors."""

from __future__ import annotations

import html
import re
from datetime import UTC, datetime, timedelta

import pytest

from portal.services import audit
from portal.services.actor import Actor
from tests import factories
from tests.conftest import reconfigure


def _link(page: str, rel: str) -> str | None:
    found = re.search(rf'rel="{rel}" href="([^"]+)"', page)
    return html.unescape(found.group(1)) if found else None


def _text(client, url: str) -> str:
    response = client.get(url)
    assert response.status_code == 200, url
    return response.get_data(as_text=True)


def test_audit_pages_newer_and_older_with_filters(app, viewer_client, session) -> None:
    reconfigure(app, PAGE_SIZE=3)
    actor = Actor("auditor@example.com")
    for n in range(8):
        audit.record(session, actor, "probe.kept" if n % 2 else "probe.other",
                     object_type="partner", object_id=77, summary=f"probe number {n}")  # fmt: skip
    first = _text(viewer_client, "/audit?action=probe.kept")
    assert re.findall(r"probe number (\d)", first) == ["7", "5", "3"]
    assert "4 events" in first
    assert _link(first, "prev") is None
    older = _text(viewer_client, _link(first, "next"))
    assert re.findall(r"probe number (\d)", older) == ["1"]
    assert _link(older, "next") is None
    newer = _text(viewer_client, _link(older, "prev"))
    assert re.findall(r"probe number (\d)", newer) == ["7", "5", "3"]
    # Filters combine and stay on the pager's links.
    both = _text(viewer_client, "/audit?actor=auditor@example.com&object_type=partner&object_id=77")
    assert "8 events" in both
    assert "object_id=77" in _link(both, "next")
    assert "No event matches" in _text(viewer_client, "/audit?action=nothing.like.this")
    assert "No event matches" in _text(viewer_client, "/audit?actor=nobody%00here")


def test_the_identity_page_shows_one_page_of_partners_and_searches_them(
    viewer_client, session
) -> None:
    identity = factories.identity(session)
    for n in range(57):
        kind = "Freight" if n % 3 == 0 else "Foods"
        factories.partner(session, identity, name=f"{kind} {n:02d}", as2_id=f"IDP{n}")
    page = _text(viewer_client, f"/identities/{identity.id}")
    shown = re.findall(r">((?:Freight|Foods) \d\d)</a>", page)
    assert len(shown) == 50
    assert shown == sorted(shown)
    assert "57 partners" in page
    rest = _text(viewer_client, _link(page, "next"))
    shown_after = re.findall(r">((?:Freight|Foods) \d\d)</a>", rest)
    assert len(shown_after) == 7
    assert not set(shown) & set(shown_after)
    found = _text(viewer_client, f"/identities/{identity.id}?q=FREIGHT")
    assert len(re.findall(r">Freight \d\d</a>", found)) == 19
    assert ">Foods" not in found
    assert "No partner of this identity matches" in _text(
        viewer_client, f"/identities/{identity.id}?q=nobody"
    )


def test_the_identity_edit_page_counts_partners_without_loading_them(
    operator_client, session
) -> None:
    identity = factories.identity(session)
    for _ in range(3):
        factories.partner(session, identity)
    page = _text(operator_client, f"/identities/{identity.id}/edit")
    assert "moves its 3 partner(s)" in page


def test_the_partner_page_pages_its_links(app, operator_client, session) -> None:
    partner = factories.partner(session)
    moment = datetime(2026, 5, 1, tzinfo=UTC)
    made = [
        factories.share_link(session, partner, now=moment + timedelta(hours=n)) for n in range(23)
    ]
    page = _text(operator_client, f"/partners/{partner.id}")
    shown = re.findall(r"<td><code>([A-Za-z0-9_-]+)</code>", page)
    assert shown == [link.id for link in reversed(made)][:20]
    older = _text(operator_client, _link(page, "next"))
    assert re.findall(r"<td><code>([A-Za-z0-9_-]+)</code>", older) == [
        link.id for link in reversed(made[:3])
    ]
    assert "links_after=" in _link(page, "next")
    assert "#links" in _link(page, "next")


# Search: the same matches on SQLite and PostgreSQL (the suite runs on both).
SEARCH_NAMES = ["Nordic Freight", "nordic foods", "Blue 100% Cotton", "Under_Score Ltd",
                "Acme", "Harbour NORD"]  # fmt: skip


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("nord", {"Nordic Freight", "nordic foods", "Harbour NORD"}),
        ("ORDIC F", {"Nordic Freight", "nordic foods"}),
        ("100%", {"Blue 100% Cotton"}),  # LIKE wildcards are taken literally
        ("%", {"Blue 100% Cotton"}),
        ("_", {"Under_Score Ltd"}),
        ("as2-acme", {"Acme"}),  # the AS2 ID, any case
        ("  acme  ", {"Acme"}),
        ("zzz", set()),
        ("nul\x00l", set()),
    ],
)
def test_partner_search_finds_text_anywhere_in_name_or_as2_id(
    viewer_client, session, query, expected
) -> None:
    identity = factories.identity(session)
    for n, name in enumerate(SEARCH_NAMES):
        as2_id = "AS2-ACME" if name == "Acme" else f"SRCH{n}"
        factories.partner(session, identity, name=name, as2_id=as2_id)
    response = viewer_client.get("/partners", query_string={"q": query})
    assert response.status_code == 200
    page = html.unescape(response.get_data(as_text=True))
    found = {name for name in SEARCH_NAMES if f">{name}</a>" in page}
    assert found == expected


BAD = ["garbage", "WyJ4Il0", "W1td", "%00", "A" * 3000, "eyJ0IjogMX0"]


@pytest.mark.parametrize("cursor", BAD)
def test_bad_cursors_answer_400_never_500(viewer_client, session, cursor) -> None:
    partner = factories.partner(session)
    for url in (
        "/audit?after=",
        "/audit?before=",
        "/audit?action=x&after=",
        "/partners?after=",
        "/partners?q=a&before=",
        f"/identities/{partner.identity_id}?after=",
        f"/identities/{partner.identity_id}?before=",
        f"/partners/{partner.id}?links_after=",
        f"/partners/{partner.id}?links_before=",
    ):
        response = viewer_client.get(url + cursor)
        assert response.status_code == 400, url
        assert "Start again from the first page" in response.get_data(as_text=True)


def test_an_empty_cursor_is_the_first_page(viewer_client, session) -> None:
    factories.partner(session, name="Only One")
    assert "Only One" in _text(viewer_client, "/partners?after=&before=")
