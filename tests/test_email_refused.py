"""A message the SMTP server took for some recipients and refused for others: sent, the
refused recorded, `portal run-due` exits 1 saying so, the Outbox page flags it."""

from __future__ import annotations

from sqlalchemy import select, update

from portal.models import OutboxMessage
from portal.services import outbox
from tests.conftest import reconfigure
from tests.test_email_delivery import RefusingHandler, free_port, queue, smtp_on


def test_a_partly_refused_message_is_sent_recorded_and_run_due_exits_1(
    app, runner, session, admin_client
) -> None:
    handler = RefusingHandler({"gone@globex.example"})
    port = free_port()
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    message = queue(session, recipients=["edi@globex.example", "gone@globex.example"])
    fine = queue(session, subject="All fine", recipients=["ops@globex.example"])

    with smtp_on(handler, port):
        result = runner.invoke(args=["run-due"])
        again = runner.invoke(args=["run-due"])

    assert result.exit_code == 1, result.output
    assert "sent 2 emails, 0 could not be sent" in result.stdout
    (line,) = result.stderr.splitlines()
    assert line == (
        "1 message partly refused: gone@globex.example (550 5.1.1 no such user here) "
        "(the other recipients have it)"
    )
    # The next run has nothing new to say: the refusal is old news, the others have it once.
    assert again.exit_code == 0, again.output
    assert sorted(tuple(e.rcpt_tos) for e in handler.messages) == [
        ("edi@globex.example",),
        ("ops@globex.example",),
    ]
    session.refresh(message)
    assert outbox.message_state(message) is outbox.OutboxState.SENT
    assert outbox.partly_refused(message)
    assert outbox.needs_attention(message)
    assert message.last_error == "refused: gone@globex.example (550 5.1.1 no such user here)"

    # The Outbox page: a badge, and the "needs attention" filter lists it (not the fine one).
    listing = admin_client.get("/outbox").get_data(as_text=True)
    assert "partly refused</span>" in listing
    assert 'needs attention <span class="badge bad">1</span>' in listing
    attention = admin_client.get("/outbox?state=attention").get_data(as_text=True)
    assert f"#{message.id}</a>" in attention
    assert f"#{fine.id}</a>" not in attention
    assert "All fine" not in attention
    detail = admin_client.get(f"/outbox/{message.id}").get_data(as_text=True)
    assert "partly refused" in detail


def test_failed_messages_need_attention_too(admin_client, session) -> None:
    message = queue(session, subject="Broken")
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id)
        .values(attempts=1, last_error="TimeoutError: timed out")
    )
    session.commit()
    page = admin_client.get("/outbox?state=attention").get_data(as_text=True)
    assert f"#{message.id}</a>" in page
    assert outbox.count_needing_attention(session) == 1
    assert session.scalars(select(OutboxMessage)).one().sent_at is None


def test_several_partly_refused_messages_are_counted_in_one_line(app, runner, session) -> None:
    handler = RefusingHandler({"gone@globex.example"})
    port = free_port()
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    for n in range(2):
        queue(session, subject=f"n{n}", recipients=[f"e{n}@globex.example", "gone@globex.example"])

    with smtp_on(handler, port):
        result = runner.invoke(args=["run-due"])

    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        "2 messages partly refused; the last: gone@globex.example (550 5.1.1 no such user "
        "here) (the other recipients have them)"
    ]


def test_the_scheduler_says_so_on_stderr_and_keeps_going(app, runner, session) -> None:
    handler = RefusingHandler({"gone@globex.example"})
    port = free_port()
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port)
    queue(session, recipients=["edi@globex.example", "gone@globex.example"])

    with smtp_on(handler, port):
        result = runner.invoke(args=["scheduler", "--iterations", "1", "--interval", "1"])

    assert result.exit_code == 0, result.output
    assert "sent 1, unsent 0" in result.stdout
    assert "1 message partly refused: gone@globex.example (550 5.1.1" in result.stderr
