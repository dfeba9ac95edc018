"""The outbox: link URLs only from the link column, email off until configured, the admin page."""

from __future__ import annotations

import re
import socket
from datetime import timedelta
from email import message_from_bytes, policy

import pytest
from sqlalchemy import func, select, update

from portal import create_app, jobs
from portal.config import DEFAULTS
from portal.extensions import db, link_signer
from portal.models import AuditEvent, OutboxMessage
from portal.services import links, outbox
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import reconfigure, signed_in_client, test_settings


def count(session, model, *where) -> int:
    return session.scalar(select(func.count()).select_from(model).where(*where)) or 0


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def queue(session, subject: str = "Hello", **fields) -> OutboxMessage:
    message = outbox.queue_email(
        session, recipients=["edi@globex.example"], subject=subject, body="Body text", **fields
    )
    assert message is not None
    return message


def fail(session, message: OutboxMessage, error: str, *, attempts: int = 1) -> None:
    """Record MESSAGE as failed, as the runner does."""
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id)
        .values(sent_at=None, attempts=attempts, last_error=error)
    )
    session.flush()
    session.refresh(message)


def delivered_bodies(handler) -> list[str]:
    """The plain-text part of each email the SMTP server received, decoded."""
    parsed = [message_from_bytes(e.content, policy=policy.default) for e in handler.messages]
    parts = [message.get_body(preferencelist=("plain",)) for message in parsed]  # type: ignore[attr-defined]
    return [part.get_content() for part in parts]


# Link URLs come only from the link column ------------------------------------------------


def test_typed_link_marker_in_rejection_reason_never_becomes_a_url(
    app, runner, session, client_as, smtp_server
) -> None:
    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    rejected = factories.submission(
        session, factories.share_link(session, factories.partner(session))
    )
    other_link = factories.share_link(session, factories.partner(session))
    typed = f"Use [[link:{other_link.id}]] instead \ufffcplease"  # with a typed link mark
    session.commit()

    response = client_as("approver").post(
        f"/submissions/{rejected.id}/reject", data={"reject-reason": typed}
    )
    assert response.status_code == 302
    session.commit()
    result = runner.invoke(args=["run-due"])

    assert result.exit_code == 0, result.output
    (body,) = [b for b in delivered_bodies(handler) if "was not accepted" in b]
    assert f"Use [[link:{other_link.id}]] instead please" in body  # as typed, less the mark
    assert f"/s/{other_link.id}" not in body
    assert "/s/" not in body
    message = session.scalars(
        select(OutboxMessage).where(OutboxMessage.dedupe_key.like("submission-rejected:%"))
    ).one()
    assert message.link_id is None


def test_typed_link_marker_in_a_partner_name_never_becomes_a_url(
    app, runner, session, operator_client, smtp_server
) -> None:
    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    other_link = factories.share_link(session, factories.partner(session))
    partner = factories.partner(session, name=f"Globex [[link:{other_link.id}]]")
    link = factories.share_link(session, partner)
    session.commit()

    response = operator_client.post(f"/partners/{partner.id}/links/{link.id}/email")
    assert response.status_code == 302
    session.commit()
    result = runner.invoke(args=["run-due"])

    assert result.exit_code == 0, result.output
    (body,) = [b for b in delivered_bodies(handler) if "Open this link" in b]
    assert f"asks Globex [[link:{other_link.id}]] (AS2 ID" in body  # the name, as typed
    assert f"/s/{other_link.id}" not in body
    assert body.count("/s/") == 1
    assert f"{app.config['BASE_URL']}/s/{link.id}." in body  # the partner's own link, once


def test_a_message_with_a_link_must_place_it_and_others_cannot() -> None:
    assert outbox.compose_body(["a ", outbox.LINK, " b"], "L" * 22) == f"a {outbox.LINK_MARK} b"
    assert outbox.compose_body(f"typed {outbox.LINK_MARK}", None) == "typed "
    for body, link_id in (("no place for it", "L" * 22), (["x", outbox.LINK], None)):
        with pytest.raises(ValueError, match="LINK"):
            outbox.compose_body(body, link_id)


