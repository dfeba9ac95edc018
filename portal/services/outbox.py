"""The outbox: messages written in the caller's transaction, delivered after commit.

Delivery is made of steps that only flush (pick unsent messages, claim one, record a
failure or the recipients the server refused); portal.jobs runs them, one transaction per
message. A failed try is retried after 1, 2, 4, 8 ... minutes (at most MAX_BACKOFF), up to
MAX_ATTEMPTS tries; then the message waits for an admin's Retry. Nothing is dropped.

A message carries at most one link URL, and only through its link_id column: the composer
puts LINK where the URL goes, the stored body holds LINK_MARK there, and delivery replaces
that mark with a freshly signed URL of link_id. Text a person typed (a reason, a name) is
stored as typed, less any LINK_MARK character, so it can never become a URL.

Every email also has an HTML alternative: from the email's .html template (stored, escaped,
with the same mark), else made from the text at delivery. Either way the mark becomes
a link element whose address is the signed URL, escaped; nothing typed becomes markup.

A message may carry small text attachments (a campaign's .ics invitation), stored with it
in the same transaction (Attachment, the attachments column) and attached when it is sent.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from html import escape
from typing import Final

from sqlalchemy import ColumnElement, and_, func, or_, select, true, update
from sqlalchemy.orm import Session

from portal.domain.vocab import OutboxKind
from portal.models import OutboxMessage
from portal.services import audit, unique
from portal.services.actor import Actor
from portal.services.errors import NotFoundError, ServiceError
from portal.services.pagination import Page, paginate

MAX_ATTEMPTS = 5  # after that a message waits for an admin's Retry (its last_error says why)
FIRST_BACKOFF = timedelta(minutes=1)  # the wait after the first failed try; doubled after each
MAX_BACKOFF = timedelta(hours=6)
REFUSED = "refused: "  # how last_error starts on a message sent to all but these recipients
# OBJECT REPLACEMENT CHARACTER: stands for the link's URL in a stored body. Removed from
# every text part, so the only one in a body is the one the composer placed.
LINK_MARK: Final = "\ufffc"
LINK_GONE = "(this link no longer exists; ask us for a new one)"
MAX_ATTACHMENT_CHARS = 64_000  # an attachment is a small text file (an .ics), never a payload


@dataclass(frozen=True)
class Attachment:
    """A small text file sent with a message: stored as it is, attached when it is sent."""

    filename: str
    content_type: str  # text/*, parameters allowed: "text/calendar; method=PUBLISH"
    content: str

    def __post_init__(self) -> None:
        """Refuse what a message must not carry: non-text, a big file, a name with a path."""
        if not self.content_type.startswith("text/"):
            raise ValueError("an outbox attachment is text (text/...)")
        if len(self.content) > MAX_ATTACHMENT_CHARS:
            raise ValueError(f"an attachment holds at most {MAX_ATTACHMENT_CHARS} characters")
        if not self.filename or any(c in self.filename for c in '/\\"\r\n'):
            raise ValueError("an attachment's file name is a plain name")

    def stored(self) -> dict[str, str]:
        """The form kept in OutboxMessage.attachments."""
        return {
            "filename": self.filename,
            "content_type": self.content_type,
            "content": self.content,
        }


def stored_attachments(attachments: Sequence[Attachment]) -> list[dict[str, str]] | None:
    """ATTACHMENTS as the attachments column keeps them (None for none)."""
    return [a.stored() for a in attachments] or None


def attachments_of(message: OutboxMessage) -> list[Attachment]:
    """The files MESSAGE carries."""
    return [
        Attachment(row["filename"], row["content_type"], row["content"])
        for row in message.attachments or ()
    ]


class LinkSlot(Enum):
    """Where a composed body puts the URL of the message's link."""

    LINK = "link"


LINK: Final = LinkSlot.LINK
Body = str | Sequence[str | LinkSlot]


class OutboxState(StrEnum):
    """Where a message is on its way out."""

    WAITING = "waiting"  # not sent; no attempt failed (or an admin asked for a retry)
    SENT = "sent"
    FAILED = "failed"  # not sent; the last attempt failed (last_error says why)


