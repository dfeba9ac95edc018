"""The audit trail: one append-only event per action."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from portal.models import AuditEvent
from portal.services.actor import Actor
from portal.services.pagination import Page, paginate


def record(
    session: Session,
    actor: Actor,
    action: str,
    *,
    object_type: str,
    object_id: object,
    summary: str,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Add an audit event in the caller's transaction."""
    event = AuditEvent(
        actor_id=actor.user_id,
        actor=actor.label,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        summary=summary,
        details=details or {},
        client_address=actor.client_address,
        user_agent=actor.user_agent,
    )
    session.add(event)
    session.flush()
    return event


def events_for(
    session: Session, object_type: str, object_id: object, *, page: int, per_page: int
) -> Page[AuditEvent]:
    """The events about one object, newest first."""
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.object_type == object_type, AuditEvent.object_id == str(object_id))
        .order_by(AuditEvent.id.desc())
    )
    return paginate(session, stmt, page=page, per_page=per_page)


def recent_events(session: Session, *, page: int, per_page: int) -> Page[AuditEvent]:
    """All events, newest first."""
    return paginate(
        session, select(AuditEvent).order_by(AuditEvent.id.desc()), page=page, per_page=per_page
    )
