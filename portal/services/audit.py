"""The audit trail: one append-only event per action."""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.orm import Session

from portal.models import AuditEvent
from portal.services.actor import Actor
from portal.services.pagination import (
    Keyset,
    KeysetPage,
    Page,
    capped_count,
    keyset_paginate,
    paginate,
)

# Newest first. Ids grow with time, so the id alone is the order (and each filter's index
# ends in it: ix_audit_events_action, _actor, _object).
NEWEST_FIRST = Keyset((AuditEvent.id,), descending=True)


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


def latest_for(
    session: Session, object_type: str, object_id: object, *, limit: int
) -> list[AuditEvent]:
    """The LIMIT newest events about one object (no count: for a page's history panel)."""
    stmt = (
        select(AuditEvent)
        .where(AuditEvent.object_type == object_type, AuditEvent.object_id == str(object_id))
        .order_by(AuditEvent.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


@dataclass(frozen=True)
class AuditFilter:
    """What the audit page narrows the trail to; empty fields do not filter."""

    action: str = ""
    actor: str = ""
    object_type: str = ""
    object_id: str = ""

    def cleaned(self) -> AuditFilter:
        """The filter with surrounding spaces and NUL characters (never stored) removed."""
        return AuditFilter(*(value.replace("\x00", "").strip()[:254] for value in self.values()))

    def values(self) -> tuple[str, str, str, str]:
        """The four fields in order."""
        return (self.action, self.actor, self.object_type, self.object_id)

    @property
    def active(self) -> bool:
        """Whether any field filters."""
        return any(self.values())


def _filtered(stmt: Select[Any], filters: AuditFilter) -> Select[Any]:
    if filters.action:
        stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.actor:
        stmt = stmt.where(AuditEvent.actor == filters.actor)
    if filters.object_type:
        stmt = stmt.where(AuditEvent.object_type == filters.object_type)
    if filters.object_id:
        stmt = stmt.where(AuditEvent.object_id == filters.object_id)
    return stmt


def list_events(
    session: Session,
    filters: AuditFilter,
    *,
    after: str | None = None,
    before: str | None = None,
    per_page: int,
) -> KeysetPage[AuditEvent]:
    """Events newest first, filtered, one keyset page; the total is counted up to a cap."""
    filters = filters.cleaned()
    page = keyset_paginate(
        session,
        _filtered(select(AuditEvent), filters),
        NEWEST_FIRST,
        after=after,
        before=before,
        per_page=per_page,
    )
    total = capped_count(session, _filtered(select(AuditEvent.id), filters))
    return replace(page, total=total)
