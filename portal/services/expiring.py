"""Certificates in force that expire soon, computed in SQL over light columns.

The rule is portal.domain.inforce; this module states the same rule as SQL so that the
dashboard, the expiring list, the staff digest and the draft upload requests count in the
database instead of loading every certificate (and its DER) into Python:

- a certificate is *active* for an owner and a usage (signing or encryption) when it serves
  that usage ("both" serves either), is not withdrawn, has activate_at <= now, and no other
  such certificate of the same owner comes after it in the rule's order: activate_at, then
  the approval time (activate_at when none), then the id (the order services store them);
- its *replacement* is the first certificate of the owner, serving the usage, not withdrawn,
  scheduled after now (same order) that expires after it.

tests/test_expiring_rule.py checks this against portal.domain.inforce on random data sets,
so the two cannot drift apart unnoticed. One row per (certificate, usage): a "both"
certificate in force for signing and encryption is two rows, as in the domain reports.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Select,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    literal_column,
    or_,
    select,
    union_all,
)
from sqlalchemy.orm import Session, aliased

from portal.domain.reports import BUCKETS, CertRow, Expiring, bucket_of
from portal.domain.vocab import USAGES_IN_FORCE, Usage
from portal.models import Certificate, Identity, Partner, UTCDateTime

Kind = Literal["identity", "partner"]
KINDS: tuple[Kind, ...] = ("identity", "partner")
REPLACEMENT_FILTERS = ("scheduled", "none")
MAX_WITHIN = 3660  # days: ten years is as far as a filter may look
# What the rows are computed at: bound per execution, so the statements are built once.
_NOW = bindparam("in_force_now", type_=UTCDateTime)
_HORIZON = bindparam("in_force_horizon", type_=UTCDateTime)
_CURSOR = re.compile(r"^(\d{8}T\d{6}\.\d{6})~(\d{1,18})~([a-z]{1,16})$")


@dataclass(frozen=True)
class Filter:
    """Which rows: expiring within WITHIN days (0: expired only; expired ones always count),
    of one kind of owner (None: both), with or without a replacement (None: either)."""

    within: int = 90
    owner: Kind | None = None
    replacement: str | None = None  # "scheduled", "none" or None

    def query_args(self) -> dict[str, str]:
        """The filter as URL query arguments (defaults left out)."""
        args = {"within": str(self.within)}
        if self.owner:
            args["owner"] = self.owner
        if self.replacement:
            args["replacement"] = self.replacement
        return args


@dataclass(frozen=True)
class Cursor:
    """A position in the list: the last row shown, by (not_after, id, usage descending:
    signing before encryption, as the domain rule lists them)."""

    not_after: datetime
    id: int
    usage: str

    def encode(self) -> str:
        """The cursor as a URL-safe string."""
        return f"{self.not_after.astimezone(UTC):%Y%m%dT%H%M%S.%f}~{self.id}~{self.usage}"

    @classmethod
    def decode(cls, text: str) -> Cursor:
        """Parse an encoded cursor (ValueError when it is not one)."""
        match = _CURSOR.match(text)
        if match is None or match.group(3) not in USAGES_IN_FORCE:
            raise ValueError("not a list position")
        try:
            moment = datetime.strptime(match.group(1), "%Y%m%dT%H%M%S.%f").replace(tzinfo=UTC)
        except ValueError:
            raise ValueError("not a list position") from None
        return cls(moment, int(match.group(2)), match.group(3))


@dataclass(frozen=True)
class ExpiringPage:
    """One page of the expiring list and where the next one starts (None: last page)."""

    rows: list[Expiring]
    next_cursor: Cursor | None


def parse_filter(within: str | None, owner: str | None, replacement: str | None) -> Filter:
    """A Filter from query arguments (ValueError with a message for a bad one)."""
    days = 90
    if within not in (None, ""):
        if not (within.isascii() and within.isdigit()) or int(within) > MAX_WITHIN:
            raise ValueError(f"within must be a number of days from 0 to {MAX_WITHIN}.")
        days = int(within)
    kind: Kind | None = None
    if owner not in (None, "", "all"):
        if owner not in KINDS:
            raise ValueError("owner must be identity, partner or all.")
        kind = "identity" if owner == "identity" else "partner"
    wanted = None
    if replacement not in (None, "", "any"):
        if replacement not in REPLACEMENT_FILTERS:
            raise ValueError("replacement must be scheduled, none or any.")
        wanted = replacement
    return Filter(days, kind, wanted)


def _owner(certificate: Any, kind: Kind) -> Any:
    return certificate.identity_id if kind == "identity" else certificate.partner_id


def _rule_key(certificate: Any) -> ColumnElement[Any]:
    """The rule's tie-break after activate_at: the approval time, activate_at when none."""
    return func.coalesce(certificate.approved_at, certificate.activate_at)


