"""Work done after commit: outgoing email, due side effects, webhook deliveries."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    LargeBinary,
    PrimaryKeyConstraint,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from portal.domain.vocab import (
    SUBSCRIBABLE_EVENTS,
    OutboxKind,
    WebhookEvent,
)
from portal.models.base import Base, BigIntId, UTCDateTime, one_of
from portal.timeutil import utcnow

if TYPE_CHECKING:
    from portal.models.accounts import User


class OutboxMessage(Base):
    """An email written in the same transaction as its cause, delivered after commit."""

    __tablename__ = "outbox_messages"
    __table_args__ = (
        CheckConstraint(one_of("kind", OutboxKind), name="kind"),
        UniqueConstraint("dedupe_key"),
        Index(None, "sent_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default=OutboxKind.EMAIL.value)
    recipients: Mapped[list[str]] = mapped_column(JSON)
    subject: Mapped[str] = mapped_column(String(300))
    # Plain text; at most one outbox.LINK_MARK, where the URL of link_id goes when sent.
    body: Mapped[str] = mapped_column(Text)
    # HTML from the email's .html template, escaped, with the same LINK_MARK; None: made from
    # the plain text at delivery.
    html_body: Mapped[str | None] = mapped_column(Text)
    # The one link whose URL the message carries: set by the composer, never read from text.
    link_id: Mapped[str | None] = mapped_column(ForeignKey("share_links.id", ondelete="SET NULL"))
    # Same key, same message: queuing twice is a no-op.
    dedupe_key: Mapped[str | None] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    # Unsent: why the last try failed. Sent: the recipients the server refused, if any.
    last_error: Mapped[str | None] = mapped_column(Text)
    # After a failed try, not before this (exponential backoff); None: at the next run.
    next_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Files sent with it (an .ics invitation): [{filename, content_type, content}], text
    # only and small (outbox.Attachment); None: none.
    attachments: Mapped[list[dict[str, str]] | None] = mapped_column(JSON)


class SideEffect(Base):
    """Something to do once when its time comes; the unique key makes it happen only once."""

    __tablename__ = "side_effects"
    __table_args__ = (
        UniqueConstraint("key"),
        Index("ix_side_effects_due", "done_at", "due_at"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime] = mapped_column(UTCDateTime)
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # Which runner did it, for the operator's eyes.
    done_by: Mapped[str | None] = mapped_column(String(200))
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class WebhookEndpoint(Base):
    """A URL an admin registered to receive signed JSON about chosen events.

    The signing secret is shown once; it is kept encrypted under the key ring (the portal
    must sign with it, so it cannot be a hash). Removing an endpoint keeps it and its
    delivery log; nothing new is sent to it.
    """

    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(String(2000))
    # AES-GCM blob from portal.domain.keys, bound to this row's id; never the plain secret.
    encrypted_secret: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    created_by: Mapped[User | None] = relationship()
    subscriptions: Mapped[list[WebhookSubscription]] = relationship(
        cascade="all, delete-orphan", order_by="WebhookSubscription.event"
    )

    @property
    def events(self) -> list[str]:
        """The events the endpoint receives, sorted."""
        return sorted(subscription.event for subscription in self.subscriptions)


class WebhookSubscription(Base):
    """One event an endpoint receives."""

    __tablename__ = "webhook_subscriptions"
    __table_args__ = (
        PrimaryKeyConstraint("endpoint_id", "event"),
        CheckConstraint(one_of("event", SUBSCRIBABLE_EVENTS), name="event"),
        Index(None, "event"),
    )

    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))


class WebhookDelivery(Base):
    """One event for one endpoint, written with its cause, sent by the runner until it lands.

    A runner claims it with a compare-and-swap on claimed_until (a lease), posts it outside
    any transaction, then records the outcome; failures wait next_attempt_at (exponential
    backoff) and after MAX_ATTEMPTS wait for an admin's Retry. Never deleted.
    """

    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        CheckConstraint(one_of("event", WebhookEvent), name="event"),
        CheckConstraint("attempts >= 0", name="attempts_non_negative"),
        Index("ix_webhook_deliveries_due", "delivered_at", "next_attempt_at"),
        Index(None, "endpoint_id", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    endpoint_id: Mapped[int] = mapped_column(ForeignKey("webhook_endpoints.id", ondelete="CASCADE"))
    event: Mapped[str] = mapped_column(String(32))
    # The event's facts (AS2 IDs, fingerprints, times): never a private key or a link token.
    data: Mapped[dict[str, Any]] = mapped_column(JSON)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime)
    attempts: Mapped[int] = mapped_column(default=0)
    # The lease of the runner sending it right now (another runner leaves it alone until then).
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    claimed_by: Mapped[str | None] = mapped_column(String(200))
    last_attempt_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_status: Mapped[int | None] = mapped_column()
    last_error: Mapped[str | None] = mapped_column(Text)
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    endpoint: Mapped[WebhookEndpoint] = relationship()
