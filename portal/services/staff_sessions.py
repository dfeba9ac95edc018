"""Staff sign-in sessions held on the server: a cookie works only while its session is open.

Flask's session cookie is signed but lives in the browser: a copy keeps working
and each request renews it. So each sign-in opens a row here with an absolute
end; the cookie carries a random id (only its hash is stored), and signing out,
a password change or a disabled account ends the row. Opening and ending a
session are the only writes: checking one is a single read.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.models import StaffSession, User

SIGNED_OUT = "signed_out"
CREDENTIALS_CHANGED = "password_changed"
DISABLED = "disabled"
CREDENTIALS_RESET = "password_reset"


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_session(
    session: Session,
    user: User,
    *,
    now: datetime,
    lifetime: timedelta,
    client_address: str | None,
    user_agent: str | None,
) -> str:
    """Open a session for USER until NOW + LIFETIME; returns the id for the cookie (once)."""
    token = secrets.token_urlsafe(32)
    session.add(
        StaffSession(
            user_id=user.id,
            token_hash=_hash(token),
            created_at=now,
            expires_at=now + lifetime,
            client_address=(client_address or "")[:64] or None,
            user_agent=(user_agent or "")[:300] or None,
        )
    )
    session.flush()
    return token


def is_open(session: Session, user_id: int, token: str | None, *, now: datetime) -> bool:
    """Does TOKEN name an open, unexpired session of USER_ID?"""
    if not token:
        return False
    row = session.scalar(
        select(StaffSession).where(
            StaffSession.token_hash == _hash(token), StaffSession.user_id == user_id
        )
    )
    return row is not None and row.ended_at is None and row.expires_at > now


def end_session(session: Session, token: str | None, *, now: datetime, reason: str) -> bool:
    """End the session TOKEN names; False when there was none open."""
    if not token:
        return False
    result = session.execute(
        update(StaffSession)
        .where(StaffSession.token_hash == _hash(token), StaffSession.ended_at.is_(None))
        .values(ended_at=now, ended_reason=reason)
        .execution_options(synchronize_session=False)
    )
    return bool(getattr(result, "rowcount", 0))


def end_other_sessions(
    session: Session, user: User, *, keep: str | None, now: datetime, reason: str
) -> int:
    """End every open session of USER but KEEP's; returns how many ended."""
    query = update(StaffSession).where(
        StaffSession.user_id == user.id, StaffSession.ended_at.is_(None)
    )
    if keep:
        query = query.where(StaffSession.token_hash != _hash(keep))
    result = session.execute(
        query.values(ended_at=now, ended_reason=reason).execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)
