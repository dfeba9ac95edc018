"""The audit trail: one append-only event per action."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, Select, func, insert, or_, select, text
from sqlalchemy import event as sa_event
from sqlalchemy.orm import Session, SessionTransaction

from portal.domain import audit_chain
from portal.domain.text import header_text
from portal.models import AuditEvent, Identity, Partner, ShareLink
from portal.services.actor import Actor
from portal.services.pagination import (
    Keyset,
    KeysetPage,
    Page,
    capped_count,
    keyset_paginate,
    paginate,
)
from portal.timeutil import utcnow

# Newest first. Ids grow with time, so the id alone is the order (and each filter's index
# ends in it: ix_audit_events_action, _actor, _object).
NEWEST_FIRST = Keyset((AuditEvent.id,), descending=True)


# Writers of the chain take this transaction-scoped advisory lock on PostgreSQL before
# reading the chain's head, so two transactions never both append after the same event.
# (On SQLite the head is read FOR UPDATE, which portal.database turns into taking the
# database's write lock first.) The number is arbitrary and fixed: b"audit" as an int.
CHAIN_LOCK_KEY = 0x6175646974
# Where a session remembers the head it appended last, for the rest of its transaction.
_HEAD_KEY = "portal.audit_head"


@sa_event.listens_for(Session, "after_transaction_end")
def _forget_head(session: Session, _transaction: SessionTransaction) -> None:
    # Any commit, rollback or savepoint end may undo or publish what was appended: read again.
    session.info.pop(_HEAD_KEY, None)


def _lock_and_read_head(connection: Connection) -> tuple[int, str]:
    """Serialize chain writers, then the newest event's id and hash (0 and GENESIS if none)."""
    head = select(AuditEvent.id, AuditEvent.hash).order_by(AuditEvent.id.desc()).limit(1)
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": CHAIN_LOCK_KEY})
    else:
        head = head.with_for_update()
    row = connection.execute(head).first()
    if row is None:
        return 0, audit_chain.GENESIS
    return row.id, row.hash or ""


def _head(session: Session) -> tuple[int, str]:
    cached: tuple[int, str] | None = session.info.get(_HEAD_KEY)
    if cached is None:
        cached = _lock_and_read_head(session.connection())
    return cached


def chain_rows(session: Session | Connection, rows: Sequence[dict[str, Any]]) -> None:
    """Insert ROWS (audit event values, oldest first) as the next links of the chain, in bulk.

    Ids, times and hashes are given here, in Python, after the chain is locked and its
    head read; one executemany inserts them all.
    """
    if not rows:
        return
    if isinstance(session, Session):
        head_id, head_hash = _head(session)
    else:
        head_id, head_hash = _lock_and_read_head(session)
    now = utcnow()
    values = []
    for n, row in enumerate(rows, start=1):
        full: dict[str, Any] = {name: None for name in audit_chain.FIELDS}
        full.update(row, id=head_id + n)
        full["occurred_at"] = row.get("occurred_at") or now
        full["details"] = row.get("details") or {}
        full["user_agent"] = header_text(full["user_agent"])
        values.append(full)
    last_hash = audit_chain.chain(values, head_hash)
    session.execute(insert(AuditEvent), values)
    if isinstance(session, Session):
        session.info[_HEAD_KEY] = (head_id + len(values), last_hash)


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
    """Add an audit event in the caller's transaction, as the chain's next link."""
    session.flush()  # what was added before stays before
    head_id, head_hash = _head(session)
    event = AuditEvent(
        id=head_id + 1,
        occurred_at=utcnow(),
        actor_id=actor.user_id,
        actor=actor.label,
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        summary=summary,
        details=details or {},
        client_address=actor.client_address,
        user_agent=header_text(actor.user_agent),
        prev_hash=head_hash,
    )
    event.hash = audit_chain.content_hash(_values(event))
    session.add(event)
    session.flush()
    session.info[_HEAD_KEY] = (event.id, event.hash)
    return event


VERIFY_BATCH = 10_000


def verify(session: Session, *, batch: int = VERIFY_BATCH) -> audit_chain.Walk:
    """Walk the whole chain in id order, BATCH events at a time; the first break, if any."""
    columns = [getattr(AuditEvent, name) for name in (*audit_chain.FIELDS, "hash")]
    walk = audit_chain.Walk()
    last_id = None
    while True:
        stmt = select(*columns).order_by(AuditEvent.id).limit(batch)
        if last_id is not None:
            stmt = stmt.where(AuditEvent.id > last_id)
        rows = [row._mapping for row in session.connection().execute(stmt)]
        if not rows or not walk.feed(rows):
            return walk
        last_id = rows[-1]["id"]


