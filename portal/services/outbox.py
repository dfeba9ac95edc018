"""The outbox: messages written in the caller's transaction, delivered after commit.

A message carries at most one link URL, and only through its link_id column: the composer
puts LINK where the URL goes, the stored body holds LINK_MARK there, and delivery replaces
that mark with a freshly signed URL of link_id. Text a person typed (a reason, a name) is
stored as typed, less any LINK_MARK character, so it can never become a URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import Enum
from typing import Final

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.models import OutboxMessage
from portal.services.pagination import Page, paginate

MAX_ATTEMPTS = 5  # after that a message is not tried again (its last_error says why)
# OBJECT REPLACEMENT CHARACTER: stands for the link's URL in a stored body. Removed from
# every text part, so the only one in a body is the one the composer placed.
LINK_MARK: Final = "\ufffc"
LINK_GONE = "(this link no longer exists; ask us for a new one)"


class LinkSlot(Enum):
    """Where a composed body puts the URL of the message's link."""

    LINK = "link"


LINK: Final = LinkSlot.LINK
Body = str | Sequence[str | LinkSlot]


def queue_email(
    session: Session,
    *,
    recipients: Sequence[str],
    subject: str,
    body: Body,
    link_id: str | None = None,
    dedupe_key: str | None = None,
) -> OutboxMessage | None:
    """Queue an email; with DEDUPE_KEY, a message already queued under it is not repeated.

    BODY is text, or parts of text with LINK once where the URL of LINK_ID goes (a message
    with LINK_ID must place it; one without must not).
    """
    if not recipients:
        return None
    stored_body = compose_body(body, link_id)
    if dedupe_key is not None:
        existing = session.scalar(
            select(OutboxMessage).where(OutboxMessage.dedupe_key == dedupe_key)
        )
        if existing is not None:
            return existing
    message = OutboxMessage(
        kind="email",
        recipients=list(dict.fromkeys(recipients)),
        # Headers cannot carry line breaks: a name with one must not break the message.
        subject=" ".join(subject.split())[:300],
        body=stored_body,
        link_id=link_id,
        dedupe_key=dedupe_key,
    )
    try:
        with session.begin_nested():
            session.add(message)
            session.flush()
    except IntegrityError:
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