def _superseded(c: Any, kind: Kind, served: tuple[str, ...], now: ColumnElement[datetime]) -> Any:
    """Whether another started certificate of C's owner for the usage comes after C in the
    rule's order (then C is not active)."""
    later = aliased(Certificate, name="later")
    return exists().where(
        _owner(later, kind) == _owner(c, kind),
        later.withdrawn_at.is_(None),
        later.usage.in_(served),
        later.activate_at <= now,
        or_(
            later.activate_at > c.activate_at,
            and_(
                later.activate_at == c.activate_at,
                or_(
                    _rule_key(later) > _rule_key(c),
                    and_(_rule_key(later) == _rule_key(c), later.id > c.id),
                ),
            ),
        ),
    )


def _replacement(c: Any, kind: Kind, served: tuple[str, ...], now: ColumnElement[datetime]) -> Any:
    """The id of C's replacement: the first scheduled certificate of its owner for the usage
    (in the rule's order) that expires after C; NULL when none."""
    nxt = aliased(Certificate, name="nxt")
    return (
        select(nxt.id)
        .where(
            _owner(nxt, kind) == _owner(c, kind),
            nxt.withdrawn_at.is_(None),
            nxt.usage.in_(served),
            nxt.activate_at > now,
            nxt.not_after > c.not_after,
        )
        .order_by(nxt.activate_at, _rule_key(nxt), nxt.id)
        .limit(1)
        .scalar_subquery()
    )


def _leg(kind: Kind, usage: str, *, after: Cursor | None) -> Select[Any]:
    """Rows of KIND's certificates active for USAGE at NOW expiring before HORIZON (both bound
    parameters: see params)."""
    now, horizon = _NOW, _HORIZON
    c = aliased(Certificate, name="c")
    served = (usage, Usage.BOTH.value)
    owner = _owner(c, kind)
    named = Identity if kind == "identity" else Partner
    conditions = [
        owner.is_not(None),
        c.withdrawn_at.is_(None),
        c.usage.in_(served),
        c.activate_at <= now,
        c.not_after < horizon,
        ~_superseded(c, kind, served, now),
    ]
    if after is not None:
        same_time_next = c.id >= after.id if usage < after.usage else c.id > after.id
        conditions.append(
            or_(c.not_after > after.not_after, and_(c.not_after == after.not_after, same_time_next))
        )
    return (
        select(
            c.id.label("id"),
            literal_column(f"'{kind}'", String).label("kind"),
            owner.label("owner_id"),
            named.name.label("owner_name"),
            literal_column(f"'{usage}'", String).label("usage"),
            c.not_after.label("not_after"),
            c.activate_at.label("activate_at"),
            _replacement(c, kind, served, now).label("replacement_id"),
        )
        .join(named, named.id == owner)
        .where(*conditions)
    )


def params(now: datetime, within: int) -> dict[str, datetime]:
    """The values of in_force_rows' parameters: at NOW, expiring within WITHIN days."""
    return {_NOW.key: now, _HORIZON.key: now + timedelta(days=within)}


def in_force_rows(*, owner: Kind | None = None, after: Cursor | None = None) -> Any:
    """A subquery of the rows (see _leg) of every owner kind and usage asked for; execute
    what selects from it with params(now, within).

    Without AFTER it is built once per process: building these statements (aliases adapted
    column by column) costs more than running them.
    """
    if after is None:
        return _shared_rows(owner)
    return _rows(owner, after)


