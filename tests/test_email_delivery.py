"""Email that loses nothing: a real SMTP server on loopback (aiosmtpd), down, refusing, slow,
and two runners at once; failed messages wait 1, 2, 4 ... minutes before their next try."""

from __future__ import annotations

import asyncio
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from jinja2 import DictLoader
from sqlalchemy import select
from sqlalchemy.orm import Session

from portal import jobs
from portal.assets import asset_dir
from portal.config import DEFAULTS, ConfigError, validate
from portal.database import make_engine
from portal.migrate import upgrade
from portal.models import OutboxMessage
from portal.services import emails, outbox
from portal.services.mailer import Mailer, SmtpSettings
from portal.settings import Settings
from portal.timeutil import utcnow
from tests import factories
from tests.conftest import CollectingHandler, reconfigure

REPLY_TO = "support@acme.example"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def smtp_on(handler: object, port: int) -> Iterator[None]:
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield
    finally:
        controller.stop()


def mailer(port: int, *, timeout: float = 5.0) -> Mailer:
    return Mailer(
        SmtpSettings(
            host="127.0.0.1", port=port, tls="none", user=None, password=None,
            sender="portal@acme.example", timeout=timeout, reply_to=REPLY_TO,
        )
    )  # fmt: skip


def deliver(session: Session, port: int, *, now: Any, timeout: float = 5.0) -> jobs.Delivery:
    sender = mailer(port, timeout=timeout)
    try:
        return jobs.deliver_outbox(session, sender.send, lambda link_id: f"URL/{link_id}", now=now)
    finally:
        sender.close()


def parsed(envelope: Any) -> EmailMessage:
    return cast(EmailMessage, message_from_bytes(envelope.content, policy=policy.default))


def queue(session: Session, subject: str = "Hello", recipients: list[str] | None = None):
    message = outbox.queue_email(
        session,
        recipients=recipients or ["edi@globex.example", "ops@globex.example"],
        subject=subject,
        body="Body text\n",
    )
    assert message is not None
    session.commit()
    return message


class RefusingHandler(CollectingHandler):
    """Refuses the recipients in REFUSE (550), takes the others."""

    def __init__(self, refuse: set[str]) -> None:
        super().__init__()
        self.refuse = refuse

    async def handle_RCPT(  # noqa: N802  (aiosmtpd's hook name)
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: Any
    ) -> str:
        if address in self.refuse:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"


