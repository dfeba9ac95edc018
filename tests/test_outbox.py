"""The outbox: link URLs only from the link column."""

from __future__ import annotations

from email import message_from_bytes, policy

import pytest
from sqlalchemy import select

from portal.models import OutboxMessage
from portal.services import outbox, runner
from portal.timeutil import utcnow
from tests import factories


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

    delivered, _failed = runner.deliver_outbox(
        session, lambda _to, _subject, body: sent.append(body), lambda _id: "URL", now=utcnow()
    )

    assert delivered == 1
    assert sent == [f"Open: {outbox.LINK_GONE}\n"]