@lru_cache(maxsize=len(KINDS) + 1)
def _shared_rows(owner: Kind | None) -> Any:
    return _rows(owner, None)


def _rows(owner: Kind | None, after: Cursor | None) -> Any:
    kinds = KINDS if owner is None else (owner,)
    legs = [_leg(kind, usage, after=after) for kind in kinds for usage in USAGES_IN_FORCE]
    return union_all(*legs).subquery("in_force")


def _filtered(rows: Any, wanted: str | None) -> list[ColumnElement[bool]]:
    if wanted == "none":
        return [rows.c.replacement_id.is_(None)]
    if wanted == "scheduled":
        return [rows.c.replacement_id.is_not(None)]
    return []


def listed(
    session: Session,
    *,
    now: datetime,
    where: Filter,
    limit: int | None,
    after: Cursor | None = None,
    owner_id: int | None = None,
) -> list[Expiring]:
    """The rows matching WHERE, soonest expiry first (then id; signing before encryption),
    at most LIMIT."""
    rows = in_force_rows(owner=where.owner, after=after)
    replacement = aliased(Certificate, name="replacement")
    stmt = (
        select(
            rows, replacement.activate_at.label("r_activate"), replacement.not_after.label("r_na")
        )
        .outerjoin(replacement, replacement.id == rows.c.replacement_id)
        .where(*_filtered(rows, where.replacement))
        .order_by(rows.c.not_after, rows.c.id, rows.c.usage.desc())
    )
    if owner_id is not None:
        stmt = stmt.where(rows.c.owner_id == owner_id)
    if limit is not None:
        stmt = stmt.limit(limit)
    buckets = sorted({*BUCKETS, where.within})
    found = session.execute(stmt, params(now, where.within))
    return [_expiring(row, now, buckets) for row in found]


def page(
    session: Session, *, now: datetime, where: Filter, per_page: int, after: Cursor | None
) -> ExpiringPage:
    """One page of the rows matching WHERE after AFTER (keyset: no OFFSET, no count)."""
    found = listed(session, now=now, where=where, limit=per_page + 1, after=after)
    if len(found) <= per_page:
        return ExpiringPage(found, None)
    last = found[per_page - 1]
    return ExpiringPage(
        found[:per_page], Cursor(last.certificate.not_after, last.certificate.id, last.usage)
    )


def counts(
    session: Session, *, now: datetime, limits: Sequence[int]
) -> dict[tuple[int, bool], int]:
    """Rows per (smallest limit L with not_after < now + L days, 0 for expired; replaced?)."""
    rows = in_force_rows()
    bucket = case(
        (rows.c.not_after < now, 0),
        *((rows.c.not_after < now + timedelta(days=days), days) for days in sorted(limits)),
        else_=-1,
    )
    replaced = case((rows.c.replacement_id.is_(None), 0), else_=1)
    stmt = select(bucket.label("bucket"), replaced.label("replaced"), func.count()).group_by(
        bucket, replaced
    )
    found = session.execute(stmt, params(now, max(limits))).tuples()
    return {(int(days), bool(has)): int(number) for days, has, number in found}


def _expiring(row: Any, now: datetime, buckets: Sequence[int]) -> Expiring:
    owner = f"{row.kind}:{row.owner_id}"
    name = f"our {row.owner_name}" if row.kind == "identity" else row.owner_name
    certificate = CertRow(row.id, owner, name, row.usage, row.not_after, row.activate_at, None)
    replacement = None
    if row.replacement_id is not None:
        replacement = CertRow(
            row.replacement_id, owner, name, row.usage, row.r_na, row.r_activate, None
        )
    days_left = (row.not_after - now).days
    return Expiring(certificate, row.usage, days_left, bucket_of(days_left, buckets), replacement)


def expiring(
    session: Session, *, now: datetime, buckets: Sequence[int], owner: Kind | None = None
) -> list[Expiring]:
    """Every row expiring within max(BUCKETS) days, each in the smallest bucket it is within."""
    found = listed(session, now=now, where=Filter(max(buckets), owner), limit=None)
    return [replace(e, bucket=bucket_of(e.days_left, buckets)) for e in found]
