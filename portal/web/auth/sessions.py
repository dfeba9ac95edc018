"""Flask-Login wired to sessions held on the server (portal.services.staff_sessions)."""

from __future__ import annotations

from flask import current_app, request, session
from flask_login import login_user, logout_user

from portal.clock import request_now
from portal.extensions import db
from portal.models import User
from portal.services import staff_sessions, users

# The key of the server session's id in Flask's (signed) session cookie.
SESSION_ID_KEY = "sid"


def load_user(login_id: str) -> User | None:
    """Flask-Login's user loader: the user, only while the cookie's server session is open."""
    user = users.find_by_login_id(db.session, login_id)
    if user is None:
        return None
    if not staff_sessions.is_open(
        db.session, user.id, session.get(SESSION_ID_KEY), now=request_now()
    ):
        return None
    return user


def sign_in(user: User) -> None:
    """Start a fresh session for USER: nothing set before it (fixation) survives."""
    session.clear()
    token = staff_sessions.open_session(
        db.session,
        user,
        now=request_now(),
        lifetime=current_app.permanent_session_lifetime,
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
