"""The dashboard's numbers against a seeded data set, and the report functions on their own."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
    assert [(e.bucket, e.usage, e.replacement is not None) for e in board.expiring] == [
        (7, "signing", False),
        (7, "encryption", False),
        (30, "signing", True),
        (30, "encryption", True),
    ]
    assert len(board.upcoming) == 1
    assert board.waiting_count == 1
    # partners[0] acknowledged after the upcoming certificate was made; the other two did not.
    assert len(board.unacknowledged) == 2
    assert sum(w.activations for w in board.weeks) == 1


def test_dashboard_page_renders_red_rows_and_timeline(app, session, make_user, login) -> None:
    seed(session, make_user("approver"))
    page = login(make_user("viewer")).get("/").get_data(as_text=True)
    assert page.count('class="at-risk"') == 2
    assert "<svg" in page
    assert "Waiting for approval (1)" in page
    assert "Have not confirmed our new certificate (2)" in page


def test_empty_dashboard(viewer_client) -> None:
    page = viewer_client.get("/").get_data(as_text=True)
    assert "No certificate in force expires within 90 days." in page
    assert "Nothing waiting." in page
