"""The dashboard's numbers against a seeded data set, and the report functions on their own."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert

from portal.domain.reports import CertRow, expiring_soon, timeline_svg, weekly_timeline
from portal.extensions import keyring
from portal.models import Acknowledgement, Certificate
from portal.services import dashboard
from portal.timeutil import utcnow
from tests import certfactory, factories

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
OVERLAP = timedelta(days=7)


def row(i, owner, *, days_left, activate=-30, usage="both", withdrawn=False):
    return CertRow(
        id=i,
        owner=owner,
        owner_name=owner,
        usage=usage,
        not_after=NOW + timedelta(days=days_left, hours=1),
        activate_at=NOW + timedelta(days=activate),
        withdrawn_at=NOW if withdrawn else None,
    )


def test_buckets_and_replacements() -> None:
    rows = [
        row(1, "partner:1", days_left=5),  # 7-day bucket, no replacement
        row(2, "partner:2", days_left=20),  # 30-day bucket...
        row(3, "partner:2", days_left=400, activate=10),  # ...replaced in 10 days
        row(4, "partner:3", days_left=60),  # 90-day bucket
        row(5, "partner:4", days_left=200),  # not soon
        row(6, "partner:5", days_left=3, withdrawn=True),  # withdrawn: not in force
        row(7, "identity:1", days_left=29, usage="signing"),
    ]
    found = expiring_soon(rows, now=NOW, overlap=OVERLAP)
    summary = [
        (e.certificate.id, e.usage, e.bucket, e.replacement and e.replacement.id) for e in found
    ]
    assert summary == [
        (1, "signing", 7, None),
        (1, "encryption", 7, None),
        (2, "signing", 30, 3),
        (2, "encryption", 30, 3),
        (7, "signing", 30, None),
        (4, "signing", 90, None),
        (4, "encryption", 90, None),
    ]


def test_weekly_timeline_counts_and_svg() -> None:
    weeks = weekly_timeline(
        [NOW + timedelta(days=1), NOW + timedelta(days=2), NOW + timedelta(days=400)],
        [NOW + timedelta(days=8)],
        start=NOW,
    )
    assert len(weeks) == 52
    assert (weeks[0].expiries, weeks[0].activations) == (2, 0)
    assert (weeks[1].expiries, weeks[1].activations) == (0, 1)
    assert sum(w.expiries for w in weeks) == 2  # day 400 is beyond 12 months
    svg = timeline_svg(weeks)
    assert svg.startswith("<svg")
    assert svg.endswith("</svg>")
    assert svg.count('class="expiry"') == 1
    assert svg.count('class="activation"') == 1
    assert "2 expiring" in svg
    assert "<script" not in svg


def seed(session, approver):
    """Two identities, four partners, certificates expiring at known distances."""
    now = utcnow()
    ours = factories.identity(session, as2_id="OURS")
    expiring_ours = factories.identity_certificate(session, keyring(), ours, days=20)
    expiring_ours.activate_at = now - timedelta(days=100)
    upcoming = factories.identity_certificate(session, keyring(), ours, days=700)
    upcoming.activate_at = now + timedelta(days=10)
    partners = [factories.partner(session, ours) for _ in range(3)]
    session.add(Acknowledgement(partner_id=partners[0].id, created_at=now + timedelta(minutes=1)))
    cert, _ = certfactory.make_cert(now=now, days=5)
    der = certfactory.der(cert)
    session.execute(
        insert(Certificate),
        [
            {
                "partner_id": partners[1].id, "usage": "both", "der": der, "chain_pem": "",
                "sha256": "a" * 64, "sha1": "a" * 40, "subject": "CN=X", "issuer": "CN=X",
                "serial": "1", "not_before": now - timedelta(days=1),
                "not_after": now + timedelta(days=5, hours=1), "key_type": "RSA",
                "source": "uploaded", "activate_at": now - timedelta(days=1), "created_at": now,
            }
        ],
    )  # fmt: skip
    link = factories.share_link(session, partners[2])
    factories.submission(session, link)
    session.flush()
    return now


def test_dashboard_numbers_on_a_seeded_data_set(app, session, make_user) -> None:
    now = seed(session, make_user("approver"))
    board = dashboard.build(session, now=now, overlap=OVERLAP)
    # Soonest first, then by certificate id, signing first (the keyset of the expiring list).
    assert [(e.usage, e.replacement is not None) for e in board.expiring] == [
        ("signing", False),
        ("encryption", False),
        ("signing", True),
        ("encryption", True),
    ]
    assert [e.days_left for e in board.expiring] == [5, 5, 19, 19]
    # Cumulative lines: expired, then within 1/7/14/30/90 days; one per (certificate, usage).
    assert [(line.days, line.replaced, line.unreplaced) for line in board.expiry] == [
        (0, 0, 0), (1, 0, 0), (7, 0, 2), (14, 0, 2), (30, 2, 2), (90, 2, 2),
    ]  # fmt: skip
    assert (board.expiring_total, board.expiring_more) == (4, 0)
    assert len(board.upcoming) == 1
    assert board.waiting_count == 1
    # partners[0] acknowledged after the upcoming certificate was made; the other two did not.
    assert board.unacknowledged_count == 2
    assert len(board.unacknowledged) == 2
    assert sum(w.activations for w in board.weeks) == 1
    assert board.totals.partners == 3
    assert board.events, "the seed is audited"


def test_dashboard_page_renders_red_rows_and_timeline(app, session, make_user, login) -> None:
    seed(session, make_user("approver"))
    page = login(make_user("viewer")).get("/").get_data(as_text=True)
    assert page.count('class="at-risk"') == 2
    assert "<svg" in page
    assert "Waiting for approval (1)" in page
    assert "Have not confirmed our new certificate (2)" in page
    assert 'href="/expiring?within=90&amp;replacement=none"' in page


def test_the_dashboard_lists_the_most_urgent_and_links_the_rest(
    app, session, make_user, login
) -> None:
    now = utcnow()
    ours = factories.identity(session)
    partners = [factories.partner(session, ours) for _ in range(dashboard.MOST_URGENT + 3)]
    bulk_certificates(
        session, [(p.id, now + timedelta(days=10 + i)) for i, p in enumerate(partners)]
    )
    client = login(make_user("viewer"))
    page = client.get("/").get_data(as_text=True)
    # 26 rows ("both": signing and encryption each): 20 shown, 26 more behind the link.
    assert page.count('class="at-risk"') == dashboard.MOST_URGENT
    assert re.search(r'href="/expiring\?within=90">26 more within 90 days</a>', page)
    first = client.get("/expiring?within=90")
    assert first.status_code == 200
    listed = first.get_data(as_text=True)
    assert "Next page" in listed
    assert listed.count('class="at-risk"') == 25  # the page size
    cursor = re.search(r'href="/expiring\?after=([^&"]+)&amp;within=90" rel="next"', listed)
    assert cursor, listed
    rest = client.get(f"/expiring?within=90&after={cursor.group(1)}").get_data(as_text=True)
    assert rest.count('class="at-risk"') == 46 - 25
    assert "Next page" not in rest
    assert "First page" in rest


def test_the_dashboard_shows_ten_drafts_and_their_total(app, session, make_user, login) -> None:
    now = utcnow()
    ours = factories.identity(session)
    partners = [factories.partner(session, ours) for _ in range(12)]
    bulk_certificates(
        session, [(p.id, now + timedelta(days=40 + i)) for i, p in enumerate(partners)]
    )
    page = login(make_user("operator")).get("/").get_data(as_text=True)
    assert "Upload requests to send (12)" in page
    assert page.count("Send upload request") == 10
    assert "And 2 more:" in page
    assert 'href="/expiring?within=60&amp;owner=partner&amp;replacement=none"' in page


def test_the_expiring_list_filters_by_owner_and_replacement(app, session, make_user, login) -> None:
    seed(session, make_user("approver"))
    client = login(make_user("viewer"))
    ours = client.get("/expiring?owner=identity&replacement=scheduled").get_data(as_text=True)
    assert ours.count("<tr class") == 2
    assert "our " in ours
    theirs = client.get("/expiring?owner=partner&replacement=none&within=7").get_data(as_text=True)
    assert theirs.count('class="at-risk"') == 2
    none = client.get("/expiring?within=0").get_data(as_text=True)
    assert "No certificate in force matches." in none


@pytest.mark.parametrize(
    "query",
    ["within=x", "within=-1", "within=99999", "within=%C2%B2", "owner=them",
     "replacement=maybe", "after=junk", "after=20261399T000000.000000~1~signing"],
)  # fmt: skip
def test_bad_filters_are_a_400(viewer_client, query) -> None:
    assert viewer_client.get(f"/expiring?{query}").status_code == 400


def test_empty_dashboard(viewer_client) -> None:
    page = viewer_client.get("/").get_data(as_text=True)
    assert "No certificate in force expires within 90 days." in page
    assert "Nothing waiting." in page
    assert viewer_client.get("/expiring").status_code == 200


def bulk_certificates(session, owned) -> None:
    """Partner certificates (usage both, in force since a day) expiring at the given moments."""
    now = utcnow()
    cert, _ = certfactory.make_cert(now=now, days=5)
    der = certfactory.der(cert)
    session.execute(
        insert(Certificate),
        [
            {
                "partner_id": partner_id, "usage": "both", "der": der, "chain_pem": "",
                "sha256": f"{n:064x}", "sha1": f"{n:040x}", "subject": "CN=X", "issuer": "CN=X",
                "serial": str(n), "not_before": now - timedelta(days=1), "not_after": not_after,
                "key_type": "RSA", "source": "uploaded", "activate_at": now - timedelta(days=1),
                "created_at": now,
            }
            for n, (partner_id, not_after) in enumerate(owned, 1000)
        ],
    )  # fmt: skip
    session.flush()


def test_the_timeline_never_prints_two_month_labels_on_top_of_each_other() -> None:
    from datetime import UTC, datetime

    # Starting on the 28th: November's first week is followed by December's a week later.
    start = datetime(2026, 11, 28, tzinfo=UTC)
    weeks = weekly_timeline([], [], start=start)
    svg = timeline_svg(weeks)

    places = [int(x) for x in re.findall(r'<text x="(\d+)" y="\d+" class="month">', svg)]
    assert places == sorted(places)
    assert all(b - a >= 3 * 14 for a, b in itertools.pairwise(places))
    assert ">Dec<" in svg  # the newer month keeps its label
    assert 'class="legend"' not in svg  # an empty chart shows no lone scale "1"


def test_staff_are_warned_while_partners_are_told_to_write_to_nobody(app, viewer_client) -> None:
    from tests.conftest import reconfigure

    reconfigure(app, CONTACT_EMAIL="portal@localhost")
    warned = viewer_client.get("/").get_data(as_text=True)
    assert "told to write to <code>portal@localhost</code>" in warned

    reconfigure(app, CONTACT_EMAIL="edi-support@acme.example")
    assert "which nobody reads" not in viewer_client.get("/").get_data(as_text=True)