def queue_email(
    session: Session,
    *,
    recipients: Sequence[str],
    subject: str,
    body: Body,
    link_id: str | None = None,
    dedupe_key: str | None = None,
    html: Body | None = None,
    attachments: Sequence[Attachment] = (),
) -> OutboxMessage | None:
    """Queue an email; with DEDUPE_KEY, a message already queued under it is not repeated.

    BODY is text, or parts of text with LINK once where the URL of LINK_ID goes (a message
    with LINK_ID must place it; one without must not). HTML, when given, is the HTML
    alternative, already escaped (emails.render makes it), placing LINK the same way;
    without it, delivery makes one from the text. ATTACHMENTS are sent with it.
    """
    if not recipients:
        return None
    stored_body = compose_body(body, link_id)
    stored_html = compose_body(html, link_id) if html is not None else None
    if dedupe_key is not None:
        existing = session.scalar(
            select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)
        )
        if existing is not None:
            return existing
    message = OutboxMessage(
        kind=OutboxKind.EMAIL.value,
        recipients=list(dict.fromkeys(recipients)),
        # Headers cannot carry line breaks: a name with one must not break the message.
        subject=" ".join(subject.split())[:300],
        body=stored_body,
        html_body=stored_html,
        link_id=link_id,
        dedupe_key=dedupe_key,
        attachments=stored_attachments(attachments),
    )
    if not unique.try_add(session, message):
        # A concurrent writer queued the same key first: theirs is the one.
        return session.scalar(select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key))
    return message


def compose_body(body: Body, link_id: str | None) -> str:
    """The stored form of BODY: its text as given (less LINK_MARK), LINK_MARK for LINK."""
    parts = [body] if isinstance(body, str) else list(body)
    slots = sum(1 for part in parts if part is LINK)
    if slots > 1 or (slots == 1) != (link_id is not None):
        raise ValueError("a message with a link puts LINK once in its body; others never")
    return "".join(
        LINK_MARK if isinstance(part, LinkSlot) else part.replace(LINK_MARK, "") for part in parts
    )


def render_body(body: str, link_url: str | None) -> str:
    """The body as sent: the link mark replaced by LINK_URL (made from the message's link_id).

    Without a URL (the link was deleted since) the mark becomes a short note instead.
    """
    head, mark, tail = body.partition(LINK_MARK)
    if not mark:
        return body
    return head + (link_url if link_url is not None else LINK_GONE) + tail.replace(LINK_MARK, "")


def text_to_html(body: str) -> str:
    """HTML for a stored text BODY: paragraphs at blank lines, line breaks kept, all escaped.

    The link mark passes through as it is, for render_html to replace.
    """
    paragraphs = [part.strip("\n") for part in body.replace("\r\n", "\n").split("\n\n")]
    return "\n".join(
        "<p>" + "<br>\n".join(escape(line) for line in paragraph.split("\n")) + "</p>"
        for paragraph in paragraphs
        if paragraph.strip()
    )


def render_html(message: OutboxMessage, link_url: str | None) -> str:
    """The HTML alternative as sent: its template's (or one made from the text), the link mark
    replaced by a link to LINK_URL (escaped), or by the LINK_GONE note without one."""
    html = message.html_body if message.html_body is not None else text_to_html(message.body)
    head, mark, tail = html.partition(LINK_MARK)
    if mark:
        if link_url is None:
            link = escape(LINK_GONE)
        else:
            href = escape(link_url, quote=True)
            link = f'<a href="{href}">{href}</a>'
        html = head + link + tail.replace(LINK_MARK, "")
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8"></head>\n'
        f'<body style="font-family: sans-serif; line-height: 1.4">\n{html}\n</body></html>\n'
    )


def display_body(message: OutboxMessage) -> str:
    """The body for staff eyes: the link named by its id, never a URL or token."""
    where = (
        f"[address of link {message.link_id}, signed when the email is sent]"
        if message.link_id is not None
        else f"[{LINK_GONE}]"
    )
    return message.body.replace(LINK_MARK, where)


