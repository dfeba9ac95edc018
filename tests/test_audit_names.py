"""Audit rows name the partner acting through its link, on the page and in the CSV (issue 14).

The trail stores "partner via link <id>" (hash-chained, so never rewritten); the page and
the export look the partner's name up when they show a row, in a fixed number of queries.
"""

from __future__ import annotations

import csv
import html
import io

from portal.services import audit, links
from portal.timeutil import utcnow
from tests import factories
from tests.linkhelpers import share
from tests.test_query_counts_lists import _statements


def _opened(session, name: str, as2_id: str):
    """A partner NAME whose link was used once (an audited download of nothing: an open)."""
    partner = factories.partner(session, name=name, as2_id=as2_id)
    shared = share(session, partner)
    actor = links.partner_actor(shared.link, "192.0.2.7", "test")
    audit.record(session, actor, "link.opened", object_type="partner", object_id=partner.id,
                 summary=f"Link {shared.link.id} opened")  # fmt: skip
    return shared


def test_the_audit_page_names_the_partner_acting_through_its_link(session, viewer_client) -> None:
    shared = _opened(session, "Globex Trading", "GLOBEX")
    session.commit()

    page = html.unescape(viewer_client.get("/audit?action=link.opened").get_data(as_text=True))

    assert f"Globex Trading (via link {shared.link.id})" in page
    assert f"<td>partner via link {shared.link.id}</td>" not in page
    # The row is about the partner: its name beside a summary that leaves it out.
    assert f"<strong>Globex Trading</strong>: Link {shared.link.id} opened" in page


def test_the_csv_names_the_partner_and_keeps_what_is_stored(session, viewer_client) -> None:
    shared = _opened(session, "Globex Trading", "GLOBEX")
    session.commit()

    answer = viewer_client.get("/audit.csv?action=link.opened")
    (row,) = list(csv.DictReader(io.StringIO(answer.get_data(as_text=True))))

    assert row["actor"] == f"partner via link {shared.link.id}"
    assert row["actor_name"] == f"Globex Trading (via link {shared.link.id})"
    assert row["about"] == "Globex Trading"


def test_naming_at_display_leaves_the_chain_intact(session, viewer_client) -> None:
    _opened(session, "Globex Trading", "GLOBEX")
    session.commit()
    viewer_client.get("/audit")
    viewer_client.get("/audit.csv")
    walk = audit.verify(session)
    assert walk.broken is None
    assert walk.checked > 0


def test_a_deleted_link_or_partner_keeps_the_stored_words(session) -> None:
    names = audit.names_for(
        session,
        [("partner via link gone", "partner", "999999"), ("ops@example.com", "identity", "x")],
    )
    assert names.who("partner via link gone") == "partner via link gone"
    assert names.who("ops@example.com") == "ops@example.com"
    assert names.about("partner", "999999") == ""
    assert names.about("identity", "x") == ""
    assert names.about("user", "1") == ""


def test_naming_costs_the_same_statements_for_one_partner_or_many(
    app, connection, session, clock, viewer_client
) -> None:
    clock.set(utcnow())
    _opened(session, "Partner 0", "P0")
    session.commit()
    few = _statements(viewer_client, connection, "/audit")

    for n in range(1, 25):
        _opened(session, f"Partner {n}", f"P{n}")
    session.commit()
    many = _statements(viewer_client, connection, "/audit")
    page = viewer_client.get("/audit").get_data(as_text=True)

    assert len(many) == len(few)
    assert "Partner 24 (via link" in html.unescape(page)


def test_the_partner_page_and_the_dashboard_history_name_the_partner(
    session, viewer_client
) -> None:
    shared = _opened(session, "Globex Trading", "GLOBEX")
    session.commit()
    named = f"Globex Trading (via link {shared.link.id})"

    partner_page = viewer_client.get(f"/partners/{shared.partner.id}").get_data(as_text=True)
    dashboard = viewer_client.get("/").get_data(as_text=True)

    for page in (html.unescape(partner_page), html.unescape(dashboard)):
        assert named in page
        assert f"<td>partner via link {shared.link.id}</td>" not in page
