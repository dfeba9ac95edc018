"""The audit trail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    ForeignKey,
    Index,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from portal.models.base import Base, BigIntId, UTCDateTime
from portal.timeutil import utcnow


class AuditEvent(Base):
    """An append-only record of something a person, a partner or the system did."""

    __tablename__ = "audit_events"
    __table_args__ = (
        Index(None, "occurred_at"),
        # The audit page's filters, each ending in the id it is ordered by (newest first).
        Index("ix_audit_events_object", "object_type", "object_id", "id"),
        Index("ix_audit_events_action", "action", "id"),
        Index("ix_audit_events_actor", "actor", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntId, primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    actor_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    # Who acted, kept as text so the record survives the user being deleted.
    actor: Mapped[str] = mapped_column(String(254))
    action: Mapped[str] = mapped_column(String(64))
    object_type: Mapped[str] = mapped_column(String(32))
    object_id: Mapped[str] = mapped_column(String(64))
    summary: Mapped[str] = mapped_column(Text)
    details: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    client_address: Mapped[str | None] = mapped_column(String(64))
    user_agent: Mapped[str | None] = mapped_column(String(400))
    # The hash chain (portal.domain.audit_chain): the previous event's hash and this one's,
    # over its canonical content. Given by portal.services.audit, never by a default.
    prev_hash: Mapped[str | None] = mapped_column(String(64))
    hash: Mapped[str | None] = mapped_column(String(64))
