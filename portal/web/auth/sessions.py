"""Flask-Login wired to sessions held on the server (portal.services.staff_sessions).

Each request checks the cookie's server session: open, within its lifetime
(PORTAL_SESSION_LIFETIME_HOURS from sign-in) and used within the idle timeout
(PORTAL_SESSION_IDLE_MINUTES). A session past either ends there, audited, and the
browser is sent to /login with a message saying why.
"""

from __future__ import annotations

from flask import flash, request, session
from flask_login import login_user, logout_user

from portal.clock import request_now
from portal.extensions import db
from portal.models import User
from portal.services import staff_sessions, users
from portal.services.actor import Actor
from portal.settings import settings
from portal.web.access import STAFF_SESSION_KEY, current_staff_session

# The key of the server session's id in Flask's (signed) session cookie.
SESSION_ID_KEY = "sid"


def _ended_message(reason: str) -> str:
    if reason == staff_sessions.IDLE:
        minutes = int(settings().session_idle.total_seconds() // 60)
        return (
            f"You were signed out after {_count(minutes, 'minute')} without activity. "
            "Sign in again."
        )
    hours = int(settings().session_lifetime.total_seconds() // 3600)
    return f"Your sign-in lasted its {_count(hours, 'hour')}. Sign in again."


def _count(number: int, unit: str) -> str:
    """NUMBER of UNIT in words: '1 hour', '8 hours'."""
    return f"{number} {unit}" if number == 1 else f"{number} {unit}s"


def load_user(login_id: str) -> User | None:
    """Flask-Login's user loader: the user, only while the cookie's server session is open."""
    user = users.find_by_login_id(db.session, login_id)
    if user is None:
        return None
    token = session.get(SESSION_ID_KEY)
    row = staff_sessions.find(db.session, user.id, token)
    now = request_now()
    verdict = staff_sessions.verdict(row, now=now, idle=settings().session_idle)
    if verdict == staff_sessions.OPEN and row is not None:
        staff_sessions.touch(db.session, row, now=now)
        request.environ[STAFF_SESSION_KEY] = row
        return user
    if verdict in (staff_sessions.IDLE, staff_sessions.EXPIRED):
        staff_sessions.end_session(db.session, token, now=now, reason=verdict)
        actor = Actor.for_user(user, request.remote_addr, request.headers.get("User-Agent"))
        users.record_session_end(db.session, actor, reason=verdict)
        db.commit_despite_status()  # the end is kept whatever the request answers
        session.pop(SESSION_ID_KEY, None)
        flash(_ended_message(verdict), "info")
    return None


def confirm_password() -> None:
    """Note that the password was just typed again in this session."""
    row = current_staff_session()
    if row is not None:
        staff_sessions.reauthenticated(db.session, row, now=request_now())


def sign_in(user: User) -> None:
    """Start a fresh session for USER: nothing set before it (fixation) survives."""
    session.clear()
    token = staff_sessions.open_session(
        db.session,
        user,
        now=request_now(),
        lifetime=settings().session_lifetime,
        client_address=request.remote_addr,
        user_agent=request.headers.get("User-Agent"),
    )
    login_user(user)
    session.permanent = True
    session[SESSION_ID_KEY] = token


def sign_out() -> None:
    """End the session on the server, then forget the cookie's contents."""
    staff_sessions.end_session(
        db.session, session.get(SESSION_ID_KEY), now=request_now(), reason=staff_sessions.SIGNED_OUT
    )
    logout_user()
    session.clear()


def end_other_sessions(user: User, reason: str) -> None:
    """End every other session of USER (after a password change); this one stays."""
    staff_sessions.end_other_sessions(
        db.session, user, keep=session.get(SESSION_ID_KEY), now=request_now(), reason=reason
    )
