"""The outbox: messages written in the caller's transaction, delivered after commit."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from portal.models import OutboxMessage
from portal.services.pagination import Page, paginate


def queue_email(
    session: Session,
    *,
    recipients: Sequence[str],
    subject: str,
    body: str,
    dedupe_key: str | None = None,
) -> OutboxMessage | None:
    """Queue an email; with DEDUPE_KEY, a message already queued under it is not repeated."""
    if not recipients:
        return None
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
        body=body,
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


_LINK_PLACEHOLDER = re.compile(r"\[\[link:([A-Za-z0-9_-]{16,32})\]\]")


def link_placeholder(link_id: str) -> str:
    """Stands for a link's URL in a queued body: the token is made at delivery, never stored."""
    return f"[[link:{link_id}]]"


def render_body(body: str, url_for_link: Callable[[str], str]) -> str:
    """The body as sent: each link placeholder replaced by the link's URL."""
    return _LINK_PLACEHOLDER.sub(lambda match: url_for_link(match.group(1)), body)


def pending_messages(session: Session, *, page: int, per_page: int) -> Page[OutboxMessage]:
    """Messages not yet delivered, oldest first."""
    stmt = select(OutboxMessage).where(OutboxMessage.sent_at.is_(None)).order_by(OutboxMessage.id)
    return paginate(session, stmt, page=page, per_page=per_page)