def _values(event: AuditEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in audit_chain.FIELDS}


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
    """What the audit page narrows the trail to; empty fields do not filter.

    PARTNER and IDENTITY are an AS2 ID or a name (exact, any case); DATE_FROM and DATE_TO
    are days (YYYY-MM-DD, both included) in ZONE, the viewer's time zone.
    """

    action: str = ""
    actor: str = ""
    object_type: str = ""
    object_id: str = ""
    partner: str = ""
    identity: str = ""
    date_from: str = ""
    date_to: str = ""
    zone: str = "UTC"

    def cleaned(self) -> AuditFilter:
        """The filter with surrounding spaces and NUL characters (never stored) removed."""
        kept = (value.replace("\x00", "").strip()[:254] for value in self.values())
        return replace(self, **dict(zip(_FIELDS, kept, strict=True)))

    def values(self) -> tuple[str, ...]:
        """The filtering fields in order (the zone only reads the dates)."""
        return (
            self.action, self.actor, self.object_type, self.object_id,
            self.partner, self.identity, self.date_from, self.date_to,
        )  # fmt: skip

    def query(self) -> dict[str, str]:
        """The fields that filter, as the page's query arguments."""
        return {
            name: value for name, value in zip(FILTER_ARGS, self.values(), strict=True) if value
        }

    @property
    def active(self) -> bool:
        """Whether any field filters."""
        return any(self.values())

    def window(self) -> tuple[datetime | None, datetime | None]:
        """The UTC bounds [start, end) of the date range; ValueError for a bad day or zone."""
        try:
            zone = ZoneInfo(self.zone)
        except (ZoneInfoNotFoundError, ValueError):
            zone = ZoneInfo("UTC")
        bounds: list[datetime | None] = []
        for day_text, extra in ((self.date_from, 0), (self.date_to, 1)):
            if not day_text:
                bounds.append(None)
                continue
            try:
                day = date.fromisoformat(day_text)
            except ValueError:
                raise ValueError(f"{day_text!r} is not a date (YYYY-MM-DD).") from None
            local = datetime.combine(day, time(0), tzinfo=zone) + timedelta(days=extra)
            bounds.append(local.astimezone(UTC))
        return bounds[0], bounds[1]


_FIELDS = (
    "action", "actor", "object_type", "object_id", "partner", "identity", "date_from", "date_to",
)  # fmt: skip
FILTER_ARGS = (
    "action", "actor", "object_type", "object_id", "partner", "identity", "from", "to",
)  # fmt: skip
# A partner or identity filter matching more than this many (same name) is refused as vague.
MAX_NAMED = 100


def _named(session: Session, model: type[Partner] | type[Identity], name: str) -> list[str]:
    """Ids (as stored in object_id) of the partners or identities with that AS2 ID or name."""
    stmt = (
        select(model.id)
        .where(or_(model.as2_id == name, func.lower(model.name) == name.lower()))
        .limit(MAX_NAMED)
    )
    return [str(found) for found in session.scalars(stmt)]


def _filtered(session: Session, stmt: Select[Any], filters: AuditFilter) -> Select[Any]:
    if filters.action:
        stmt = stmt.where(AuditEvent.action == filters.action)
    if filters.actor:
        stmt = stmt.where(AuditEvent.actor == filters.actor)
    if filters.object_type:
        stmt = stmt.where(AuditEvent.object_type == filters.object_type)
    if filters.object_id:
        stmt = stmt.where(AuditEvent.object_id == filters.object_id)
    for kind, model, named in (
        ("partner", Partner, filters.partner),
        ("identity", Identity, filters.identity),
    ):
        if named:
            ids = _named(session, model, named)
            stmt = stmt.where(AuditEvent.object_type == kind, AuditEvent.object_id.in_(ids))
    start, end = filters.window()
    if start is not None:
        stmt = stmt.where(AuditEvent.occurred_at >= start)
    if end is not None:
        stmt = stmt.where(AuditEvent.occurred_at < end)
    return stmt


def list_events(
    session: Session,
    filters: AuditFilter,
    *,
    after: str | None = None,
    before: str | None = None,
    per_page: int,
) -> KeysetPage[AuditEvent]:
    """Events newest first, filtered, one keyset page; the total is counted up to a cap.

    ValueError for a date that is not one (the page answers 400).
    """
    filters = filters.cleaned()
    page = keyset_paginate(
        session,
        _filtered(session, select(AuditEvent), filters),
        NEWEST_FIRST,
        after=after,
        before=before,
        per_page=per_page,
    )
    total = capped_count(session, _filtered(session, select(AuditEvent.id), filters))
    return replace(page, total=total)


# How links.link_actor labels a partner acting through its link (stored, so never changed).
_LINK_ACTOR = re.compile(r"partner via link (\S+)")