def test_a_link_deleted_before_delivery_leaves_a_note_not_a_url(session) -> None:
    link = factories.share_link(session, factories.partner(session))
    message = outbox.queue_email(
        session,
        recipients=["edi@globex.example"],
        subject="Your link",
        body=["Open: ", outbox.LINK, "\n"],
        link_id=link.id,
    )
    assert message is not None
    session.delete(link)
    session.commit()
    sent: list[str] = []

    delivery = jobs.deliver_outbox(
        session,
        lambda _to, _subject, body, _html: sent.append(body),
        lambda _id: "URL",
        now=utcnow(),
    )

    assert delivery.sent == 1
    assert sent == [f"Open: {outbox.LINK_GONE}\n"]


# Email is off until PORTAL_SMTP_HOST is set ----------------------------------------------


def test_email_is_off_until_portal_smtp_host_is_set(app) -> None:
    assert DEFAULTS["SMTP_HOST"] is None
    assert app.config["SMTP_HOST"] is None
    assert DEFAULTS["SMTP_PORT"] == 25
    assert DEFAULTS["SMTP_TLS"] == "none"


def test_run_due_with_email_off_exits_0_and_says_how_many_wait(app, runner, session) -> None:
    reconfigure(app, SMTP_HOST=None)
    for number in range(3):
        queue(session, subject=f"Notice {number}")
    session.commit()

    result = runner.invoke(args=["run-due"])

    assert result.exit_code == 0, result.output
    assert "Email is off (PORTAL_SMTP_HOST is not set): 3 messages wait in the outbox." in (
        result.output
    )
    session.expire_all()
    waiting = session.scalars(select(OutboxMessage)).all()
    assert [(m.sent_at, m.attempts, m.last_error) for m in waiting] == [(None, 0, None)] * 3


def test_run_due_with_smtp_failing_says_why_and_exits_1(app, runner, session) -> None:
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port())
    queue(session)
    session.commit()

    result = runner.invoke(args=["run-due"])

    assert result.exit_code == 1
    assert "1 could not be sent" in result.output
    (reason,) = [line for line in result.output.splitlines() if line.startswith("Last error: ")]
    assert "ConnectionRefusedError" in reason


def test_scheduler_with_email_off_says_once_how_many_wait(app, runner, session) -> None:
    reconfigure(app, SMTP_HOST="")
    queue(session)
    session.commit()

    result = runner.invoke(args=["scheduler", "--interval", "1", "--iterations", "2"])

    assert result.exit_code == 0, result.output
    notices = [line for line in result.output.splitlines() if "Email is off" in line]
    assert len(notices) == 1
    assert notices[0].endswith("(PORTAL_SMTP_HOST is not set): 1 message waits in the outbox")


def test_emailing_a_link_while_email_is_off_says_it_waits_in_the_outbox(
    app, operator_client, session
) -> None:
    link = factories.share_link(session, factories.partner(session))

    response = operator_client.post(
        f"/partners/{link.partner_id}/links/{link.id}/email", follow_redirects=True
    )

    page = response.get_data(as_text=True)
    assert "email is off (PORTAL_SMTP_HOST is not set)" in page
    assert "waits in the outbox" in page


# The outbox page -------------------------------------------------------------------------


def test_outbox_page_lists_failed_message_with_last_error_and_retry(admin_client, session) -> None:
    message = queue(session, subject="Certificate approved")
    fail(session, message, "SMTPRecipientsRefused: 550 no such user")

    page = admin_client.get("/outbox?state=failed").get_data(as_text=True)

    assert "Certificate approved" in page
    assert "edi@globex.example" in page
    assert "SMTPRecipientsRefused: 550 no such user" in page
    assert f'action="/outbox/{message.id}/retry?state=failed"' in page

    response = admin_client.post(f"/outbox/{message.id}/retry?state=failed")

    assert response.status_code == 302
    session.refresh(message)
    assert (message.attempts, message.last_error, message.sent_at) == (0, None, None)
    event = session.scalars(select(AuditEvent).where(AuditEvent.action == "outbox.retried")).one()
    assert event.object_id == str(message.id)
    assert "550 no such user" in event.summary


def test_retry_puts_a_message_the_runner_gave_up_on_back_in_line(admin_client, session) -> None:
    message = queue(session)
    fail(session, message, "TimeoutError: timed out", attempts=outbox.MAX_ATTEMPTS)
    session.commit()
    sent: list[str] = []

    def send(_to, subject, _body, _html):
        sent.append(subject)

    assert jobs.deliver_outbox(session, send, str, now=utcnow()).sent == 0  # given up
    assert admin_client.post(f"/outbox/{message.id}/retry").status_code == 302
    session.commit()
    assert jobs.deliver_outbox(session, send, str, now=utcnow()).sent == 1
    assert sent == ["Hello"]


