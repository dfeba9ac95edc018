"""Server-side authorization for staff views."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import abort, redirect, request, url_for
from flask_login import current_user

from portal.domain.roles import Permission, role_allows
from portal.extensions import login_manager
from portal.models import User
from portal.services.actor import Actor

F = TypeVar("F", bound=Callable[..., Any])

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