@dataclass(frozen=True)
class Names:
    """The names audit events leave out, looked up when they are shown (never stored).

    A partner acting through its link is stored as "partner via link <id>": the trail is
    hash-chained, so what was written stays as written, and a page or an export names the
    partner beside it. Links, partners or identities since deleted keep the stored text.
    """

    links: Mapping[str, str]  # link id -> its partner's name
    partners: Mapping[str, str]  # partner id, as object_id stores it -> name
    identities: Mapping[str, str]  # identity id, as object_id stores it -> name

    def who(self, actor: str) -> str:
        """ACTOR as a person reads it: "ACME Corp (via link <id>)" for a partner's link."""
        found = _LINK_ACTOR.fullmatch(actor)
        if found is None or found.group(1) not in self.links:
            return actor
        return f"{self.links[found.group(1)]} (via link {found.group(1)})"

    def about(self, object_type: str | None, object_id: str | None) -> str:
        """The name of the partner or identity an event is about ('' for other objects)."""
        names = {"partner": self.partners, "identity": self.identities}.get(object_type or "")
        return names.get(object_id or "", "") if names else ""


def names_for(session: Session, events: Iterable[tuple[str, str | None, str | None]]) -> Names:
    """The names for EVENTS, given as (actor, object_type, object_id): three queries, always.

    Three whatever the events (one for links, partners, identities each), so a page of the
    trail costs the same statements with any rows on it.
    """
    link_ids: set[str] = set()
    ids: dict[str, set[str]] = {"partner": set(), "identity": set()}
    for actor, object_type, object_id in events:
        if found := _LINK_ACTOR.fullmatch(actor):
            link_ids.add(found.group(1))
        if object_type in ids and object_id:
            ids[object_type].add(object_id)
    links = session.execute(
        select(ShareLink.id, Partner.name)
        .join(Partner, Partner.id == ShareLink.partner_id)
        .where(ShareLink.id.in_(sorted(link_ids)))
    )
    return Names(
        links={link_id: name for link_id, name in links},
        partners=_names_by_id(session, Partner, ids["partner"]),
        identities=_names_by_id(session, Identity, ids["identity"]),
    )


def _names_by_id(
    session: Session, model: type[Partner] | type[Identity], ids: set[str]
) -> dict[str, str]:
    numbers = sorted(int(i) for i in ids if i.isdigit() and len(i) < 19)
    rows = session.execute(select(model.id, model.name).where(model.id.in_(numbers)))
    return {str(row_id): name for row_id, name in rows}


def events_names(session: Session, events: Iterable[AuditEvent]) -> Names:
    """The names for a page of audit events."""
    return names_for(session, ((e.actor, e.object_type, e.object_id) for e in events))


EXPORT_COLUMNS = (
    "id", "occurred_at", "actor", "actor_id", "action", "object_type", "object_id",
    "summary", "details", "client_address", "user_agent", "prev_hash", "hash",
    # Not stored: looked up for the export (Names).
    "actor_name", "about",
)  # fmt: skip
# The stored columns, read from the trail.
_STORED_COLUMNS = EXPORT_COLUMNS[:-2]
EXPORT_BATCH = 1_000


def export_rows(
    session: Session, filters: AuditFilter, *, batch: int = EXPORT_BATCH
) -> Iterator[tuple[Any, ...]]:
    """The filtered events newest first, as EXPORT_COLUMNS tuples, read BATCH at a time.

    Memory stays bounded whatever the trail's size: each batch is a keyset query below
    the last id read, and the names of its actors and objects one lookup (Names).
    ValueError for a bad date (raised before the first row).
    """
    filters = filters.cleaned()
    filters.window()
    columns = [getattr(AuditEvent, name) for name in _STORED_COLUMNS]
    return _export_batches(session, _filtered(session, select(*columns), filters), batch)


_ACTOR, _OBJECT_TYPE, _OBJECT_ID = (
    _STORED_COLUMNS.index(name) for name in ("actor", "object_type", "object_id")
)


def _export_batches(session: Session, stmt: Select[Any], batch: int) -> Iterator[tuple[Any, ...]]:
    last_id = None
    while True:
        page = stmt.order_by(AuditEvent.id.desc()).limit(batch)
        if last_id is not None:
            page = page.where(AuditEvent.id < last_id)
        rows = [tuple(row) for row in session.execute(page)]
        names = names_for(session, ((r[_ACTOR], r[_OBJECT_TYPE], r[_OBJECT_ID]) for r in rows))
        for row in rows:
            yield (
                *row,
                names.who(row[_ACTOR]),
                names.about(row[_OBJECT_TYPE], row[_OBJECT_ID]),
            )
        if len(rows) < batch:
            return
        last_id = rows[-1][0]
