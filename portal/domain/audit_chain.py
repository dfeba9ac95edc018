"""The audit trail's hash chain: the canonical content of an event and its SHA-256.

Each event stores the hash of the event before it (``prev_hash``; the first event
follows GENESIS) and the hash of its own canonical content, which includes
``prev_hash``. Editing, deleting, inserting or reordering an event therefore breaks
the chain at that event or the one after it. The format is a contract with every
stored row: changing it makes every existing chain fail verification.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

GENESIS = "0" * 64

# The fields hashed, in the order they appear in the canonical JSON (keys are sorted anyway).
FIELDS = (
    "id",
    "occurred_at",
    "actor_id",
    "actor",
    "action",
    "object_type",
    "object_id",
    "summary",
    "details",
    "client_address",
    "user_agent",
    "prev_hash",
)


def utc_iso(moment: datetime) -> str:
    """MOMENT in UTC, ISO 8601 with microseconds (a naive value is taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def canonical(event: Mapping[Any, Any]) -> bytes:
    """The canonical JSON of EVENT's hashed fields: sorted keys, no spaces, ASCII only."""
    content: dict[str, Any] = {name: event.get(name) for name in FIELDS}
    content["occurred_at"] = utc_iso(content["occurred_at"])
    content["details"] = content["details"] or {}
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def content_hash(event: Mapping[Any, Any]) -> str:
    """The hex SHA-256 of EVENT's canonical content (its prev_hash included)."""
    return hashlib.sha256(canonical(event)).hexdigest()


def chain(rows: Iterable[dict[str, Any]], prev_hash: str) -> str:
    """Chain ROWS (ids set, in id order) after PREV_HASH: set prev_hash and hash; the last hash."""
    for row in rows:
        row["prev_hash"] = prev_hash
        prev_hash = row["hash"] = content_hash(row)
    return prev_hash


@dataclass(frozen=True)
class Break:
    """The first event at which the chain does not hold, and why."""

    id: int
    occurred_at: datetime | None
    action: str
    reason: str


@dataclass
class Walk:
    """Checks events handed to it in id order; the first break, if any, is kept."""

    checked: int = 0
    head_id: int | None = None
    head_hash: str = GENESIS
    broken: Break | None = None
    _before_head: str | None = None
    _head_row: Mapping[Any, Any] | None = None

    def feed(self, rows: Iterable[Mapping[Any, Any]]) -> bool:
        """Check ROWS (the next ones in id order); False once the chain is broken."""
        for row in rows:
            if self.broken is not None:
                return False
            self.checked += 1
            self.broken = self._check(row)
            self._before_head, self._head_row = self.head_hash, row
            self.head_id, self.head_hash = row["id"], row["hash"]
        return self.broken is None

    def _check(self, row: Mapping[Any, Any]) -> Break | None:
        if row["prev_hash"] != self.head_hash:
            previous = self._head_row
            if (
                previous is not None
                and self._before_head is not None
                and row["prev_hash"] == self._before_head
            ):
                return _break(previous, "inserted: the next event follows the one before it")
            return _break(row, "previous event missing or changed")
        if row["hash"] != content_hash(row):
            return _break(row, "content changed")
        return None


def _break(row: Mapping[Any, Any], reason: str) -> Break:
    return Break(row["id"], row.get("occurred_at"), row.get("action") or "", reason)
