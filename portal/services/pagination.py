"""Paginating select statements: numbered pages for short lists, keyset pages for big ones."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from math import ceil
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session
from sqlalchemy.types import TypeDecorator

from portal.services.errors import BadRequestError

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    """One page of results and what is needed to link to the others."""

    items: list[T]
    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """How many pages there are (at least one, even when empty)."""
        return max(1, ceil(self.total / self.per_page))

    @property
    def has_prev(self) -> bool:
        """Whether a previous page exists."""
        return self.page > 1

    @property
    def has_next(self) -> bool:
        """Whether a next page exists."""
        return self.page < self.pages


def paginate(session: Session, stmt: Select[Any], *, page: int, per_page: int) -> Page[Any]:
    """Run STMT for PAGE (1-based; out-of-range pages give an empty list, not an error)."""
    page = max(1, page)
    total = session.scalar(select(func.count()).select_from(stmt.order_by(None).subquery())) or 0
    items = list(session.scalars(stmt.limit(per_page).offset((page - 1) * per_page)))
    return Page(items=items, page=page, per_page=per_page, total=total)


def like_pattern(text: str) -> str:
    """A LIKE pattern matching TEXT anywhere, with LIKE's wildcards taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# Keyset pagination ----------------------------------------------------------------------
#
# For big lists (audit events, partners, links): the page after (or before) a row is found
# by comparing the sort key with that row's, so a deep page costs what the first one costs.
# No count over the table, no OFFSET; one row more than a page says whether more follow.

KEYSET_CAP = 1000  # totals of keyset lists are counted up to here ("1,000+")
_MAX_CURSOR = 1200  # characters; a cursor holds a few short keys
_BIGINT = 2**63


class CursorError(BadRequestError):
    """A page cursor that is not one this portal made (edited, cut short, or garbage)."""

    def __init__(self) -> None:
        super().__init__("This page address is not valid. Start again from the first page.")


@dataclass(frozen=True)
class KeysetPage(Generic[T]):
    """One page of a keyset-paginated list and the cursors of its neighbours."""

    items: list[T]
    per_page: int
    next_cursor: str | None = None  # the page after this one (older, or further in the order)
    prev_cursor: str | None = None  # the page before this one
    total: int | None = None  # how many in all, counted up to `cap`; None when not counted
    cap: int = KEYSET_CAP

    @property
    def has_more(self) -> bool:
        """Whether a page follows this one."""
        return self.next_cursor is not None

    @property
    def has_prev(self) -> bool:
        """Whether a page comes before this one."""
        return self.prev_cursor is not None

    @property
    def total_capped(self) -> bool:
        """Whether there are more than `cap` in all (the total then reads "1,000+")."""
        return self.total is not None and self.total > self.cap

    @property
    def total_label(self) -> str:
        """The total for people: "12", "1,000+", or "" when not counted."""
        if self.total is None:
            return ""
        return f"{self.cap:,}+" if self.total_capped else f"{self.total:,}"


@dataclass(frozen=True)
class Keyset:
    """The order of a keyset list: columns, the last one unique (an id), all one direction."""

    columns: tuple[InstrumentedAttribute[Any], ...]
    descending: bool = False

    def key_of(self, item: object) -> list[object]:
        """The sort key of ITEM (an entity with these columns as attributes)."""
        return [getattr(item, column.key) for column in self.columns]

    def order(self, *, reverse: bool = False) -> list[ColumnElement[Any]]:
        """ORDER BY clauses, optionally reversed (to read backwards from a cursor)."""
        down = self.descending != reverse
        return [column.desc() if down else column.asc() for column in self.columns]


def encode_cursor(key: Sequence[object]) -> str:
    """An opaque, URL-safe cursor holding a sort key (ints, strings, UTC datetimes)."""
    values = [{"t": value.isoformat()} if isinstance(value, datetime) else value for value in key]
    raw = json.dumps(values, separators=(",", ":"), ensure_ascii=False).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, keyset: Keyset) -> list[object]:
    """The sort key in CURSOR, checked against KEYSET's columns; CursorError when not valid."""
    if not cursor or len(cursor) > _MAX_CURSOR:
        raise CursorError()
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        values = json.loads(raw.decode())
    except (ValueError, UnicodeDecodeError) as error:  # binascii.Error is a ValueError
        raise CursorError() from error
    if not isinstance(values, list) or len(values) != len(keyset.columns):
        raise CursorError()
    return [_checked(value, column) for value, column in zip(values, keyset.columns, strict=True)]


