"""Server-side authorization for staff views."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from flask import abort, flash, redirect, request, url_for
from flask_login import current_user

from portal.clock import request_now
from portal.domain.roles import Permission, role_allows
from portal.extensions import db, login_manager
from portal.models import StaffSession, User
from portal.services import staff_sessions, users
from portal.services.actor import Actor
from portal.settings import settings

F = TypeVar("F", bound=Callable[..., Any])
# Where the user loader leaves this request's open server session: the request's environ,
# not g, which a test's long-lived app context shares across requests.
STAFF_SESSION_KEY = "portal.staff_session"

# Endpoints a user who must change a one-time password may still reach.
PASSWORD_CHANGE_ENDPOINTS = {"auth.change_password", "auth.logout"}


def requires(permission: Permission) -> Callable[[F], F]:
    """Let only signed-in users whose role grants PERMISSION through; 403 for the others."""

    def decorate(view: F) -> F:
        @wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if current_user.must_change_password and request.endpoint not in (
                PASSWORD_CHANGE_ENDPOINTS
            ):
                return redirect(url_for("auth.change_password"))
            if not role_allows(current_user.role, permission):
                users.record_access_denied(
                    db.session, current_actor(), path=request.path, permission=permission.value
                )
                db.commit_despite_status()  # the refusal is kept although the answer is 403
                abort(403)
            return view(*args, **kwargs)

        guarded.required_permission = permission  # type: ignore[attr-defined]
        return guarded  # type: ignore[return-value]

    return decorate


def current_actor() -> Actor:
    """The signed-in user as an audit actor, with the request's address and agent."""
    user: User = current_user._get_current_object()
    return Actor.for_user(user, request.remote_addr, request.headers.get("User-Agent"))


def can(permission: Permission) -> bool:
    """Whether the current user may do PERMISSION (for showing or hiding buttons)."""
    return bool(current_user.is_authenticated and role_allows(current_user.role, permission))


# Control characters: browsers drop tabs and newlines inside a URL, so
# "/\t/evil.example" would become "//evil.example".
_UNSAFE_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


def safe_next(target: str | None) -> str | None:
    """TARGET if it is a path on this site, else None (no open redirects).

    Refused: anything with a scheme or host, a leading "//" or backslash (browsers read
    "/\\evil" as "//evil"), control characters, whitespace as typed, and the same once
    percent-decoded ("/%2F%2Fevil", "%2F%2Fevil").
    """
    if not target or len(target) > 2000:
        return None
    if any(character.isspace() for character in target):
        # Never in a URL as sent (spaces are %20): the form filter turned a tab into one,
        # and "/\t/evil" must not pass as "/ /evil".
        return None
    for spelling in (target, unquote(target), unquote(unquote(target))):
        if (
            not spelling.startswith("/")
            or spelling.startswith("//")
            or "\\" in spelling
            or _UNSAFE_CHARACTERS.search(spelling)
        ):
            return None
        parts = urlsplit(spelling)
        if parts.scheme or parts.netloc:
            return None
    return target


def current_staff_session() -> StaffSession | None:
    """This request's open server session, once the user was loaded (auth.sessions)."""
    row: StaffSession | None = request.environ.get(STAFF_SESSION_KEY)
    return row


def password_typed_at() -> datetime | None:
    """When the password was last typed in this request's session; None: not signed in."""
    row = current_staff_session() if current_user.is_authenticated else None
    return staff_sessions.authenticated_at(row) if row is not None else None


def requires_recent_login(view: F) -> F:
    """Send a user whose password was typed more than PORTAL_REAUTH_MINUTES ago to confirm it.

    For key export, user management, API tokens and webhooks. Goes below `requires`, which
    checks sign-in and role first. A GET comes back to its own address once confirmed; a
    POST (its form cannot be replayed) to the page it was sent from.
    """

    @wraps(view)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        typed_at = password_typed_at()
        if typed_at is not None and request_now() - typed_at < settings().reauth_after:
            return view(*args, **kwargs)
        flash("Confirm your password to continue.", "info")
        return redirect(url_for("auth.confirm", next=_come_back_to()))

    return guarded  # type: ignore[return-value]


def _come_back_to() -> str:
    """Where a re-authentication returns: this page, or for a POST the page that sent it."""
    if request.method == "GET":
        return safe_next(request.full_path.rstrip("?")) or url_for("staff.overview")
    referrer = urlsplit(request.referrer or "")
    if referrer.netloc == request.host and referrer.path:
        path = referrer.path + (f"?{referrer.query}" if referrer.query else "")
        return safe_next(path) or url_for("staff.overview")
    return url_for("staff.overview")