def message_state(message: OutboxMessage) -> OutboxState:
    """WAITING, SENT or FAILED."""
    if message.sent_at is not None:
        return OutboxState.SENT
    if message.last_error is not None:
        return OutboxState.FAILED
    return OutboxState.WAITING


def partly_refused(message: OutboxMessage) -> bool:
    """Sent, but the server refused some of its recipients (last_error names them)."""
    return message.sent_at is not None and (message.last_error or "").startswith(REFUSED)


def needs_attention(message: OutboxMessage) -> bool:
    """Failed, or sent but partly refused: what an admin should look at."""
    return message_state(message) is OutboxState.FAILED or partly_refused(message)


def _needing_attention() -> ColumnElement[bool]:
    return or_(
        _in_state(OutboxState.FAILED),
        and_(OutboxMessage.sent_at.is_not(None), OutboxMessage.last_error.like(f"{REFUSED}%")),
    )


def _in_state(state: OutboxState) -> ColumnElement[bool]:
    if state is OutboxState.SENT:
        return OutboxMessage.sent_at.is_not(None)
    if state is OutboxState.FAILED:
        return and_(OutboxMessage.sent_at.is_(None), OutboxMessage.last_error.is_not(None))
    return and_(OutboxMessage.sent_at.is_(None), OutboxMessage.last_error.is_(None))


def list_messages(
    session: Session,
    *,
    state: OutboxState | None,
    page: int,
    per_page: int,
    attention: bool = False,
) -> Page[OutboxMessage]:
    """Messages, newest first, optionally only those in STATE, or (ATTENTION) only those
    that need attention: failed, or sent but partly refused."""
    stmt = select(OutboxMessage).order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    if state is not None:
        stmt = stmt.where(_in_state(state))
    if attention:
        stmt = stmt.where(_needing_attention())
    return paginate(session, stmt, page=page, per_page=per_page)


def count_needing_attention(session: Session) -> int:
    """How many messages failed or were partly refused."""
    query = select(func.count()).select_from(OutboxMessage).where(_needing_attention())
    return session.scalar(query) or 0


def pending_messages(session: Session, *, page: int, per_page: int) -> Page[OutboxMessage]:
    """Messages not yet delivered, oldest first."""
    stmt = select(OutboxMessage).where(OutboxMessage.sent_at.is_(None)).order_by(OutboxMessage.id)
    return paginate(session, stmt, page=page, per_page=per_page)


def count_unsent(session: Session) -> int:
    """How many emails wait in the outbox (failed ones included)."""
    return (
        session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.kind == "email")
        )
        or 0
    )


def get_message(session: Session, message_id: int) -> OutboxMessage:
    """The message with MESSAGE_ID, or NotFoundError."""
    message = session.get(OutboxMessage, message_id)
    if message is None:
        raise NotFoundError(f"No outbox message {message_id}.")
    return message


def backoff(attempts: int) -> timedelta:
    """The wait after the ATTEMPTS-th failed try: 1, 2, 4, 8 ... minutes, at most MAX_BACKOFF."""
    if attempts >= 20:  # 2**19 minutes is far beyond any cap; no huge numbers
        return MAX_BACKOFF
    wait: timedelta = FIRST_BACKOFF * (1 << max(attempts - 1, 0))
    return min(wait, MAX_BACKOFF)


def refused_text(refused: Mapping[str, tuple[int, bytes | str]]) -> str:
    """last_error for a message sent to all but REFUSED: "refused: a@b (550 no such user)"."""
    parts = []
    for address, (code, reply) in refused.items():
        said = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        parts.append(f"{address} ({code} {' '.join(said.split())})")
    return (REFUSED + "; ".join(parts))[:2000]