def _checked(value: object, column: InstrumentedAttribute[Any]) -> object:
    kind = _python_type(column)
    if kind is datetime and isinstance(value, dict) and isinstance(value.get("t"), str):
        try:
            moment = datetime.fromisoformat(value["t"])
        except ValueError as error:
            raise CursorError() from error
        if moment.tzinfo is None:
            raise CursorError()
        return moment
    if kind is int and type(value) is int and -_BIGINT < value < _BIGINT:
        return value
    # PostgreSQL refuses a NUL in text, where SQLite would only find nothing.
    if kind is str and isinstance(value, str) and "\x00" not in value:
        return value
    raise CursorError()


def _python_type(column: InstrumentedAttribute[Any]) -> type:
    column_type = column.property.columns[0].type
    if isinstance(column_type, TypeDecorator):
        column_type = column_type.impl
    kind: type = column_type.python_type
    return kind


def _beyond(
    columns: Sequence[InstrumentedAttribute[Any]], values: Sequence[object], forward: bool
) -> ColumnElement[bool]:
    """Rows strictly past VALUES in the order of COLUMNS (forward = greater)."""
    head, value = columns[0], values[0]
    strictly = head > value if forward else head < value
    if len(columns) == 1:
        return strictly
    return or_(strictly, and_(head == value, _beyond(columns[1:], values[1:], forward)))


def _after(keyset: Keyset, values: Sequence[object], *, backwards: bool) -> ColumnElement[bool]:
    """Rows after VALUES in the keyset's order (before them when BACKWARDS)."""
    forward = keyset.descending == backwards
    head, value = keyset.columns[0], values[0]
    # The plain range on the leading column lets the database seek in the index.
    loose = head >= value if forward else head <= value
    return and_(loose, _beyond(keyset.columns, values, forward))


def keyset_paginate(
    session: Session,
    stmt: Select[Any],
    keyset: Keyset,
    *,
    after: str | None = None,
    before: str | None = None,
    per_page: int,
) -> KeysetPage[Any]:
    """Run STMT (unordered) for the page after cursor AFTER, or before cursor BEFORE, or the first.

    Bad cursors raise CursorError (a 400). A page before the start, which only an edited
    cursor or deleted rows can ask for, gives the first page.
    """
    if before:
        rows = list(
            session.scalars(
                stmt.where(_after(keyset, decode_cursor(before, keyset), backwards=True))
                .order_by(*keyset.order(reverse=True))
                .limit(per_page + 1)
            )
        )
        if len(rows) >= per_page:
            items = list(reversed(rows[:per_page]))
            more_before = len(rows) > per_page
            return KeysetPage(
                items=items,
                per_page=per_page,
                next_cursor=encode_cursor(keyset.key_of(items[-1])),
                prev_cursor=encode_cursor(keyset.key_of(items[0])) if more_before else None,
            )
        after = None  # fewer than a page before the cursor: that is the first page
    values = decode_cursor(after, keyset) if after else None
    query = stmt if values is None else stmt.where(_after(keyset, values, backwards=False))
    rows = list(session.scalars(query.order_by(*keyset.order()).limit(per_page + 1)))
    items = rows[:per_page]
    prev_cursor: str | None = None
    if values is None:
        pass
    elif items:
        prev_cursor = encode_cursor(keyset.key_of(items[0]))
    else:  # past the end: "previous" is the last page
        prev_cursor = after
    return KeysetPage(
        items=items,
        per_page=per_page,
        next_cursor=encode_cursor(keyset.key_of(items[-1])) if len(rows) > per_page else None,
        prev_cursor=prev_cursor,
    )


def capped_count(session: Session, stmt: Select[Any], cap: int = KEYSET_CAP) -> int:
    """How many rows STMT gives, counting no further than CAP + 1 (so cheap on any table)."""
    limited = stmt.order_by(None).limit(cap + 1).subquery()
    return session.scalar(select(func.count()).select_from(limited)) or 0