class SlowHandler(CollectingHandler):
    """Answers DATA only after DELAY seconds."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        await asyncio.sleep(self.delay)
        return await super().handle_DATA(server, session, envelope)


# Settings ----------------------------------------------------------------------------------


def test_reply_to_is_optional_and_must_be_one_email_address(app) -> None:
    assert DEFAULTS["MAIL_REPLY_TO"] is None
    assert Settings.from_config({**app.config, "SMTP_HOST": "h"}).smtp.reply_to is None  # type: ignore[union-attr]
    validate({**app.config, "MAIL_REPLY_TO": REPLY_TO})
    for bad in ("support", "a@b", "a@b.example, c@d.example", "a@b.example\r\nBcc: x@y.example"):
        with pytest.raises(ConfigError, match="PORTAL_MAIL_REPLY_TO"):
            validate({**app.config, "MAIL_REPLY_TO": bad})


def test_smtp_timeout_is_a_number_of_seconds(app) -> None:
    assert DEFAULTS["SMTP_TIMEOUT"] == 30
    settings = Settings.from_config({**app.config, "SMTP_HOST": "h", "SMTP_TIMEOUT": 2})
    assert settings.smtp is not None
    assert settings.smtp.timeout == 2.0
    for bad in (0, -1, "soon", True, 301):
        with pytest.raises(ConfigError, match="PORTAL_SMTP_TIMEOUT"):
            validate({**app.config, "SMTP_TIMEOUT": bad})


def test_run_due_sends_with_reply_to_to_all_recipients(app, runner, session, smtp_server) -> None:
    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port, MAIL_REPLY_TO=REPLY_TO)
    queue(session, subject="Certificate approved")

    result = runner.invoke(args=["run-due"])

    assert result.exit_code == 0, result.output
    (envelope,) = handler.messages
    assert sorted(envelope.rcpt_tos) == ["edi@globex.example", "ops@globex.example"]
    message = parsed(envelope)
    assert message["Reply-To"] == REPLY_TO
    assert message["Subject"] == "Certificate approved"


# Backoff: down, then up ------------------------------------------------------------------------


def test_server_down_then_up_is_retried_only_after_the_backoff(session) -> None:
    port = free_port()  # nobody listens yet: connection refused
    message = queue(session)
    start = utcnow()

    down = deliver(session, port, now=start)

    assert (down.sent, down.failed) == (0, 1)
    assert down.last_error is not None
    assert "ConnectionRefusedError" in down.last_error
    session.refresh(message)
    assert (message.attempts, message.sent_at) == (1, None)
    assert message.next_attempt_at == start + timedelta(minutes=1)
    assert outbox.message_state(message) is outbox.OutboxState.FAILED

    handler = CollectingHandler()
    with smtp_on(handler, port):
        early = deliver(session, port, now=start + timedelta(seconds=59))
        assert (early.sent, early.failed) == (0, 0)  # its wait is not over: not even tried
        assert handler.messages == []
        session.refresh(message)
        assert message.attempts == 1

        later = deliver(session, port, now=start + timedelta(minutes=1))

    assert (later.sent, later.failed) == (1, 0)
    assert len(handler.messages) == 1
    session.refresh(message)
    assert message.sent_at is not None
    assert message.attempts == 2
    assert message.next_attempt_at is None


def test_waits_double_after_each_failure_then_it_waits_for_retry_never_dropped(session) -> None:
    port = free_port()
    message = queue(session)
    now = utcnow()
    waits = []
    for _ in range(outbox.MAX_ATTEMPTS):
        assert deliver(session, port, now=now).failed == 1
        session.refresh(message)
        if message.next_attempt_at is not None:
            waits.append(message.next_attempt_at - now)
            now = message.next_attempt_at

    assert waits[:4] == [timedelta(minutes=m) for m in (1, 2, 4, 8)]
    assert message.attempts == outbox.MAX_ATTEMPTS
    assert deliver(session, port, now=now + timedelta(days=30)).failed == 0  # given up on
    assert session.get(OutboxMessage, message.id) is not None  # kept, failed, for Retry
    assert outbox.message_state(message) is outbox.OutboxState.FAILED


def test_backoff_is_capped() -> None:
    assert outbox.backoff(1) == timedelta(minutes=1)
    assert outbox.backoff(4) == timedelta(minutes=8)
    assert outbox.backoff(10) == outbox.MAX_BACKOFF == timedelta(hours=6)
    assert outbox.backoff(1000) == outbox.MAX_BACKOFF


def test_admin_retry_clears_the_wait(admin_client, session) -> None:
    message = queue(session)
    now = utcnow()
    deliver(session, free_port(), now=now)

    assert admin_client.post(f"/outbox/{message.id}/retry").status_code == 302

    session.refresh(message)
    assert (message.attempts, message.last_error, message.next_attempt_at) == (0, None, None)


def test_outbox_page_says_when_a_failed_message_is_tried_next(admin_client, session) -> None:
    message = queue(session)
    deliver(session, free_port(), now=utcnow())

    page = admin_client.get("/outbox?state=failed").get_data(as_text=True)

    assert "ConnectionRefusedError" in page
    assert "next try" in page
    session.refresh(message)
    assert message.next_attempt_at is not None


# Refused recipients, a slow server ---------------------------------------------------------


def test_one_refused_recipient_others_get_it_once_and_the_refusal_is_shown(
    admin_client, session
) -> None:
    handler = RefusingHandler({"gone@globex.example"})
    port = free_port()
    message = queue(session, recipients=["edi@globex.example", "gone@globex.example"])
    now = utcnow()

    with smtp_on(handler, port):
        first = deliver(session, port, now=now)
        again = deliver(session, port, now=now + timedelta(days=1))

    assert (first.sent, first.failed) == (1, 0)
    assert (again.sent, again.failed) == (0, 0)  # the good recipient gets it once
    (envelope,) = handler.messages
    assert envelope.rcpt_tos == ["edi@globex.example"]
    session.refresh(message)
    assert outbox.message_state(message) is outbox.OutboxState.SENT
    assert message.last_error == "refused: gone@globex.example (550 5.1.1 no such user here)"
    page = admin_client.get("/outbox?state=sent").get_data(as_text=True)
    assert "refused: gone@globex.example (550 5.1.1 no such user here)" in page
    detail = admin_client.get(f"/outbox/{message.id}").get_data(as_text=True)
    assert "gone@globex.example (550" in detail


def test_every_recipient_refused_is_a_failure_with_backoff(session) -> None:
    handler = RefusingHandler({"a@globex.example", "b@globex.example"})
    port = free_port()
    message = queue(session, recipients=["a@globex.example", "b@globex.example"])
    now = utcnow()

    with smtp_on(handler, port):
        result = deliver(session, port, now=now)

    assert (result.sent, result.failed) == (0, 1)
    assert handler.messages == []
    session.refresh(message)
    assert message.sent_at is None
    assert message.last_error is not None
    assert message.last_error.startswith("SMTPRecipientsRefused")
    assert "550" in message.last_error
    assert message.next_attempt_at == now + timedelta(minutes=1)


def test_a_slow_server_is_a_failure_with_backoff_and_the_next_message_still_goes(
    session,
) -> None:
    slow = SlowHandler(delay=3)
    port = free_port()
    message = queue(session)
    now = utcnow()

    with smtp_on(slow, port):
        result = deliver(session, port, now=now, timeout=0.5)

    assert (result.sent, result.failed) == (0, 1)
    session.refresh(message)
    assert message.sent_at is None
    assert message.last_error is not None
    assert "timed out" in message.last_error
    assert message.next_attempt_at == now + timedelta(minutes=1)


# Two runners at once ----------------------------------------------------------------------


MESSAGES = 50


def test_two_runners_at_once_deliver_each_message_exactly_once(
    fresh_databases, smtp_server
) -> None:
    handler, port = smtp_server
    url = fresh_databases.new_url()
    engine = make_engine(url)
    upgrade(engine)
    with Session(engine) as session:
        for number in range(MESSAGES):
            outbox.queue_email(
                session, recipients=[f"p{number}@globex.example"], subject=f"Notice {number}",
                body=f"Body {number}\n",
            )  # fmt: skip
        session.commit()
    now = utcnow()
    start = threading.Barrier(2)
    results: list[jobs.Delivery] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            with Session(engine) as session:
                start.wait(timeout=30)
                results.append(deliver(session, port, now=now))
        except BaseException as error:  # reported by the test below
            errors.append(error)

    runners = [threading.Thread(target=run) for _ in range(2)]
    for thread in runners:
        thread.start()
    for thread in runners:
        thread.join(timeout=120)

    try:
        assert errors == []
        assert sum(result.sent for result in results) == MESSAGES
        assert sum(result.failed for result in results) == 0
        subjects = sorted(parsed(envelope)["Subject"] for envelope in handler.messages)
        assert subjects == sorted(f"Notice {number}" for number in range(MESSAGES))
        with Session(engine) as session:
            rows = session.scalars(select(OutboxMessage)).all()
            assert len(rows) == MESSAGES
            assert all(row.sent_at is not None and row.attempts == 1 for row in rows)
    finally:
        engine.dispose()


# HTML bodies ------------------------------------------------------------------------------


def parts_of(envelope: Any) -> tuple[str, str]:
    message = parsed(envelope)
    assert message.get_content_type() == "multipart/alternative"
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    assert text is not None
    assert html is not None
    crlf = "\r\n"  # as the wire carries them
    return text.get_content().replace(crlf, "\n"), html.get_content().replace(crlf, "\n")


def test_a_link_email_has_text_and_html_parts_with_the_link_built_at_delivery(
    app, runner, session, operator_client, smtp_server
) -> None:
    handler, port = smtp_server
    reconfigure(app, SMTP_HOST="127.0.0.1", SMTP_PORT=port, MAIL_REPLY_TO=REPLY_TO)
    other = factories.share_link(session, factories.partner(session))
    typed = f'Globex <script>alert(1)</script> & "Co" [[link:{other.id}]] {outbox.LINK_MARK}'
    partner = factories.partner(session, name=typed)
    link = factories.share_link(session, partner)
    session.commit()

    assert operator_client.post(f"/partners/{partner.id}/links/{link.id}/email").status_code == 302
    session.commit()
    result = runner.invoke(args=["run-due"])

    assert result.exit_code == 0, result.output
    (envelope,) = [e for e in handler.messages if b"Open this link" in e.content]
    assert parsed(envelope)["Reply-To"] == REPLY_TO
    text, html = parts_of(envelope)
    base = app.config["BASE_URL"]
    (url,) = re.findall(rf"{re.escape(base)}/s/[^\s<\"]+", text)
    assert url.startswith(f"{base}/s/{link.id}.")
    assert f'<a href="{url}">{url}</a>' in html  # the same URL, from link_id, in both parts
    assert html.count("<a ") == 1
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; &#34;Co&#34;" in html  # typed: escaped
    assert f"/s/{other.id}" not in html + text
    assert outbox.LINK_MARK not in html + text


def test_without_an_html_template_the_html_is_the_text_escaped_in_paragraphs(
    smtp_server, session
) -> None:
    handler, port = smtp_server
    outbox.queue_email(
        session, recipients=["edi@globex.example"], subject="Rejected",
        body="Hello,\n\nReason: <b>bad</b> & wrong\nsecond line\n\nBye\n",
    )  # fmt: skip
    session.commit()

    assert deliver(session, port, now=utcnow()).sent == 1

    text, html = parts_of(handler.messages[0])
    assert text == "Hello,\n\nReason: <b>bad</b> & wrong\nsecond line\n\nBye\n"
    assert "<p>Hello,</p>" in html
    assert "<p>Reason: &lt;b&gt;bad&lt;/b&gt; &amp; wrong<br>\nsecond line</p>" in html
    assert "<p>Bye</p>" in html
    assert "<pre" not in html


def test_the_html_of_a_deleted_link_says_so_and_has_no_link(session) -> None:
    link = factories.share_link(session, factories.partner(session))
    outbox.queue_email(
        session, recipients=["edi@globex.example"], subject="Your link",
        body=["Open: ", outbox.LINK, "\n"], link_id=link.id,
    )  # fmt: skip
    session.delete(link)
    session.commit()
    sent: list[str] = []

    jobs.deliver_outbox(
        session, lambda _to, _subject, _body, html: sent.append(html), str, now=utcnow()
    )

    (html,) = sent
    assert outbox.LINK_GONE in html
    assert "<a " not in html


def test_an_html_template_is_escaped_and_must_place_the_link_like_the_text(monkeypatch) -> None:
    environment = emails.build_environment(
        DictLoader(
            {
                "emails/t.txt": "{% set subject %}S{% endset %}{{ a }} {{ link_url }}\n",
                "emails/t.html": "<p>{{ a }}</p><p>{{ link_url }}</p>\n",
                "emails/n.txt": "{% set subject %}S{% endset %}{{ a }} {{ link_url }}\n",
                "emails/n.html": "<p>{{ a }}</p>\n",
            }
        )
    )
    monkeypatch.setattr(emails, "_environment", lambda: environment)

    email = emails.render("t", a="<i>x</i> & y")

    assert email.html == ("<p>&lt;i&gt;x&lt;/i&gt; &amp; y</p><p>", outbox.LINK, "</p>\n")
    assert email.body == ("<i>x</i> & y ", outbox.LINK, "\n")
    with pytest.raises(ValueError, match="both place the link"):
        emails.render("n", a="x")


def test_every_html_email_template_has_its_text_one() -> None:
    folder = asset_dir("templates") / "emails"
    # _layout.html is the frame the others extend, no email of its own.
    html = sorted(path.stem for path in folder.glob("*.html") if not path.stem.startswith("_"))
    assert "share_link" in html
    assert all((folder / f"{name}.txt").is_file() for name in html)
