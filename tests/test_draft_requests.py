"""Draft upload requests: partner certificates entering the 60-day zone with nothing scheduled."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from portal.models import AuditEvent, OutboxMessage, ShareLink
from portal.services import drafts
from portal.timeutil import utcnow
from tests import factories

DAY = timedelta(days=1)
OVERLAP = timedelta(days=7)


def seed(session):
    now = utcnow().replace(microsecond=0)
    identity = factories.identity(session, organisation="Acme Corp")
    due = factories.partner(session, identity, name="Due GmbH", contact_emails=["edi@due.example"])
    far = factories.partner(session, identity, name="Far Ltd")
    replaced = factories.partner(session, identity, name="Replaced Inc")
    factories.partner_certificate_row(session, due, now=now, expires_in=50 * DAY, n=1)
    factories.partner_certificate_row(session, far, now=now, expires_in=70 * DAY, n=2)
    factories.partner_certificate_row(session, replaced, now=now, expires_in=40 * DAY, n=3)
    factories.partner_certificate_row(
        session, replaced, now=now, expires_in=400 * DAY, n=4, activate_in=5 * DAY
    )
    session.commit()
    return now, due, far


def test_a_draft_appears_in_the_60_day_zone_when_nothing_is_scheduled(session) -> None:
    now, _due, _far = seed(session)
    assert [d.partner.name for d in drafts.drafts(session, now=now, overlap=OVERLAP)] == [
        "Due GmbH"
    ]
    # Ten days later Far Ltd enters the zone too.
    later = [d.partner.name for d in drafts.drafts(session, now=now + 11 * DAY, overlap=OVERLAP)]
    assert later == ["Due GmbH", "Far Ltd"]


def test_one_click_sends_an_upload_link_and_the_draft_goes(
    app, session, client_as, clock, viewer_client
) -> None:
    now, due, _far = seed(session)
    clock.set(now)
    operator = client_as("operator")
    page = operator.get("/").get_data(as_text=True)
    assert "Upload requests to send" in page
    assert "Due GmbH" in page
    assert "Send upload request" in page
    assert "Send upload request" not in viewer_client.get("/").get_data(as_text=True)
    assert viewer_client.post(f"/upload-requests/{due.id}").status_code == 403

    response = operator.post(f"/upload-requests/{due.id}")

    assert response.status_code == 302
    link = session.scalars(select(ShareLink).where(ShareLink.partner_id == due.id)).one()
    assert link.can_upload
    assert not link.can_download
    message = session.scalars(select(OutboxMessage).where(OutboxMessage.link_id == link.id)).one()
    assert message.recipients == ["edi@due.example"]
    actions = set(
        session.scalars(select(AuditEvent.action).where(AuditEvent.object_id == str(due.id)))
    )
    assert {"link.created", "link.emailed"} <= actions
    assert drafts.drafts(session, now=now, overlap=OVERLAP) == []
    assert "Upload requests to send" not in operator.get("/").get_data(as_text=True)
    # A second click finds nothing to send: no second link.
    operator.post(f"/upload-requests/{due.id}")
    assert len(session.scalars(select(ShareLink).where(ShareLink.partner_id == due.id)).all()) == 1


def test_the_draft_comes_back_when_the_link_is_revoked(session) -> None:
    from portal.domain.tokens import LinkSigner
    from portal.services import links

    now, due, _far = seed(session)
    link = drafts.send(
        session, factories.ACTOR, LinkSigner(["x" * 32]), due.id, now=now, overlap=OVERLAP,
        lifetime=14 * DAY, max_uploads=3,
    )  # fmt: skip
    assert drafts.drafts(session, now=now, overlap=OVERLAP) == []
    links.revoke(session, factories.ACTOR, link, now)
    assert [d.partner.id for d in drafts.drafts(session, now=now, overlap=OVERLAP)] == [due.id]
