"""PORTAL_DRAFT_REQUESTS_AUTO_SEND: the runner sends the 60-day upload request itself, the same
link and email the dashboard's button sends, once per certificate, under any number of runners."""

from __future__ import annotations

import re
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select

from portal import jobs
from portal.config import ConfigError, validate
from portal.domain.tokens import LinkSigner
from portal.models import AuditEvent, OutboxMessage, ShareLink, SideEffect
from portal.services import drafts, reminders, runner
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import reconfigure

DAY = timedelta(days=1)
BASE = "http://portal.test"
OVERLAP = timedelta(days=7)
POLICY = reminders.Policy(
    offsets=(), digest=False, draft_requests=drafts.AutoSend(lifetime=14 * DAY, max_uploads=3)
)


def seed(session):
    """Due GmbH's certificate expires in 100 days; Far Ltd's in 300; Replaced Inc's in 100,
    with a replacement scheduled. Returns (Due's expiry, Due)."""
    now = utcnow().replace(microsecond=0)
    identity = factories.identity(session, organisation="Acme Corp")
    due = factories.partner(session, identity, name="Due GmbH", contact_emails=["edi@due.example"])
    far = factories.partner(session, identity, name="Far Ltd")
    replaced = factories.partner(session, identity, name="Replaced Inc")
    factories.partner_certificate_row(session, due, now=now, expires_in=100 * DAY, n=1)
    factories.partner_certificate_row(session, far, now=now, expires_in=300 * DAY, n=2)
    factories.partner_certificate_row(session, replaced, now=now, expires_in=100 * DAY, n=3)
    factories.partner_certificate_row(
        session, replaced, now=now, expires_in=500 * DAY, n=4, activate_in=70 * DAY
    )
    session.commit()
    return now + 100 * DAY, due


def requests(handler) -> list:
    """The upload requests among what the SMTP server received (not activation notices)."""
    return [e for e in handler.messages if b"AS2 certificate exchange for" in e.content]


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def test_on_one_run_sends_one_working_upload_link_and_the_next_sends_nothing(
    app, runner, session, client, clock, smtp_server
) -> None:
    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port, DRAFT_REQUESTS_AUTO_SEND=True,
                DIGEST_ENABLED=False)  # fmt: skip
    expires, due = seed(session)
    clock.set(expires - 59 * DAY)

    result = runner.invoke(args=["run-due"])

    assert result.exit_code == 0, result.output
    (envelope,) = requests(handler)
    assert envelope.rcpt_tos == ["edi@due.example"]
    message = message_from_bytes(envelope.content, policy=policy.default)
    text = message.get_body(preferencelist=("plain",)).get_content()
    (url,) = re.findall(rf"{BASE}/s/[A-Za-z0-9._-]+", text)
    page = client.get(url.removeprefix(BASE))
    assert page.status_code == 200
    assert "Due GmbH" in page.get_data(as_text=True)
    link = session.scalars(select(ShareLink).where(ShareLink.partner_id == due.id)).one()
    assert (link.can_upload, link.can_download, link.max_uploads) == (True, False, 3)
    assert link.expires_at == expires - 59 * DAY + 14 * DAY  # the default link, as the button
    events = session.scalars(select(AuditEvent).where(AuditEvent.object_id == str(due.id)))
    actions = [e.action for e in events if e.actor == "scheduler" and "link_id" in e.details]
    assert sorted(actions) == ["draft_request.sent", "link.created", "link.emailed"]
    assert drafts.drafts(session, now=clock.now(), overlap=OVERLAP) == []  # the draft is gone

    clock.advance(DAY)
    again = runner.invoke(args=["run-due"])

    assert again.exit_code == 0, again.output
    assert len(requests(handler)) == 1
    assert count(session, SideEffect, SideEffect.kind == drafts.AUTO_SEND) == 1


def test_off_by_default_nothing_is_sent_and_the_draft_waits_for_a_click(
    app, runner, session, clock, smtp_server
) -> None:
    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port, DIGEST_ENABLED=False)
    assert app.config["DRAFT_REQUESTS_AUTO_SEND"] is False
    expires, due = seed(session)
    clock.set(expires - 59 * DAY)

    assert runner.invoke(args=["run-due"]).exit_code == 0

    assert handler.messages  # the runner ran: the activation notices went out
    assert requests(handler) == []
    assert count(session, ShareLink) == 0
    assert count(session, SideEffect, SideEffect.kind == drafts.AUTO_SEND) == 0
    assert [d.partner.id for d in drafts.drafts(session, now=clock.now(), overlap=OVERLAP)] == [
        due.id
    ]


def test_two_runners_and_a_dead_one_send_it_once(session) -> None:
    expires, due = seed(session)
    now = expires - 59 * DAY
    signer = LinkSigner(["k" * 32])
    runner.plan(session, now=now, policy=POLICY)
    session.commit()
    assert runner.plan(session, now=now, policy=POLICY) == 0  # a second runner: nothing new
    session.commit()
    # Runner A claims and sends but dies before committing; B runs; A's next run finds nothing.
    jobs.perform_batch(session, now=now, runner="A", batch=10, skip=set(), signer=signer)
    session.rollback()
    jobs.run_due(session, now=now, runner="B", policy=POLICY, signer=signer)
    jobs.run_due(session, now=now, runner="A", policy=POLICY, signer=signer)
    jobs.run_due(session, now=now + DAY, runner="B", policy=POLICY, signer=signer)

    assert count(session, ShareLink, ShareLink.partner_id == due.id) == 1
    assert count(session, OutboxMessage, OutboxMessage.link_id.is_not(None)) == 1
    assert count(session, AuditEvent, AuditEvent.action == "draft_request.sent") == 1


def test_a_request_sent_by_hand_meanwhile_is_not_sent_again(session) -> None:
    expires, due = seed(session)
    now = expires - 59 * DAY
    signer = LinkSigner(["k" * 32])
    runner.plan(session, now=now, policy=POLICY)
    session.commit()
    drafts.send(
        session, factories.ACTOR, signer, due.id, now=now, overlap=OVERLAP, lifetime=14 * DAY,
        max_uploads=3,
    )  # fmt: skip
    session.commit()

    jobs.run_due(session, now=now, runner="A", policy=POLICY, signer=signer)

    assert count(session, ShareLink, ShareLink.partner_id == due.id) == 1
    assert count(session, OutboxMessage, OutboxMessage.link_id.is_not(None)) == 1
    (event,) = session.scalars(
        select(AuditEvent).where(AuditEvent.action == "draft_request.unsent")
    ).all()
    assert "open upload link" in event.summary


def test_a_runner_without_a_signer_fails_the_effect_and_a_later_one_sends_it(session) -> None:
    expires, due = seed(session)
    now = expires - 59 * DAY
    first = jobs.run_due(session, now=now, runner="A", policy=POLICY)
    assert first.failed == 1
    assert count(session, ShareLink) == 0
    jobs.run_due(session, now=now, runner="B", policy=POLICY, signer=LinkSigner(["k" * 32]))
    assert count(session, ShareLink, ShareLink.partner_id == due.id) == 1


def test_the_setting_is_true_or_false(app) -> None:
    for bad in ("yes", 1, None):
        with pytest.raises(ConfigError, match="PORTAL_DRAFT_REQUESTS_AUTO_SEND"):
            validate({**app.config, "DRAFT_REQUESTS_AUTO_SEND": bad})
