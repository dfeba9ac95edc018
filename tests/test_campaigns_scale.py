"""A campaign for 5,000 partners: started in one transaction, complete; delivered over SMTP.

The partners are seeded with two bulk inserts (the directory service checks each one, which
is not what is under test here). These tests check that everything is there at that size;
how long it takes is a benchmark's business, not a test's, so nothing here is timed.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import func, insert, select

from portal.extensions import keyring
from portal.models import CampaignPartner, OutboxMessage, Partner, PartnerContact, ShareLink
from portal.services import campaign_board, campaigns
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import reconfigure

PARTNERS = 5_000


def seed_partners(session, identity, count: int) -> None:
    """COUNT partners of IDENTITY, every tenth without a contact email."""
    session.execute(
        insert(Partner),
        [
            {"name": f"Partner {n:05d}", "as2_id": f"SCALE{n:05d}", "identity_id": identity.id,
             "environment": identity.environment, "timezone": "Europe/Berlin"}
            for n in range(count)
        ],
    )  # fmt: skip
    ids = session.scalars(select(Partner.id).where(Partner.identity_id == identity.id)).all()
    session.execute(
        insert(PartnerContact),
        [
            {"partner_id": pid, "email": f"edi{pid}@p.example"}
            for n, pid in enumerate(ids)
            if n % 10
        ],
    )


def test_a_campaign_for_5000_partners_reaches_every_one(session, runner) -> None:
    identity = factories.identity(session)
    certificate = factories.identity_certificate(session, keyring(), identity)
    seed_partners(session, identity, PARTNERS)
    session.commit()
    at = utcnow() + timedelta(days=20)

    campaign = campaigns.start(
        session, factories.ACTOR, campaigns.StartRequest(identity, certificate.sha256, at),
        now=utcnow(),
    )  # fmt: skip
    session.commit()
    board = campaign_board.board(session, campaign, now=utcnow(), risk_window=timedelta(days=3))
    result = runner.invoke(args=["campaign", "status", str(campaign.id), "--json"])

    assert result.exit_code == 0
    assert len(board.rows) == PARTNERS
    assert board.unreachable == PARTNERS // 10
    count = func.count()
    assert session.scalar(select(count).select_from(CampaignPartner)) == PARTNERS
    assert (
        session.scalar(
            select(count).select_from(OutboxMessage).where(OutboxMessage.link_id.is_not(None))
        )
        == PARTNERS - PARTNERS // 10
    )
    assert session.scalar(select(count).select_from(ShareLink)) >= PARTNERS


@pytest.mark.slow
def test_5000_partners_delivered_to_loopback_smtp(app, session, runner, smtp_server) -> None:
    handler, port = smtp_server
    identity = factories.identity(session)
    certificate = factories.identity_certificate(session, keyring(), identity)
    seed_partners(session, identity, PARTNERS)
    campaigns.start(
        session, factories.ACTOR,
        campaigns.StartRequest(identity, certificate.sha256, utcnow() + timedelta(days=20)),
        now=utcnow(),
    )  # fmt: skip
    session.commit()
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)

    result = runner.invoke(args=["run-due"])

    assert result.exit_code == 0, result.output
    assert len(handler.messages) == PARTNERS - PARTNERS // 10


def test_a_request_for_5000_partners_certificates_reaches_every_one(session) -> None:
    from portal.services import campaign_requests

    identity = factories.identity(session)
    seed_partners(session, identity, PARTNERS)
    session.commit()
    now = utcnow()
    wanted = campaign_requests.CertificateRequest(
        identity, due_at=now + timedelta(days=20), expiring_before=now + timedelta(days=60)
    )

    started = campaign_requests.request_certificates(
        session, factories.ACTOR, wanted, now=now, overlap=timedelta(days=7)
    )
    session.commit()
    board = campaign_board.board(session, started.campaign, now=now, risk_window=timedelta(days=3))

    assert started.partners == PARTNERS  # none has a certificate in force
    assert len(board.rows) == PARTNERS
    assert board.unreachable == PARTNERS // 10
    assert (
        session.scalar(
            select(func.count()).select_from(ShareLink).where(ShareLink.can_download.is_(False))
        )
        == PARTNERS
    )
