"""Staff sign-in sessions held on the server: a cookie works only while its session is open.

Flask's session cookie is signed but lives in the browser: a copy keeps working
and each request renews it. So each sign-in opens a row here with an absolute
end; the cookie carries a random id (only its hash is stored), and signing out,
a password change or a disabled account ends the row. A session also ends when
it was not used for the idle timeout: each request notes its time, written at
most once a minute (TOUCH_EVERY), so checking a session is one read and rarely a
write.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from portal.domain.text import header_text
from portal.models import StaffSession, User

SIGNED_OUT = "signed_out"
CREDENTIALS_CHANGED = "password_changed"
DISABLED = "disabled"
CREDENTIALS_RESET = "password_reset"
IDLE = "idle"  # unused for longer than the idle timeout
EXPIRED = "expired"  # past the absolute lifetime set at sign-in
OPEN = "open"  # a verdict only: the session may be used
ENDED = "ended"  # a verdict only: no such session, or one that already ended

# last_seen_at is written when it is at least this old, not on every request.
TOUCH_EVERY = timedelta(minutes=1)


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
            user_agent=header_text(user_agent, limit=300),
            last_seen_at=now,
            authenticated_at=now,
        )
    )
    session.flush()
    return token


def find(session: Session, user_id: int, token: str | None) -> StaffSession | None:
    """The session of USER_ID the cookie's TOKEN names, ended or not; None when none."""
    if not token:
        return None
    return session.scalar(
        select(StaffSession).where(
            StaffSession.token_hash == _hash(token), StaffSession.user_id == user_id
        )
    )


def verdict(row: StaffSession | None, *, now: datetime, idle: timedelta) -> str:
    """OPEN, or why ROW may not be used: ENDED, EXPIRED (lifetime) or IDLE (unused too long)."""
    if row is None or row.ended_at is not None:
        return ENDED
    if row.expires_at <= now:
        return EXPIRED
    if last_seen(row) + idle <= now:
        return IDLE
    return OPEN


def last_seen(row: StaffSession) -> datetime:
    """When ROW was last used (to the minute)."""
    return row.last_seen_at or row.created_at


def authenticated_at(row: StaffSession) -> datetime:
    """When the password was last typed in ROW's session."""
    return row.authenticated_at or row.created_at


def touch(session: Session, row: StaffSession, *, now: datetime) -> bool:
    """Note ROW was used at NOW, unless it was noted less than TOUCH_EVERY ago."""
    if now - last_seen(row) < TOUCH_EVERY:
        return False
    row.last_seen_at = now
    session.flush()
    return True


def reauthenticated(session: Session, row: StaffSession, *, now: datetime) -> None:
    """Note the password was typed again in ROW's session at NOW."""
    row.authenticated_at = now
    row.last_seen_at = now
    session.flush()


def is_open(
    session: Session,
    user_id: int,
    token: str | None,
    *,
    now: datetime,
    idle: timedelta,
) -> bool:
    """Does TOKEN name an open session of USER_ID, within its lifetime and idle timeout?"""
    return verdict(find(session, user_id, token), now=now, idle=idle) == OPEN


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
