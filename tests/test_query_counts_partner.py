"""The partner page's cost: at most 3 statements for a repeat visit, none of them a write,
and the same number however much data the database holds.

Statements are counted on the test's connection (tests/querycount.py); time is moved with
the `clock` fixture, never by sleeping.
"""

from __future__ import annotations

import re
from datetime import timedelta

from portal.extensions import keyring
from portal.models import Identity, ShareLink
from portal.services import links
from portal.timeutil import utcnow
from tests import factories
from tests.linkhelpers import NEXT_YEAR, share
from tests.querycount import counting, describe

WRITES = ("INSERT", "UPDATE", "DELETE")


def _repeat_visit(client, session, connection, page: str) -> list[str]:
    # The tests' app context shares one session with the requests: start it empty, as
    # every production request does, so nothing is answered from its identity map.
    session.expunge_all()
    with counting(connection) as statements:
        response = client.get(page)
    assert response.status_code == 200
    return statements


def test_a_repeat_visit_reads_in_three_statements_whatever_the_data(
    client, session, connection, clock
) -> None:
    clock.set(utcnow())
    shared = share(session, max_uploads=10)
    identity = shared.partner.identity
    factories.identity_certificate(session, keyring(), identity)
    factories.submission(session, shared.link)
    session.commit()
    with counting(connection) as first:
        assert client.get(shared.page).status_code == 200
    assert any(s.lstrip().upper().startswith("UPDATE") for s in first)  # the first open counts

    small = _repeat_visit(client, session, connection, shared.page)

    # More of everything: certificates of ours, the partner's submissions, windows,
    # acknowledgements and other partners with their own links.
    identity = session.get(Identity, identity.id)
    link = session.get(ShareLink, shared.link.id)
    for _ in range(3):
        factories.identity_certificate(session, keyring(), identity)
        factories.submission(session, link)
    for _ in range(5):
        share(session, factories.partner(session, identity))
    session.commit()
    for _ in range(2):
        window = {"date": f"{NEXT_YEAR}-01-10", "time": "10:00", "timezone": "UTC"}
        assert client.post(f"{shared.page}/window", data=window).status_code == 302
        assert client.post(f"{shared.page}/acknowledge", data={}).status_code == 302
    clock.advance(timedelta(minutes=1))
    large = _repeat_visit(client, session, connection, shared.page)

    assert len(small) <= 3, describe(small)
    assert len(large) == len(small), describe(large)
    for statement in (*small, *large):
        assert not statement.lstrip().upper().startswith(WRITES), describe(large)


def test_the_page_shows_the_window_and_acknowledgement_read_with_the_link(client, session) -> None:
    shared = share(session)
    factories.identity_certificate(session, keyring(), shared.partner.identity)
    session.commit()
    page = client.get(shared.page).get_data(as_text=True)
    assert re.search(r'step-todo">\s*<a href="#window">', page)
    assert "You confirmed on" not in page

    assert client.post(f"{shared.page}/acknowledge", data={}).status_code == 302
    later = client.get(shared.page).get_data(as_text=True)
    assert "You confirmed on" in later


def test_a_link_unopened_for_the_interval_counts_again_with_one_update(
    client, session, connection, clock
) -> None:
    clock.set(utcnow())
    shared = share(session)
    session.commit()
    assert client.get(shared.page).status_code == 200

    clock.advance(links.OPEN_RECOUNT + timedelta(seconds=1))
    with counting(connection) as statements:
        assert client.get(shared.page).status_code == 200

    writes = [s for s in statements if s.lstrip().upper().startswith(WRITES)]
    assert len(writes) == 1, describe(statements)
    assert writes[0].lstrip().upper().startswith("UPDATE share_links".upper())
