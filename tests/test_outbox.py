"""The outbox: link URLs only from the link column, email off until configured."""

from __future__ import annotations

import socket
from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from portal.config import DEFAULTS
from portal.models import OutboxMessage
from portal.services import outbox, runner
from portal.timeutil import utcnow
from tests import factories


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


def delivered_bodies(handler) -> list[str]:
    """The text of each email the SMTP server received, decoded."""
    parsed = [message_from_bytes(e.content, policy=policy.default) for e in handler.messages]
    return [message.get_content() for message in parsed]  # type: ignore[attr-defined]


# Link URLs come only from the link column ------------------------------------------------


def test_typed_link_marker_in_rejection_reason_never_becomes_a_url(
    app, runner, session, client_as, smtp_server
) -> None:
    handler, port = smtp_server
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port)
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
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=port)
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

    delivery = runner.deliver_outbox(
        session, lambda _to, _subject, body: sent.append(body), lambda _id: "URL", now=utcnow()
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
    app.config.update(SMTP_HOST=None)
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
    app.config.update(SMTP_HOST="127.0.0.1", SMTP_PORT=closed_port())
    queue(session)
    session.commit()

    result = runner.invoke(args=["run-due"])

    assert result.exit_code == 1
    assert "1 could not be sent" in result.output
    (reason,) = [line for line in result.output.splitlines() if line.startswith("Last error: ")]
    assert "ConnectionRefusedError" in reason


def test_scheduler_with_email_off_says_once_how_many_wait(app, runner, session) -> None:
    app.config.update(SMTP_HOST="")
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
