"""What GET /api/v1/config answers, cached per process and kept right by the database.

The database keeps a revision (`config_revision.value`) that triggers raise in the same
transaction as any change to certificates, partners or identities (migration 0015). A plan
(the rule applied, no bytes loaded: config_export.plan) is cached under the revision, the
selection and the overlap, and serves every moment from the one it was made for until its
earliest `next_change_at` (an activation or the end of an overlap): in between the answer
cannot change. The rendered body is cached under its version (the ETag), `generated_at`
excepted, which is written afresh for each request. Each process reads the revision on
every request, so any number of processes stay right without telling each other; the
answer is at least as new as the revision it is filed under, never older.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from portal.models import ConfigRevision
from portal.services import config_export
from portal.services.config_export import Plan, Selection

# The triggers migration 0015 creates, by dialect: without all of them nothing is cached.
TRIGGERS = {
    "sqlite": {
        f"config_revision_{table}_{event}"
        for table in ("certificates", "partners", "identities")
        for event in ("insert", "update", "delete")
    },
    "postgresql": {
        f"config_revision_{table}" for table in ("certificates", "partners", "identities")
    },
}
_TRIGGER_NAMES = {
    "sqlite": "SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'config_rev%'",
    "postgresql": "SELECT tgname FROM pg_trigger WHERE tgname LIKE 'config_rev%'",
}
_PREFIX = b'{"generated_at":'
# What a process keeps of rendered documents, at most: one document of 10,000 partners
# (about 100 MB) fits; keeping none would render it for every engine's full request.
BODY_BYTES = 256 * 1024 * 1024


@dataclass(frozen=True)
class _Entry:
    plan: Plan
    valid_from: datetime
    valid_until: datetime | None  # the earliest next_change_at; None: no change ahead

    def covers(self, at: datetime) -> bool:
        return self.valid_from <= at and (self.valid_until is None or at < self.valid_until)


class ConfigCache:
    """Plans by (revision, selection, overlap) and bodies by version; thread-safe, bounded."""

    def __init__(self, *, plans: int = 16, bodies: int = 8, body_bytes: int = BODY_BYTES) -> None:
        self._lock = threading.Lock()
        self._render_lock = threading.Lock()
        self._plans: OrderedDict[tuple[int, Selection, timedelta], _Entry] = OrderedDict()
        self._bodies: OrderedDict[str, bytes] = OrderedDict()
        self._plan_limit = plans
        self._body_limit = bodies
        # Bodies grow with the partners (tens of MB at 10,000): the cache holds a budget of
        # bytes, not a count, and a body bigger than the budget is never kept.
        self._body_bytes = body_bytes
        self._enabled: bool | None = None  # decided by the first request (the triggers)

    def plan(
        self, session: Session, *, at: datetime, overlap: timedelta, selection: Selection
    ) -> Plan:
        """config_export.plan at AT, from the cache when nothing it depends on changed."""
        revision = self._revision(session)
        if revision is None:
            return config_export.plan(session, at=at, overlap=overlap, selection=selection)
        key = (revision, selection, overlap)
        with self._lock:
            entry = self._plans.get(key)
            if entry is not None and entry.covers(at):
                self._plans.move_to_end(key)
                return entry.plan
        plan = config_export.plan(session, at=at, overlap=overlap, selection=selection)
        with self._lock:
            self._plans[key] = _Entry(plan, at, _next_change(plan))
            self._plans.move_to_end(key)
            while len(self._plans) > self._plan_limit:
                self._plans.popitem(last=False)
        return plan

    def body(self, session: Session, plan: Plan, at: datetime) -> bytes:
        """The document's JSON for PLAN, generated at AT; rendered once per version.

        Requests that miss together wait for one render (the render lock) instead of each
        loading every certificate: at 10,000 partners a document is about 100 MB.
        """
        rest = self._kept_body(plan.version)
        if rest is None:
            with self._render_lock:
                rest = self._kept_body(plan.version)
                if rest is None:
                    whole = plan.render(session).to_json()
                    # generated_at is the first key (orjson keeps the order): keep the rest.
                    rest = whole[whole.index(b",", len(_PREFIX)) :]
                    if len(rest) <= self._body_bytes:
                        with self._lock:
                            self._bodies[plan.version] = rest
                            self._trim_bodies()
        return _PREFIX + orjson.dumps(config_export.iso(at)) + rest

    def _kept_body(self, version: str) -> bytes | None:
        with self._lock:
            rest = self._bodies.get(version)
            if rest is not None:
                self._bodies.move_to_end(version)
            return rest

    def _trim_bodies(self) -> None:
        """Drop the least recently used bodies beyond the count or the byte budget."""
        total = sum(len(body) for body in self._bodies.values())
        while self._bodies and (len(self._bodies) > self._body_limit or total > self._body_bytes):
            _, dropped = self._bodies.popitem(last=False)
            total -= len(dropped)

    def _revision(self, session: Session) -> int | None:
        """The database's revision, or None when caching is off (no triggers, no row)."""
        if self._enabled is None:
            self._enabled = _triggers_present(session)
        if not self._enabled:
            return None
        return session.scalar(select(ConfigRevision.value).where(ConfigRevision.id == 1))


def _triggers_present(session: Session) -> bool:
    """Whether every trigger that raises the revision exists in this database."""
    dialect = session.get_bind().dialect.name
    if dialect not in _TRIGGER_NAMES:
        return False
    names = set(session.scalars(text(_TRIGGER_NAMES[dialect])))
    return TRIGGERS[dialect] <= names


def _next_change(plan: Plan) -> datetime | None:
    """The first moment after the plan's at at which any usage of any owner changes."""
    moments = [
        state.next_change_at
        for owner in (*plan.identities, *plan.partners)
        for state in owner.states.values()
        if state.next_change_at is not None
    ]
    return min(moments, default=None)