def test_retry_refuses_sent_message(admin_client, session) -> None:
    message = queue(session)
    message.sent_at = utcnow()
    message.attempts = 1
    session.flush()

    response = admin_client.post(f"/outbox/{message.id}/retry", follow_redirects=True)

    assert "was already sent; there is nothing to retry" in response.get_data(as_text=True)
    session.refresh(message)
    assert message.attempts == 1
    assert count(session, AuditEvent, AuditEvent.action == "outbox.retried") == 0


def test_retry_refuses_waiting_message(admin_client, session) -> None:
    message = queue(session)

    response = admin_client.post(f"/outbox/{message.id}/retry", follow_redirects=True)

    assert "has not failed: it waits for the next delivery run" in response.get_data(as_text=True)
    assert count(session, AuditEvent, AuditEvent.action == "outbox.retried") == 0


def test_outbox_page_filters_by_state_newest_first_and_paginates(app, admin_client, session):
    reconfigure(app, PAGE_SIZE=2)
    now = utcnow()
    for number in range(3):
        queue(session, subject=f"Waiting {number}").created_at = now + timedelta(minutes=number)
    queue(session, subject="Went out").sent_at = now
    session.flush()

    first = admin_client.get("/outbox?state=waiting").get_data(as_text=True)
    second = admin_client.get("/outbox?state=waiting&page=2").get_data(as_text=True)
    sent = admin_client.get("/outbox?state=sent").get_data(as_text=True)

    assert first.index("Waiting 2") < first.index("Waiting 1")
    assert "Waiting 0" not in first
    assert "Went out" not in first
    assert "Page 1 of 2" in first
    assert "Waiting 0" in second
    assert "Went out" in sent
    assert "Waiting" not in sent


def test_outbox_page_says_which_setting_turns_email_on(app, admin_client) -> None:
    off = admin_client.get("/outbox").get_data(as_text=True)
    reconfigure(app, SMTP_HOST="127.0.0.1")
    on = admin_client.get("/outbox").get_data(as_text=True)

    assert "Email is off" in off
    assert "Set <code>PORTAL_SMTP_HOST</code>" in off
    assert "Email is off" not in on


def test_outbox_pages_never_show_a_link_token(admin_client, session) -> None:
    link, token = links.create_link(
        session, factories.ACTOR, link_signer(), factories.partner(session),
        can_download=True, can_upload=True, lifetime=timedelta(days=14), max_uploads=3,
        now=utcnow(),
    )  # fmt: skip
    links.email_link(session, factories.ACTOR, link, sender_org="Acme")
    message = session.scalars(select(OutboxMessage).where(OutboxMessage.link_id == link.id)).one()

    pages = [
        admin_client.get("/outbox").get_data(as_text=True),
        admin_client.get(f"/outbox/{message.id}").get_data(as_text=True),
    ]

    assert f"[address of link {link.id}, signed when the email is sent]" in pages[1]
    for page in pages:
        assert token not in page
        assert "/s/" not in page


def test_outbox_is_in_the_menu_for_admins_only(admin_client, operator_client) -> None:
    assert 'href="/outbox"' in admin_client.get("/").get_data(as_text=True)
    assert 'href="/outbox"' not in operator_client.get("/").get_data(as_text=True)


def test_retry_needs_the_csrf_token(tmp_path, database_url, connection, session, make_user):
    csrf_app = create_app(test_settings(tmp_path, database_url, WTF_CSRF_ENABLED=True))
    db.bind_to(csrf_app, connection, join_transaction_mode="create_savepoint")
    message = queue(session)
    fail(session, message, "TimeoutError: timed out")
    browser = signed_in_client(csrf_app, session, make_user("admin"))

    refused = browser.post(f"/outbox/{message.id}/retry")
    page = browser.get("/outbox?state=failed").get_data(as_text=True)
    token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page)
    assert token is not None
    accepted = browser.post(f"/outbox/{message.id}/retry", data={"csrf_token": token.group(1)})

    assert refused.status_code == 400
    assert accepted.status_code == 302
    assert count(session, AuditEvent, AuditEvent.action == "outbox.retried") == 1