def retry(session: Session, actor: Actor, message: OutboxMessage) -> None:
    """Put a failed message back for the runner: attempts start again from zero.

    Refused for a message that was sent or has not failed (it is on its way already).
    """
    state = message_state(message)
    if state is OutboxState.SENT:
        raise ServiceError(f"Message #{message.id} was already sent; there is nothing to retry.")
    if state is OutboxState.WAITING:
        raise ServiceError(
            f"Message #{message.id} has not failed: it waits for the next delivery run."
        )
    error = message.last_error
    # Compare-and-swap: a runner may be sending it right now.
    result = session.execute(
        update(OutboxMessage)
        .where(
            OutboxMessage.id == message.id,
            OutboxMessage.sent_at.is_(None),
            OutboxMessage.last_error.is_not(None),
        )
        .values(attempts=0, last_error=None, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    session.refresh(message)
    if int(getattr(result, "rowcount", 0) or 0) != 1:
        raise ServiceError(f"Message #{message.id} changed meanwhile; reload the page.")
    audit.record(
        session,
        actor,
        "outbox.retried",
        object_type="outbox_message",
        object_id=message.id,
        summary=f"Asked to send email #{message.id} ({message.subject[:100]}) again "
        f"after: {(error or '')[:200]}",
        details={"message_id": message.id, "last_error": error},
    )


# Delivery steps: portal.jobs runs them, each message in its own transaction -------------


def _due(now: datetime) -> ColumnElement[bool]:
    """Not sent, tries left, and any wait after a failed try over at NOW."""
    return and_(
        OutboxMessage.sent_at.is_(None),
        OutboxMessage.attempts < MAX_ATTEMPTS,
        or_(OutboxMessage.next_attempt_at.is_(None), OutboxMessage.next_attempt_at <= now),
    )


def unsent_ids(
    session: Session, *, limit: int, now: datetime, skip: Collection[int] = ()
) -> list[int]:
    """Up to LIMIT emails due at NOW (not sent, tries left, no backoff pending), oldest first,
    none in SKIP."""
    query = (
        select(OutboxMessage.id)
        .where(
            _due(now),
            OutboxMessage.kind == "email",
            OutboxMessage.id.not_in(skip) if skip else true(),
        )
        .order_by(OutboxMessage.id)
        .limit(limit)
    )
    return list(session.scalars(query))


def claim_message(session: Session, message_id: int, *, now: datetime) -> OutboxMessage | None:
    """Compare-and-swap on sent_at before sending: the message, or None if another runner has
    it (or it is no longer due: another runner's try failed meanwhile and set a wait).

    The claim counts an attempt. Sent or not, the caller ends the transaction: committed
    after sending, the claim is the record that the message went out.
    """
    claimed = session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message_id, _due(now))
        .values(sent_at=now, attempts=OutboxMessage.attempts + 1, next_attempt_at=None)
        .execution_options(synchronize_session=False)
    )
    if int(getattr(claimed, "rowcount", 0) or 0) != 1:
        return None
    # Read afresh: the session may hold an older copy (its link since deleted, say).
    message = session.get(OutboxMessage, message_id, populate_existing=True)
    assert message is not None  # noqa: S101  (just claimed)
    return message


def record_failure(
    session: Session, message: OutboxMessage, error: Exception, *, now: datetime
) -> str:
    """Put a claimed MESSAGE that could not be sent back in line with why, to be tried again
    after its backoff (none after the last try: it waits for Retry); returns the reason."""
    reason = f"{type(error).__name__}: {error}"[:2000]
    session.execute(
        update(OutboxMessage)
        .where(OutboxMessage.id == message.id)
        .values(sent_at=None, last_error=reason, next_attempt_at=now + backoff(message.attempts))
    )  # the session's copy of the message is updated too (a web request may read it next)
    return reason


def record_refused(
    session: Session, message_id: int, refused: Mapping[str, tuple[int, bytes | str]]
) -> str:
    """A claimed message the server took for all but REFUSED: it stays sent (the others have
    it; it is never sent to them again) and last_error names who did not; returns that text."""
    reason = refused_text(refused)
    session.execute(
        update(OutboxMessage).where(OutboxMessage.id == message_id).values(last_error=reason)
    )
    return reason
