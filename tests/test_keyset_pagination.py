"""Keyset pages (services.pagination): every item exactly once, forwards and backwards, with
ties in the sort key; cursors that are not ours are refused (400), never a 500."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from portal.models import AuditEvent, Partner, ShareLink
from portal.services import audit, directory, links
from portal.services.actor import Actor
from portal.services.pagination import (
    CursorError,
    KeysetPage,
    capped_count,
    decode_cursor,
    encode_cursor,
)
from tests import factories

# Names with ties, in an order that is neither the order of creation nor of the ids.
NAMES = ["Echo", "Alpha", "Delta", "Alpha", "Charlie", "Bravo", "Alpha", "Echo", "Bravo", "Alpha"]


def walk(fetch: Callable[..., KeysetPage], per_page: int) -> tuple[list, list]:
    """Every page forwards from the first, then backwards from the last: the items in order."""
    forwards: list = []
    pages = [fetch(after=None, before=None, per_page=per_page)]
    while True:
        assert len(pages[-1].items) <= per_page
        forwards.extend(pages[-1].items)
        if not pages[-1].has_more:
            break
        pages.append(fetch(after=pages[-1].next_cursor, before=None, per_page=per_page))
    assert len(pages) < 100
    backwards: list = []
    page = pages[-1]
    backwards[:0] = page.items
    while page.has_prev:
        page = fetch(after=None, before=page.prev_cursor, per_page=per_page)
        assert len(page.items) == per_page  # pages before the last are full
        backwards[:0] = page.items
    assert not page.has_prev
    return forwards, backwards


@pytest.mark.parametrize("per_page", [1, 2, 3, 4, 10, 11, 50])
def test_partners_walk_every_partner_once_both_ways(session, per_page) -> None:
    identity = factories.identity(session)
    other = factories.identity(session)
    for n, name in enumerate(NAMES):
        factories.partner(session, identity if n % 3 else other, name=name, as2_id=f"TIE{n}")
    expected = list(session.scalars(select(Partner).order_by(Partner.name, Partner.id)))
    assert len(expected) == len(NAMES)

    def fetch(**kw):
        return directory.browse_partners(session, **kw)

    forwards, backwards = walk(fetch, per_page)
    assert [p.id for p in forwards] == [p.id for p in expected]
    assert [p.id for p in backwards] == [p.id for p in expected]

    def of_identity(**kw):
        return directory.browse_partners(session, identity_id=identity.id, **kw)

    mine = [p.id for p in expected if p.identity_id == identity.id]
    forwards, backwards = walk(of_identity, per_page)
    assert [p.id for p in forwards] == [p.id for p in backwards] == mine


def test_search_walks_the_matches_only(session) -> None:
    identity = factories.identity(session)
    for n, name in enumerate(NAMES):
        factories.partner(session, identity, name=f"{name} Freight", as2_id=f"SRCH{n}")
    factories.partner(session, identity, name="Nothing Alike", as2_id="ZZZ")

    def fetch(**kw):
        return directory.browse_partners(session, query="ALPHA f", **kw)

    forwards, backwards = walk(fetch, 2)
    assert [p.name for p in forwards] == ["Alpha Freight"] * 4
    assert [p.id for p in forwards] == [p.id for p in backwards]
    assert fetch(after=None, before=None, per_page=2).total == 4


def test_audit_walks_newest_first_with_filters(session) -> None:
    actor = Actor("walker@example.com")
    for n in range(23):
        audit.record(session, actor, f"walk.{n % 2}", object_type="test", object_id=n % 4,
                     summary=f"event {n}")  # fmt: skip
    everything = [e.id for e in session.scalars(select(AuditEvent).order_by(AuditEvent.id.desc()))]
    filters = audit.AuditFilter(actor="walker@example.com")

    def fetch(**kw):
        return audit.list_events(session, filters, **kw)

    forwards, backwards = walk(fetch, 5)
    mine = [e.id for e in forwards]
    assert mine == [i for i in everything if i in set(mine)]
    assert len(mine) == 23
    assert [e.id for e in backwards] == mine

    odd = audit.AuditFilter(action="walk.1", object_type="test", object_id="1")

    def fetch_odd(**kw):
        return audit.list_events(session, odd, **kw)

    forwards, backwards = walk(fetch_odd, 2)
    assert [e.summary for e in forwards] == [f"event {n}" for n in (21, 17, 13, 9, 5, 1)]
    assert [e.id for e in backwards] == [e.id for e in forwards]


def test_totals_are_counted_only_up_to_the_cap(session) -> None:
    actor = Actor("counter@example.com")
    for n in range(7):
        audit.record(session, actor, "count.me", object_type="test", object_id=n, summary="x")
    mine = select(AuditEvent.id).where(AuditEvent.action == "count.me")
    assert capped_count(session, mine, cap=5) == 6  # "more than 5", without counting on
    assert capped_count(session, mine, cap=7) == 7
    page = audit.list_events(session, audit.AuditFilter(action="count.me"), per_page=2)
    assert page.total == 7
    assert page.total_label == "7"
    assert KeysetPage(items=[], per_page=2, total=6, cap=5).total_label == "5+"
    assert KeysetPage(items=[], per_page=2, total=1234, cap=5000).total_label == "1,234"
    assert KeysetPage(items=[], per_page=2).total_label == ""


def test_links_walk_newest_first_with_tied_creation_times(session) -> None:
    partner = factories.partner(session)
    moment = datetime(2026, 3, 1, 12, tzinfo=UTC)
    for n in range(9):
        factories.share_link(session, partner, now=moment - timedelta(days=n // 3))
    expected = list(
        session.scalars(
            select(ShareLink)
            .where(ShareLink.partner_id == partner.id)
            .order_by(ShareLink.created_at.desc(), ShareLink.id.desc())
        )
    )

    def fetch(**kw):
        return links.browse_links(session, partner, **kw)

    for per_page in (1, 2, 4, 9):
        forwards, backwards = walk(fetch, per_page)
        assert [link.id for link in forwards] == [link.id for link in expected]
        assert [link.id for link in backwards] == [link.id for link in expected]


def test_a_page_before_the_start_gives_the_first_page(session) -> None:
    identity = factories.identity(session)
    for n in range(5):
        factories.partner(session, identity, name=f"P{n}", as2_id=f"START{n}")
    first = directory.browse_partners(session, identity_id=identity.id, per_page=2)
    # Before the second item there is only one: show the first page, full.
    page = directory.browse_partners(
        session, identity_id=identity.id, before=encode_cursor(["P1", first.items[1].id]),
        per_page=2,
    )  # fmt: skip
    assert [p.id for p in page.items] == [p.id for p in first.items]
    assert not page.has_prev
    # Past the end: nothing, with a way back.
    past = directory.browse_partners(
        session, identity_id=identity.id, after=encode_cursor(["zzz", 1]), per_page=2
    )
    assert past.items == []
    assert past.has_prev
    assert not past.has_more


GARBAGE = [
    "!!!",
    "not base64 at all \x00",
    "e30",  # {}
    base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    base64.urlsafe_b64encode(b'["Alpha"]').decode(),  # too short
    base64.urlsafe_b64encode(b'["Alpha", 1, 2]').decode(),  # too long
    base64.urlsafe_b64encode(b'[1, "Alpha"]').decode(),  # wrong types
    base64.urlsafe_b64encode(b'["Alpha", true]').decode(),
    base64.urlsafe_b64encode(b'["Alpha", 1.5]').decode(),
    base64.urlsafe_b64encode(b'["Alpha", 99999999999999999999999]').decode(),
    base64.urlsafe_b64encode(json.dumps(["Al\x00pha", 1]).encode()).decode(),
    base64.urlsafe_b64encode(b'[{"t": "yesterday"}, "x"]').decode(),
    "A" * 5000,
]


@pytest.mark.parametrize("cursor", GARBAGE)
def test_cursors_that_are_not_ours_are_refused(session, cursor) -> None:
    with pytest.raises(CursorError) as raised:
        decode_cursor(cursor, directory.BY_NAME)
    assert raised.value.http_status == 400
    with pytest.raises(CursorError):
        directory.browse_partners(session, after=cursor, per_page=2)
    with pytest.raises(CursorError):
        directory.browse_partners(session, before=cursor, per_page=2)


def test_datetime_cursors_round_trip_and_naive_ones_are_refused() -> None:
    moment = datetime(2026, 1, 2, 3, 4, 5, 678, tzinfo=UTC)
    assert decode_cursor(encode_cursor([moment, "abc"]), links.NEWEST_LINKS) == [moment, "abc"]
    naive = encode_cursor([{"t": "2026-01-02T03:04:05"}, "abc"])
    with pytest.raises(CursorError):
        decode_cursor(naive, links.NEWEST_LINKS)
    with pytest.raises(CursorError):
        decode_cursor(encode_cursor([moment, 5]), links.NEWEST_LINKS)
