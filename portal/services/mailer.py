"""Sending outbox emails over SMTP (after commit, from the runner; never from a web request)."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

from portal.services.outbox import Attachment

# Recipients the server refused while taking the message for the others: address -> (code, reply)
Refused = dict[str, tuple[int, bytes]]


@dataclass(frozen=True)
class SmtpSettings:
    """Where and how to send."""

    host: str
    port: int
    tls: str  # none, starttls or tls
    user: str | None
    password: str | None
    sender: str
    timeout: float = 30.0  # seconds for each step (connect, each command); slower fails
    reply_to: str | None = None  # the Reply-To header; None: replies go to the sender

    @classmethod
    def from_config(cls, config: Any) -> SmtpSettings:
        """Read the PORTAL_SMTP_* settings."""
        return cls(
            host=config["SMTP_HOST"],
            port=int(config["SMTP_PORT"]),
            tls=config["SMTP_TLS"],
            user=config["SMTP_USER"],
            password=config["SMTP_PASSWORD"],
            sender=config["MAIL_FROM"],
            timeout=float(config.get("SMTP_TIMEOUT") or 30),
            reply_to=config.get("MAIL_REPLY_TO") or None,
        )


class Mailer:
    """Sends messages over one SMTP connection, opened at the first message."""

    def __init__(self, settings: SmtpSettings) -> None:
        """Remember the settings; nothing connects yet."""
        self.settings = settings
        self._smtp: smtplib.SMTP | None = None

    def close(self) -> None:
        """Close the connection if one is open."""
        if self._smtp is not None:
            try:
                self._smtp.quit()
            except (OSError, smtplib.SMTPException):
                self._smtp.close()
            self._smtp = None

    def send(
        self,
        recipients: list[str],
        subject: str,
        body: str,
        html: str | None = None,
        attachments: Sequence[Attachment] = (),
    ) -> Refused:
        """Send one email, plain text with HTML as its alternative (multipart/alternative)
        when HTML is given, and ATTACHMENTS after them (then multipart/mixed); answers the
        recipients the server refused (the others have it).

        Raises smtplib/OSError errors for the caller to record: SMTPRecipientsRefused when
        the server refused every recipient, TimeoutError when it is slower than the timeout.
        """
        message = EmailMessage()
        message["From"] = self.settings.sender
        message["To"] = ", ".join(recipients)
        message["Subject"] = subject
        if self.settings.reply_to:
            message["Reply-To"] = self.settings.reply_to
        message["Date"] = formatdate(localtime=False)
        message["Message-ID"] = make_msgid(domain=self.settings.sender.rpartition("@")[2] or None)
        message.set_content(body)
        if html is not None:
            message.add_alternative(html, subtype="html")
        for attachment in attachments:
            attach(message, attachment)
        if self._smtp is None:
            self._smtp = self._connect()
        try:
            refused = self._smtp.send_message(message)
        except (OSError, smtplib.SMTPServerDisconnected):
            # A connection dropped between messages: drop it; the caller records the failure.
            self._smtp.close()
            self._smtp = None
            raise
        return dict(refused)

    def _connect(self) -> smtplib.SMTP:
        settings = self.settings
        if settings.tls == "tls":
            secure = smtplib.SMTP_SSL(
                settings.host,
                settings.port,
                timeout=settings.timeout,
                context=ssl.create_default_context(),
            )
            if settings.user:
                secure.login(settings.user, settings.password or "")
            return secure
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
        if settings.tls == "starttls":
            smtp.starttls(context=ssl.create_default_context())
        if settings.user:
            smtp.login(settings.user, settings.password or "")
        return smtp


def attach(message: EmailMessage, attachment: Attachment) -> None:
    """Add ATTACHMENT (text) to MESSAGE, its content type's parameters kept (method=PUBLISH)."""
    kind, *parameters = (part.strip() for part in attachment.content_type.split(";"))
    subtype = kind.partition("/")[2] or "plain"
    params = dict(
        (name.strip().lower(), value.strip().strip('"'))
        for name, _, value in (p.partition("=") for p in parameters if "=" in p)
        if name.strip().lower() != "charset"
    )
    message.add_attachment(
        attachment.content, subtype=subtype, filename=attachment.filename, params=params
    )
